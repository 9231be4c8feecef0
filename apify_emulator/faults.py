"""What a test sets on the emulator: its settings (latency, run length, prices, the account's
limits, webhook losses) and fault rules (HTTP errors, runs that fail, cut datasets, spent quotas)."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from .actors import ApiError

@dataclass
class Settings:
    latency_ms: float = 0.0
    run_duration_s: float = 0.0
    wait_cap_s: float = 2.0
    valid_tokens: list[str] | None = None  # None: any non-empty token is valid
    price_per_item_usd: float = 0.0007
    start_fee_usd: float = 0.00005
    seed: int = 0
    run_seconds_per_item: float = 0.0  # a run lasts run_duration_s + this per item it scrapes
    # The account (account.py): 0 = no limit.
    max_memory_mb: float = 0
    max_concurrent_runs: float = 0
    # For this long after a run ends, its usageTotalUsd is preliminary (the start fee only).
    usage_settle_s: float = 0.0
    webhook_retry_s: float = 1.0
    webhook_retries: float = 2
    webhook_duplicate_probability: float = 0.0
    webhook_drop_probability: float = 0.0

    def updated(self, changes: dict) -> Settings:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ApiError(400, "invalid-value", f"Unknown settings: {sorted(unknown)}")
        tokens = changes.get("valid_tokens", self.valid_tokens)
        if tokens is not None and not (isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)):
            raise ApiError(400, "invalid-value", "valid_tokens must be null or a list of strings")
        numbers = {k: v for k, v in changes.items() if k != "valid_tokens"}
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in numbers.values()):
            raise ApiError(400, "invalid-value", "settings other than valid_tokens must be numbers >= 0")
        return replace(self, **changes)


API_ROUTES = ("start_run", "get_actor", "get_run", "abort_run", "run_log", "get_dataset", "dataset_items",
              "list_runs", "account_limits", "get_record")
_DEFAULT_ERROR_TYPES = {400: "invalid-input", 401: "user-or-token-not-found", 402: "not-enough-usage-to-run-paid-actor",
                        403: "insufficient-permissions", 404: "record-not-found", 408: "run-timeout-exceeded",
                        429: "rate-limit-exceeded"}


@dataclass
class FaultRule:
    route: str = "any"
    status: int | None = None
    type: str | None = None
    message: str | None = None
    run_status: str | None = None
    items_limit: int | None = None
    quota: bool = False  # start_run only: the actor's allowance is spent (SUCCEEDED, 0 items, OUTPUT says)
    times: int | None = None
    skip: int = 0
    probability: float = 1.0
    when_input_contains: str | None = None

    @classmethod
    def from_json(cls, obj: object) -> FaultRule:
        if not isinstance(obj, dict) or set(obj) - {f.name for f in fields(cls)}:
            raise ApiError(400, "invalid-value", f"Not a fault rule: {obj!r}")
        rule = cls(**obj)
        outcome = rule.run_status is not None or rule.items_limit is not None or rule.quota
        if rule.route not in API_ROUTES + ("any",):
            raise ApiError(400, "invalid-value", f"Unknown route {rule.route!r}")
        if (rule.status is not None) == outcome:
            raise ApiError(400, "invalid-value", "A rule needs either status, or run_status and/or items_limit")
        if rule.status is not None and not (isinstance(rule.status, int) and 400 <= rule.status <= 599):
            raise ApiError(400, "invalid-value", "status must be an HTTP error code (400-599)")
        if (outcome or rule.when_input_contains is not None) and rule.route != "start_run":
            raise ApiError(400, "invalid-value", "run_status, items_limit and when_input_contains need route start_run")
        if not (isinstance(rule.skip, int) and rule.skip >= 0):
            raise ApiError(400, "invalid-value", "skip must be a non-negative integer")
        if rule.run_status not in (None, "FAILED", "TIMED-OUT", "ABORTED"):
            raise ApiError(400, "invalid-value", "run_status must be FAILED, TIMED-OUT or ABORTED")
        return rule

    @property
    def is_outcome(self) -> bool:
        return self.status is None

    def matches(self, route: str, run_input: str | None) -> bool:
        return (self.route in (route, "any") and self.times != 0
                and (self.when_input_contains is None or self.when_input_contains in (run_input or "")))

    def error(self) -> ApiError:
        default_type = "internal-server-error" if self.status >= 500 else "emulated-error"
        return ApiError(self.status, self.type or _DEFAULT_ERROR_TYPES.get(self.status, default_type),
                        self.message or f"Emulated fault: HTTP {self.status}")


