"""The emulated Apify account: its limits, the listing of its runs, and ad-hoc webhooks.

- Limits: `max_memory_mb` and `max_concurrent_runs` (0 = none). A start that would exceed
  them is refused as Apify does: 402 `actor-memory-limit-exceeded` ("By launching this job
  you will exceed the memory limit of ...") or 402 `concurrent-runs-limit-exceeded`.
  `GET /v2/users/me/limits` answers the AccountLimits object apify-client validates.
- Listing: `GET /v2/actor-runs` and `GET /v2/actors/{id}/runs` with offset, limit, desc and
  status (one status or a comma-separated list), newest first with desc=1.
- Webhooks: when a run with ad-hoc webhooks ends, each webhook whose eventTypes include the
  ending event is POSTed to its requestUrl with its payloadTemplate filled (`{{resource}}`,
  `{{resource.id}}`, `{{eventType}}`, ... as JSON values) and the headers of its headersTemplate,
  as Apify does. A non-2xx answer or a
  failed connection is retried every `webhook_retry_s` up to `webhook_retries` times; with
  probability `webhook_duplicate_probability` a delivery is sent twice, and with
  `webhook_drop_probability` it is never sent (a lost webhook). Deliveries are counted in stats.
"""
from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request

TERMINAL_EVENTS = {"SUCCEEDED": "ACTOR.RUN.SUCCEEDED", "FAILED": "ACTOR.RUN.FAILED",
                   "TIMED-OUT": "ACTOR.RUN.TIMED_OUT", "ABORTED": "ACTOR.RUN.ABORTED"}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def capacity_error(running_memory_mb: int, running_count: int, memory_mb: int, settings) -> tuple[str, str] | None:
    """(type, message) when a run of `memory_mb` would exceed the account's limits, else None."""
    if settings.max_memory_mb and running_memory_mb + memory_mb > settings.max_memory_mb:
        return ("actor-memory-limit-exceeded",
                f"By launching this job you will exceed the memory limit of {int(settings.max_memory_mb)}MB for "
                f"all your Actor runs and builds (currently used: {running_memory_mb}MB, requested: {memory_mb}MB)")
    if settings.max_concurrent_runs and running_count >= settings.max_concurrent_runs:
        return ("concurrent-runs-limit-exceeded",
                f"You have reached the limit of {int(settings.max_concurrent_runs)} concurrent Actor runs")
    return None


def limits_json(settings, running_memory_mb: int, running_count: int, usage_usd: float, start: str, end: str) -> dict:
    memory_gb = settings.max_memory_mb / 1024 if settings.max_memory_mb else 8192
    return {
        "monthlyUsageCycle": {"startAt": start, "endAt": end},
        "limits": {"maxMonthlyUsageUsd": 1000, "maxMonthlyActorComputeUnits": 10000,
                   "maxMonthlyExternalDataTransferGbytes": 1000, "maxMonthlyProxySerps": 0,
                   "maxMonthlyResidentialProxyGbytes": 0, "maxActorMemoryGbytes": memory_gb, "maxActorCount": 100,
                   "maxActorTaskCount": 1000, "maxConcurrentActorJobs": int(settings.max_concurrent_runs or 256),
                   "maxTeamAccountSeatCount": 1, "dataRetentionDays": 7},
        "current": {"monthlyUsageUsd": usage_usd, "monthlyActorComputeUnits": 0,
                    "monthlyExternalDataTransferGbytes": 0, "monthlyProxySerps": 0,
                    "monthlyResidentialProxyGbytes": 0, "actorMemoryGbytes": running_memory_mb / 1024,
                    "actorCount": 0, "actorTaskCount": 0, "activeActorJobCount": running_count,
                    "teamAccountSeatCount": 1},
    }


def fill_template(template: str, context: dict) -> str:
    """Apify's payload template: each {{path}} becomes the JSON of that value in `context`."""
    def value(match):
        found = context
        for part in match.group(1).split("."):
            found = found.get(part) if isinstance(found, dict) else None
        return json.dumps(found)
    return _PLACEHOLDER.sub(value, template)


def default_payload(event_type: str, run: dict, user_id: str, now: str) -> dict:
    return {"userId": user_id, "createdAt": now, "eventType": event_type,
            "eventData": {"actorId": run["actId"], "actorRunId": run["id"]}, "resource": run}


class WebhookSender:
    """A background thread that fires the webhooks of runs as they end (see the module docstring)."""

    def __init__(self, state):
        self.state = state
        self.pending: list = []  # (run, webhook dicts) not fired yet
        self.deliveries: list[dict] = []  # what was sent: url, event, status, attempt
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="apify-emulator-webhooks", daemon=True)
        self.thread.start()

    def watch(self, run) -> None:
        if run.webhooks:
            with self.lock:
                self.pending.append(run)

    def clear(self) -> None:
        with self.lock:
            self.pending.clear()
            self.deliveries.clear()

    def _loop(self) -> None:
        while True:
            time.sleep(0.05)
            now = time.time()
            with self.lock:
                ended = [run for run in self.pending if run.status(now) in TERMINAL_EVENTS]
                self.pending = [run for run in self.pending if run not in ended]
            for run in ended:
                self._fire(run)

    def _fire(self, run) -> None:
        settings = self.state.settings
        body_run = self.state.run_json(run)
        event = TERMINAL_EVENTS[body_run["status"]]
        for webhook in run.webhooks:
            if not isinstance(webhook, dict) or event not in webhook.get("eventTypes", []):
                continue
            if self.state.rng_random() < settings.webhook_drop_probability:
                self._record(webhook.get("requestUrl"), event, "dropped", 0)
                continue
            context = default_payload(event, body_run, body_run["userId"], body_run["finishedAt"])
            template = webhook.get("payloadTemplate")
            body = (fill_template(template, context) if template else json.dumps(context)).encode()
            headers = json.loads(fill_template(webhook["headersTemplate"], context)) \
                if webhook.get("headersTemplate") else {}
            copies = 2 if self.state.rng_random() < settings.webhook_duplicate_probability else 1
            for _ in range(copies):
                threading.Thread(target=self._deliver, args=(webhook["requestUrl"], event, body, headers),
                                 daemon=True).start()

    def _deliver(self, url: str, event: str, body: bytes, headers: dict) -> None:
        settings = self.state.settings
        for attempt in range(1, int(settings.webhook_retries) + 2):
            request = urllib.request.Request(url, data=body, method="POST", headers={
                **headers, "Content-Type": "application/json", "User-Agent": "ApifyWebhooks/emulated"})
            try:
                with _NO_PROXY.open(request, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (urllib.error.URLError, OSError):
                status = "unreachable"
            self._record(url, event, status, attempt)
            if isinstance(status, int) and 200 <= status < 300:
                return
            time.sleep(settings.webhook_retry_s)

    def _record(self, url, event, status, attempt) -> None:
        with self.lock:
            self.deliveries.append({"url": url, "event": event, "status": status, "attempt": attempt})
