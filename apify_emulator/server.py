"""Apify API v2 emulator: the slice of the API that apify-client 3.x uses to run follower actors.

This module is the HTTP side, read top to bottom beside Apify's reference; the actors' inputs and
rows are in actors.py, runs and their datasets in runs.py, settings and fault rules in faults.py,
the account's limits and webhooks in account.py, the followers in followers.py.

A werkzeug WSGI app (`make_app(state)`) on a threaded server (`serve()`, or `EmulatorServer` for a
background thread). The client's side of the wire is apify-client 3.x (`apify_client/_resource_clients/`)
and Apify's API reference (https://docs.apify.com/api/v2).

API (`/v2/acts/...` is served as an alias of `/v2/actors/...`; an actor id may be `user~name` or
`user/name`; auth is `Authorization: Bearer <token>` or `?token=`; success is `{"data": ...}`, errors
are `{"error": {"type", "message"}}` with 401 `token-not-provided` / `user-or-token-not-found`):

  POST /v2/actors/{actorId}/runs           start a run. Body = actor input, gzip-compressed when
       ?maxItems&maxTotalChargeUsd&memory   `Content-Encoding: gzip`. 201 `{"data": Run}` + Location.
       &timeout&build&waitForFinish         404 actor-not-found (only the four profiles below exist),
       &webhooks(base64 JSON, recorded)     400 invalid-input (no usernames / limit), 400 invalid-value.
  GET  /v2/actors/{actorId}                the actor object (404 for unknown actors).
  GET  /v2/actor-runs, /v2/actors/{actorId}/runs   the account's (the actor's) runs: ?offset&limit&desc
                                           &status (comma-separated), `{"data": {total, items, ...}}`.
  GET  /v2/users/me/limits                 the account's limits and current use (account.py).
  GET  /v2/actor-runs/{runId}?waitForFinish=N   the run; holds the request until the run is terminal
                                           or min(N, wait_cap_s) seconds pass. 404 record-not-found.
  POST /v2/actor-runs/{runId}/abort        ABORTED unless already terminal.
  GET  /v2/actor-runs/{runId}/log          plain-text log.
  GET  /v2/datasets/{datasetId}            the DatasetResource (also /v2/actor-runs/{runId}/dataset).
  GET  /v2/datasets/{datasetId}/items      bare JSON array (also /v2/actor-runs/{runId}/dataset/items)
       ?offset&limit&desc&clean&skipHidden&fields&omit   with X-Apify-Pagination-Total/Offset/Count/
                                           Limit/Desc (Limit 999999999999 without a limit; Count = rows
                                           scanned). Items carry a hidden `#debug` field (ground truth:
                                           intended_gender, culture, shared, source, position) that
                                           clean=true or skipHidden=true removes.

A start over the account's memory or concurrent-runs limit is refused with 402
`actor-memory-limit-exceeded` / `concurrent-runs-limit-exceeded`; a run's ad-hoc webhooks are
delivered when it ends, with retries, duplicates and losses on request (account.py).

Runs: a run is RUNNING for `run_duration_s` + `run_seconds_per_item` x its items (its dataset filling
up linearly), then SUCCEEDED; a run
whose `timeout` is shorter ends TIMED-OUT with the items scraped so far. The dataset holds, for each
input username in order, its first min(limit, follower_count) followers (`followers.py`), the whole
truncated at `maxItems` and at what `maxTotalChargeUsd` affords. Cost: `usageTotalUsd` = start fee +
price per item x items, `chargedEventCounts` = {"apify-actor-start": 1, "apify-default-dataset-item": n}.

Actor profiles (input keys -> item fields), as the real actors answer:
  datadoping/instagram-followers-scraper   {"usernames", "max_count"} -> id, username, full_name,
      is_private, is_verified, profile_pic_url: NOTHING names the input account
  scraping_solutions/instagram-scraper-followers-following-no-cookies
      {"Account", "resultsLimit", "dataToScrape": "Followers", "continuationToken"} -> id, username,
      full_name, is_private, is_verified, profile_pic_url, username_scrape, type ("Followers"); at most
      1,000 followers per account per run, the OUTPUT record holding `continuations: [{account,
      dataToScrape, hasNextPage, nextContinuationToken}]`
  apify/instagram-followers-following-scraper   {"usernames", "resultsLimit", "dataToScrape": "followers"}
      -> userId, username, fullName, type ("FOLLOWER"), sourceUsername, isVerified, isPrivate,
      profilePicUrl; error rows {"error": "private_account" | "not_found", "sourceUsername"}
  thenetaji/instagram-followers-followings-scraper   {"username", "type": "followers", "maxItem",
      "resumeCursor"} -> id, username, full_name, ..., source_username; a cursor-only row
      {source_username, resumeCursor} where a list was cut (and OUTPUT {resumeCursor} for one account)
  memo23/instagram-followers-scraper   {"usernames", "maxItems"} -> sourceUsername, user: {pk, username,
      fullName, isPrivate, isVerified, profilePicUrl}     (ids are numeric strings everywhere)
  Accounts named private* or missing* have no followers to list (the apify actor says why in an
  error row); `resultsLimit`/`maxItem` count a whole list, so a continued run goes on to it. A fault
  rule {"route": "start_run", "quota": true} makes a run SUCCEED with 0 items and an OUTPUT record
  {"success": false, "status": "DAILY_LIMIT_REACHED"}, as an exhausted actor quota does.

Control API (no auth, JSON in and out):
  POST /_emulator/reset    clear faults, counters and runs; restore the start-up settings.
  POST /_emulator/config   any subset of {"latency_ms": 0, "run_duration_s": 0, "wait_cap_s": 2,
                           "valid_tokens": [...] | null (null: any non-empty token), "price_per_item_usd":
                           0.0007, "start_fee_usd": 0.00005, "seed": 0, "run_seconds_per_item": 0,
                           "max_memory_mb": 0, "max_concurrent_runs": 0, "usage_settle_s": 0,
                           "webhook_retry_s": 1, "webhook_retries": 2, "webhook_duplicate_probability": 0,
                           "webhook_drop_probability": 0}; answers the settings.
  POST /_emulator/faults   {"rules": [rule, ...]} appends rules, checked in order. A rule:
        {"route": "start_run"|"get_run"|"abort_run"|"dataset_items"|"get_dataset"|"get_actor"|"run_log"|"any",
         "status": 429, "type": "rate-limit-exceeded", "message": "...",   # an HTTP error reply, or
         "run_status": "FAILED"|"TIMED-OUT"|"ABORTED",  # start_run only: the run ends so, dataset empty
         "items_limit": N,                              # start_run only: dataset cut at N items
         "quota": true,                                 # start_run only: SUCCEEDED, 0 items, OUTPUT says why
         "times": 2 (null: forever), "skip": 0 (let the first N matching requests through),
         "probability": 1.0 (seeded RNG),
         "when_input_contains": "nike"}                 # start_run only: substring of the raw input
        HTTP error rules apply before authentication; `type` and `message` default from the status.
  GET  /_emulator/stats    {"requests": {route: {status: n}}, "runs_started", "runs_aborted",
                           "items_served", "total_usage_usd", "faults": [remaining rules],
                           "starts_refused", "peak_running", "webhook_deliveries": [{url, event, status,
                           attempt}],
                           "runs": [{"id", "actor_id", "usernames", "status", "item_count", ...}]}
"""
from __future__ import annotations

import base64
import binascii
import gzip
import json
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import asdict, replace
from pathlib import Path

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from .account import WebhookSender, capacity_error, limits_json
from .actors import NO_LIMIT, TERMINAL, USER_ID, ActorProfile, ApiError, find_profile, iso, new_id, parse_input
from .faults import FaultRule, Settings
from .runs import Run, account_notes, continued_from, plan_segments, run_json, usage_usd

# --------------------------------------------------------------------------- state


class EmulatorState:
    """Everything the app mutates, behind one condition variable (long polls wait on it)."""

    def __init__(self, settings: Settings | None = None):
        self.defaults = settings or Settings()
        self.lock = threading.Condition()
        self.webhooks = WebhookSender(self)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.settings = replace(self.defaults)
            self.rng = random.Random(self.settings.seed)
            self.faults: list[FaultRule] = []
            self.runs: dict[str, Run] = {}
            self.datasets: dict[str, Run] = {}
            self.requests: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            self.items_served = 0
            self.starts_refused = 0
            self.peak_running = 0
            self.webhooks.clear()
            self.lock.notify_all()

    def configure(self, changes: dict) -> None:
        with self.lock:
            self.settings = self.settings.updated(changes)
            if "seed" in changes:
                self.rng = random.Random(self.settings.seed)

    def take_fault(self, route: str, run_input: str | None, outcome: bool) -> FaultRule | None:
        """The first matching rule of the wanted kind that fires (its `times` is consumed)."""
        with self.lock:
            for rule in self.faults:
                if rule.is_outcome == outcome and rule.matches(route, run_input):
                    if rule.skip > 0:
                        rule.skip -= 1
                        continue
                    if self.rng.random() >= rule.probability:
                        continue
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None

    def running(self, now: float) -> list[Run]:
        return [run for run in self.runs.values() if run.status(now) not in TERMINAL]

    def admit(self, memory_mb: int) -> None:
        """Refuse a start over the account's limits (account.py), as Apify does."""
        with self.lock:
            running = self.running(time.time())
            refusal = capacity_error(sum(r.options["memoryMbytes"] for r in running), len(running), memory_mb,
                                     self.settings)
            if refusal:
                self.starts_refused += 1
                raise ApiError(402, *refusal)

    def add_run(self, run: Run) -> None:
        with self.lock:
            self.runs[run.id] = run
            self.datasets[run.dataset_id] = run
            self.peak_running = max(self.peak_running, len(self.running(time.time())))
        self.webhooks.watch(run)

    def run_json(self, run: Run) -> dict:
        return run_json(run, time.time(), self.settings)

    def rng_random(self) -> float:
        with self.lock:
            return self.rng.random()

    def list_runs(self, actor: ActorProfile | None, statuses: list[str], desc: bool) -> list[Run]:
        now = time.time()
        with self.lock:
            found = [run for run in self.runs.values() if (actor is None or run.profile is actor)
                     and (not statuses or run.status(now) in statuses)]
        return sorted(found, key=lambda run: run.start, reverse=desc)

    def run(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise ApiError(404, "record-not-found", f"Actor run {run_id} was not found")
        return run

    def store(self, store_id: str) -> Run:
        run = next((run for run in self.runs.values() if run.kvs_id == store_id), None)
        if run is None:
            raise ApiError(404, "record-not-found", f"Key-value store {store_id} was not found")
        return run

    def dataset(self, dataset_id: str) -> Run:
        run = self.datasets.get(dataset_id)
        if run is None:
            raise ApiError(404, "record-not-found", f"Dataset {dataset_id} was not found")
        return run

    def wait_for_finish(self, run: Run, seconds: float) -> None:
        deadline = time.time() + min(seconds, self.settings.wait_cap_s)
        with self.lock:
            while (now := time.time()) < deadline and run.status(now) not in TERMINAL:
                self.lock.wait(min(deadline, run.finish) - now)

    def abort(self, run: Run) -> None:
        with self.lock:
            run.abort(time.time())
            self.lock.notify_all()

    def stats(self) -> dict:
        with self.lock:
            now = time.time()
            return {
                "requests": {route: dict(codes) for route, codes in self.requests.items()},
                "runs_started": len(self.runs),
                "runs_aborted": sum(run.aborted for run in self.runs.values()),
                "items_served": self.items_served,
                "starts_refused": self.starts_refused,
                "peak_running": self.peak_running,
                "webhook_deliveries": list(self.webhooks.deliveries),
                "total_usage_usd": round(sum(usage_usd(r, r.item_count(now), self.settings)
                                             for r in self.runs.values()), 8),
                "faults": [asdict(rule) for rule in self.faults],
                "runs": [{"id": r.id, "actor_id": r.profile.actor_id, "usernames": r.usernames,
                          "status": r.status(now), "item_count": r.item_count(now), "dataset_id": r.dataset_id,
                          "usage_total_usd": usage_usd(r, r.item_count(now), self.settings, now),
                          "started_at": r.start, "finished_at": r.finish if r.status(now) in TERMINAL else None,
                          "options": r.options, "webhooks": r.webhooks, "user_agent": r.user_agent}
                         for r in self.runs.values()],
            }


# --------------------------------------------------------------------------- request helpers


def json_response(payload: object, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"))  # ASCII escapes: the encoder's fast path
    return Response(body, status=status, headers=headers, content_type="application/json; charset=utf-8")


def error_response(error: ApiError) -> Response:
    return json_response({"error": {"type": error.type, "message": error.message}}, error.status)


def read_body(request: Request) -> bytes:
    """The raw body, gunzipped when `Content-Encoding: gzip` (werkzeug does not do it)."""
    body = request.get_data(cache=True)
    encoding = request.headers.get("Content-Encoding", "identity").lower()
    if encoding == "gzip":
        try:
            return gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise ApiError(400, "invalid-request-body", f"Cannot gunzip the request body: {exc}") from None
    if encoding != "identity":
        raise ApiError(415, "unsupported-content-encoding", f"Content-Encoding {encoding} is not supported")
    return body


def token_of(request: Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.args.get("token") or None


def number_arg(request: Request, name: str, cast=int, minimum: float = 0):
    """An optional numeric query parameter, or 400 invalid-value."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = cast(raw)
    except ValueError:
        raise ApiError(400, "invalid-value", f"Query parameter {name}={raw!r} is not a number") from None
    if value < minimum:
        raise ApiError(400, "invalid-value", f"Query parameter {name} must be >= {minimum}")
    return value


def bool_arg(request: Request, name: str) -> bool:
    return request.args.get(name, "").lower() in ("true", "1")


def list_arg(request: Request, name: str) -> list[str]:
    return [part for part in request.args.get(name, "").split(",") if part]


def decode_webhooks(raw: str | None) -> list | None:
    if not raw:
        return None
    try:
        return json.loads(base64.b64decode(raw))
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid-value", "webhooks must be base64-encoded JSON") from None


# --------------------------------------------------------------------------- the app


_ACTORS = ("actors", "acts")  # `acts` is the legacy alias
_RUN_LIST_FIELDS = ("id", "actId", "userId", "actorTaskId", "status", "startedAt", "finishedAt", "buildId",
                    "buildNumber", "meta", "defaultKeyValueStoreId", "defaultDatasetId", "defaultRequestQueueId")
URLS = Map([
    *(Rule(f"/v2/{prefix}/<path:actor_id>/runs", methods=["POST"], endpoint="start_run") for prefix in _ACTORS),
    *(Rule(f"/v2/{prefix}/<path:actor_id>", methods=["GET"], endpoint="get_actor") for prefix in _ACTORS),
    *(Rule(f"/v2/{prefix}/<path:actor_id>/runs", methods=["GET"], endpoint="list_runs") for prefix in _ACTORS),
    Rule("/v2/actor-runs", methods=["GET"], endpoint="list_runs"),
    Rule("/v2/users/<user_id>/limits", methods=["GET"], endpoint="account_limits"),
    Rule("/v2/actor-runs/<run_id>", methods=["GET"], endpoint="get_run"),
    Rule("/v2/actor-runs/<run_id>/abort", methods=["POST"], endpoint="abort_run"),
    Rule("/v2/actor-runs/<run_id>/log", methods=["GET"], endpoint="run_log"),
    Rule("/v2/actor-runs/<run_id>/dataset", methods=["GET"], endpoint="get_dataset"),
    Rule("/v2/actor-runs/<run_id>/dataset/items", methods=["GET"], endpoint="dataset_items"),
    Rule("/v2/key-value-stores/<store_id>/records/<key>", methods=["GET"], endpoint="get_record"),
    Rule("/v2/actor-runs/<run_id>/key-value-store/records/<key>", methods=["GET"], endpoint="get_record"),
    Rule("/v2/datasets/<dataset_id>", methods=["GET"], endpoint="get_dataset"),
    Rule("/v2/datasets/<dataset_id>/items", methods=["GET"], endpoint="dataset_items"),
    Rule("/_emulator/reset", methods=["POST"], endpoint="control_reset"),
    Rule("/_emulator/config", methods=["POST"], endpoint="control_config"),
    Rule("/_emulator/faults", methods=["POST"], endpoint="control_faults"),
    Rule("/_emulator/stats", methods=["GET"], endpoint="control_stats"),
])


class EmulatorApp:
    """The WSGI application. Handlers are the methods named after the route endpoints."""

    def __init__(self, state: EmulatorState):
        self.state = state

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, args = URLS.bind_to_environ(environ).match()
        except NotFound:
            endpoint, response = "unknown", error_response(ApiError(404, "page-not-found", "Page not found"))
        except MethodNotAllowed:
            endpoint, response = "unknown", error_response(ApiError(405, "method-not-allowed", "Method not allowed"))
        else:
            response = self.dispatch(endpoint, request, args)
        with self.state.lock:
            self.state.requests[endpoint][str(response.status_code)] += 1
        return response(environ, start_response)

    def dispatch(self, endpoint: str, request: Request, args: dict) -> Response:
        try:
            if endpoint.startswith("control_"):
                return getattr(self, endpoint)(request)
            return self.api_call(endpoint, request, args)
        except ApiError as error:
            return error_response(error)

    def api_call(self, endpoint: str, request: Request, args: dict) -> Response:
        """Latency, then injected HTTP faults, then authentication, then the handler."""
        settings = self.state.settings
        if settings.latency_ms:
            time.sleep(settings.latency_ms / 1000)
        body = read_body(request) if endpoint == "start_run" else None
        text = body.decode("utf-8", "replace") if body is not None else None
        fault = self.state.take_fault(endpoint, text, outcome=False)
        if fault:
            raise fault.error()
        token = token_of(request)
        if token is None:
            raise ApiError(401, "token-not-provided", "Authentication token was not provided")
        if settings.valid_tokens is not None and token not in settings.valid_tokens:
            raise ApiError(401, "user-or-token-not-found", "User was not found or authentication token is not valid")
        if endpoint == "start_run":
            return self.start_run(request, args["actor_id"], body, text)
        if endpoint == "get_actor":
            return self.get_actor(args["actor_id"])
        if endpoint in ("list_runs", "account_limits"):
            return getattr(self, endpoint)(request, args)
        if "run_id" in args:
            run = self.state.run(args["run_id"])
        elif "store_id" in args:
            run = self.state.store(args["store_id"])
        else:
            run = self.state.dataset(args["dataset_id"])
        if endpoint == "get_record":
            return self.get_record(run, args["key"])
        return getattr(self, endpoint)(request, run)

    # ----- API handlers

    def start_run(self, request: Request, actor_id: str, body: bytes, text: str) -> Response:
        profile = find_profile(actor_id)
        try:
            run_input = json.loads(text) if body else None
        except ValueError:
            raise ApiError(400, "invalid-input", "Invalid input: the body is not valid JSON") from None
        usernames, limit = parse_input(profile, run_input)
        settings = self.state.settings
        options = self._run_options(request)
        webhooks = decode_webhooks(request.args.get("webhooks"))
        self.state.admit(options["memoryMbytes"])
        cap = options.get("maxItems", NO_LIMIT)
        if "maxTotalChargeUsd" in options:  # a pay-per-event actor stops when the budget is spent
            affordable = (options["maxTotalChargeUsd"] - settings.start_fee_usd) / settings.price_per_item_usd
            cap = min(cap, max(0, int(affordable + 1e-9)))
        outcome = self.state.take_fault("start_run", text, outcome=True)
        if outcome and outcome.items_limit is not None:
            cap = min(cap, outcome.items_limit)
        if outcome and outcome.run_status:
            cap = 0
        quota = bool(outcome and outcome.quota)
        starts = continued_from(profile, run_input, usernames)
        segments, total = plan_segments(usernames, limit, 0 if quota else cap, profile.run_cap, starts)
        start = time.time()
        scrape_s = settings.run_duration_s + settings.run_seconds_per_item * total
        finish, final_status = start + scrape_s, (outcome.run_status if outcome and outcome.run_status else "SUCCEEDED")
        if options["timeoutSecs"] and options["timeoutSecs"] < scrape_s:
            finish, final_status = start + options["timeoutSecs"], "TIMED-OUT"
        specials, output = ([], {"success": False, "status": "DAILY_LIMIT_REACHED"}) if quota else \
            account_notes(profile, usernames, limit, segments, starts)
        run = Run(new_id(), profile, usernames, segments, total, options, start, scrape_s, finish, final_status,
                  len(body), request.headers.get("User-Agent", ""), webhooks, starts, specials, output)
        self.state.add_run(run)
        wait = number_arg(request, "waitForFinish", float)
        if wait:
            self.state.wait_for_finish(run, wait)
        location = f"{request.host_url}v2/actor-runs/{run.id}"
        return json_response({"data": run_json(run, time.time(), settings)}, 201, {"Location": location})

    @staticmethod
    def _run_options(request: Request) -> dict:
        memory = number_arg(request, "memory") or 1024
        if memory < 128 or memory > 32768 or memory & (memory - 1):
            raise ApiError(400, "invalid-value", "memory must be a power of 2 between 128 and 32768 MB")
        options = {"build": request.args.get("build") or "latest", "timeoutSecs": number_arg(request, "timeout") or 0,
                   "memoryMbytes": memory, "diskMbytes": memory * 2}
        max_items = number_arg(request, "maxItems")
        max_charge = number_arg(request, "maxTotalChargeUsd", float)
        if max_items is not None:
            options["maxItems"] = max_items
        if max_charge is not None:
            options["maxTotalChargeUsd"] = max_charge
        return options

    def list_runs(self, request: Request, args: dict) -> Response:
        actor = find_profile(args["actor_id"]) if "actor_id" in args else None
        runs = self.state.list_runs(actor, list_arg(request, "status"), bool_arg(request, "desc"))
        offset, limit = number_arg(request, "offset") or 0, min(number_arg(request, "limit") or 1000, 1000)
        now = time.time()
        items = [{key: body[key] for key in _RUN_LIST_FIELDS} | {"usageTotalUsd": body["usageTotalUsd"]}
                 for body in (run_json(run, now, self.state.settings) for run in runs[offset:offset + limit])]
        return json_response({"data": {"total": len(runs), "offset": offset, "limit": limit, "desc": bool_arg(
            request, "desc"), "count": len(items), "items": items}})

    def account_limits(self, request: Request, args: dict) -> Response:
        now = time.time()
        with self.state.lock:
            running = self.state.running(now)
            usage = sum(usage_usd(run, run.item_count(now), self.state.settings) for run in self.state.runs.values())
        memory = sum(run.options["memoryMbytes"] for run in running)
        body = limits_json(self.state.settings, memory, len(running), round(usage, 6), iso(now - 86400),
                           iso(now + 29 * 86400))
        return json_response({"data": body})

    @staticmethod
    def get_actor(actor_id: str) -> Response:
        profile = find_profile(actor_id)
        user, name = profile.actor_id.split("/")
        created = iso(1_700_000_000)
        return json_response({"data": {
            "id": profile.act_id, "userId": USER_ID, "name": name, "username": user, "isPublic": True,
            "createdAt": created, "modifiedAt": created, "stats": {}, "versions": [],
            "defaultRunOptions": {"build": "latest", "timeoutSecs": 0, "memoryMbytes": 1024}}})

    def get_run(self, request: Request, run: Run) -> Response:
        wait = number_arg(request, "waitForFinish", float)
        if wait:
            self.state.wait_for_finish(run, wait)
        return json_response({"data": run_json(run, time.time(), self.state.settings)})

    def abort_run(self, request: Request, run: Run) -> Response:
        self.state.abort(run)
        return json_response({"data": run_json(run, time.time(), self.state.settings)})

    def run_log(self, request: Request, run: Run) -> Response:
        now = time.time()
        lines = [f"{iso(run.start)} ACTOR: Starting {run.profile.actor_id} (emulated)",
                 *(f"{iso(run.start)} Scraping followers of {username}" for username in run.usernames)]
        if run.status(now) in TERMINAL:
            lines.append(f"{iso(run.finish)} Finished with status {run.status(now)}: {run.item_count(now)} items")
        return Response("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")

    def get_record(self, run: Run, key: str) -> Response:
        if key != "OUTPUT" or run.output is None or run.status(time.time()) not in TERMINAL:
            raise ApiError(404, "record-not-found", f"Record {key} was not found")
        return json_response(run.output)

    def get_dataset(self, request: Request, run: Run) -> Response:
        now = time.time()
        count = run.item_count(now)
        return json_response({"data": {
            "id": run.dataset_id, "name": None, "userId": USER_ID, "createdAt": iso(run.start),
            "modifiedAt": iso(min(now, run.finish)), "accessedAt": iso(now), "itemCount": count,
            "cleanItemCount": count, "actId": run.profile.act_id, "actRunId": run.id,
            "consoleUrl": f"https://console.apify.com/storage/datasets/{run.dataset_id}"}})

    def dataset_items(self, request: Request, run: Run) -> Response:
        total = run.item_count(time.time())
        offset = number_arg(request, "offset") or 0
        limit = number_arg(request, "limit")
        desc = bool_arg(request, "desc")
        count = max(0, min(total - offset, NO_LIMIT if limit is None else limit))
        hidden = not (bool_arg(request, "clean") or bool_arg(request, "skipHidden"))
        if desc:
            items = run.items(total - offset - count, total - offset, hidden)[::-1]
        else:
            items = run.items(offset, offset + count, hidden)
        wanted, omitted = list_arg(request, "fields"), set(list_arg(request, "omit"))
        if wanted or omitted:
            items = [{k: v for k, v in item.items() if (not wanted or k in wanted) and k not in omitted}
                     for item in items]
        with self.state.lock:
            self.state.items_served += len(items)
        return json_response(items, headers={
            "X-Apify-Pagination-Total": str(total), "X-Apify-Pagination-Offset": str(offset),
            "X-Apify-Pagination-Count": str(count), "X-Apify-Pagination-Desc": str(desc).lower(),
            "X-Apify-Pagination-Limit": str(NO_LIMIT if limit is None else limit)})

    # ----- control handlers

    def control_reset(self, request: Request) -> Response:
        self.state.reset()
        return json_response({"ok": True})

    def control_config(self, request: Request) -> Response:
        self.state.configure(self._json_object(request))
        return json_response(asdict(self.state.settings))

    def control_faults(self, request: Request) -> Response:
        rules = self._json_object(request).get("rules")
        if not isinstance(rules, list):
            raise ApiError(400, "invalid-value", 'Expected {"rules": [...]}')
        parsed = [FaultRule.from_json(rule) for rule in rules]
        with self.state.lock:
            self.state.faults.extend(parsed)
            return json_response({"faults": [asdict(rule) for rule in self.state.faults]})

    def control_stats(self, request: Request) -> Response:
        return json_response(self.state.stats())

    @staticmethod
    def _json_object(request: Request) -> dict:
        try:
            payload = json.loads(read_body(request) or b"{}")
        except ValueError:
            raise ApiError(400, "invalid-value", "The body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "invalid-value", "The body must be a JSON object")
        return payload


def make_app(state: EmulatorState) -> EmulatorApp:
    return EmulatorApp(state)


# --------------------------------------------------------------------------- servers


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request (a benchmark makes hundreds of thousands)."""

    def log_request(self, code="-", size="-"):
        pass


class EmulatorServer:
    """The emulator on a background thread: `with EmulatorServer() as emu: ApifyClient(api_url=emu.url)`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **settings):
        self.state = EmulatorState(Settings(**settings))
        self._server = make_server(host, port, make_app(self.state), threaded=True, request_handler=_QuietHandler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self._server.server_port}"

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="apify-emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(host: str = "127.0.0.1", port: int = 0, **settings) -> None:
    """Serve in the foreground; prints `apify-emulator listening on URL` once bound (port 0 = any free)."""
    server = EmulatorServer(host, port, **settings)
    print(f"apify-emulator listening on {server.url}", flush=True)
    server.serve_forever()


def spawn(*args: str, timeout: float = 30.0) -> tuple[subprocess.Popen, str]:
    """Start `python -m apify_emulator --port 0 *args` as a child process; returns (process, url)."""
    process = subprocess.Popen([sys.executable, "-m", "apify_emulator", "--port", "0", *args],
                               cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, text=True)
    line = _read_line(process, timeout)
    if "listening on " not in line:
        process.kill()
        raise RuntimeError(f"apify emulator did not start: {line!r}")
    return process, line.split("listening on ", 1)[1].strip()


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    """The child's first stdout line, without hanging forever on a child that never prints."""
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    lines: list[str] = []
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else ""
