"""Signed job-end callbacks.

A callback is a JSON POST of the job's status body. It carries
`X-Followsift-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with
WEBHOOK_SIGNING_SECRET (the scheme Stripe uses), so a receiver can check that followsift
sent it and reject replays older than its tolerance; and `X-Followsift-Job-Id`, so it can
drop a repeat. Signing and the single POST need nothing beyond the standard library
(hmac, urllib); retries are Celery's (`tasks.notify_job_end`).
"""
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

SIGNATURE_HEADER = "X-Followsift-Signature"


class DeliveryError(Exception):
    """The receiver did not answer 2xx, or could not be reached."""


def signature(secret, timestamp, body):
    """The signature header's value for `body` (bytes) sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret, header, body, tolerance_seconds=300, now=None):
    """True when `header` signs `body` with `secret` within the tolerance (for receivers in Python)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET without the body: treat it as a failure."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def deliver(url, payload, secret, timeout):
    """POST `payload` as signed JSON; DeliveryError unless the receiver answers 2xx."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "User-Agent": "followsift-webhooks/1",
        SIGNATURE_HEADER: signature(secret, int(time.time()), body),
        "X-Followsift-Job-Id": str(payload.get("job_id", "")),
    })
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"the receiver answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"could not reach the receiver: {exc}") from None
