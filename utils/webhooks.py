"""Signed job-end callbacks.

A callback is a JSON POST of the job's status body. It carries
`X-Followsift-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with
WEBHOOK_SIGNING_SECRET (the scheme Stripe uses), so a receiver can check that followsift
sent it and reject replays older than its tolerance; and `X-Followsift-Job-Id`, so it can
drop a repeat. Signing and the single POST need nothing beyond the standard library
(hmac, http.client); retries are Celery's (`tasks.notify_job_end`).

The URL is a stranger's, so it must not reach into our network (SSRF): `check_callback_url`
accepts only https URLs in a plain form (no userinfo, no numeric host tricks such as
`2130706433`) whose host resolves to globally routable addresses only, none of them this
machine's own (a public address of ours reaches services firewalled from the outside). `deliver` checks again
at send time, connects to the very address it checked (a name that resolves elsewhere the
second time changes nothing) while TLS still verifies the certificate against the name, and
gives up at a deadline for the whole delivery, DNS lookup included, so a receiver that answers
a byte at a time cannot hold a worker. It ignores HTTP(S)_PROXY: a proxy would resolve the
name again. `allow_private` (local development and tests) lifts the address and https rules;
the form rules stay.
"""
import concurrent.futures
import functools
import hashlib
import hmac
import http.client
import io
import ipaddress
import json
import re
import socket
import ssl
import time
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Followsift-Signature"
MAX_RESPONSE_BYTES = 1024
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
# Dot-separated labels ending in one that starts with a letter, as every top-level domain does:
# numeric forms that resolvers read as addresses ("2130706433", "127.1", "0x7f000001") fail it.
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)*(?=[a-z]){_LABEL}")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_lookups = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="callback-dns")


class DeliveryError(Exception):
    """The receiver did not answer 2xx, could not be reached, or its URL was refused."""


class UnsafeCallbackUrl(ValueError):
    """A callback URL we will not send to; the message says why, for the API client."""


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


# -- where a callback may go -----------------------------------------------------------------

def resolve_host(host, port):
    """Every address `host` resolves to, as strings (the system resolver)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def is_public_address(address):
    """True for a globally routable unicast address. IPv6 forms that carry an IPv4 address a
    gateway would reach (mapped, 6to4, Teredo, NAT64) count as that IPv4 address too."""
    return address.is_global and not address.is_multicast and all(map(is_public_address, _embedded(address)))


def is_this_host(address):
    """True when `address` is assigned to one of this machine's interfaces: the kernel then
    picks it as the source of a connection to it. A UDP connect() only looks the route up; it
    sends nothing."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((str(address), 9))
        except OSError:
            return False  # no route to it, so not ours
        return ipaddress.ip_address(probe.getsockname()[0]) == address


def _embedded(address):
    if address.version == 4:
        return []
    carried = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if address in _NAT64:
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [ip for ip in carried if ip is not None]


def check_callback_url(url, allow_private=False, resolve=resolve_host):
    """Raise UnsafeCallbackUrl unless `url` is one we would send a callback to (resolving its
    host with `resolve(host, port)`). The API calls it when a job is submitted."""
    _target(url, allow_private, resolve)


def _target(url, allow_private, resolve):
    """(scheme, host, port, path, address): the checked URL's parts and the address to connect to."""
    if not isinstance(url, str) or not url.isascii() or not url.isprintable() or " " in url:
        raise UnsafeCallbackUrl("the callback URL must be printable ASCII without spaces (IDNs as xn--)")
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeCallbackUrl(f"the callback URL must use {' or '.join(schemes)}")
    if "@" in parts.netloc:
        raise UnsafeCallbackUrl("the callback URL must not carry a user name or password")
    port = _port(parts)
    host = parts.hostname or ""
    address = _address(host, port, allow_private, resolve)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port, path, address


def _port(parts):
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise UnsafeCallbackUrl("the callback URL's port is not a number from 1 to 65535")
    return port or (443 if parts.scheme == "https" else 80)


def _address(host, port, allow_private, resolve):
    """The first address of `host`, once every one of them has passed the check."""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if len(host) > 253 or not _HOSTNAME.fullmatch(host):
            raise UnsafeCallbackUrl(f"the callback URL's host {host!r} is not a plain DNS name or IP address")
        try:
            addresses = [ipaddress.ip_address(found) for found in resolve(host, port)]
        except OSError as exc:
            raise UnsafeCallbackUrl(f"the callback URL's host {host} does not resolve ({exc})") from None
        if not addresses:
            raise UnsafeCallbackUrl(f"the callback URL's host {host} does not resolve")
    if not allow_private:
        _refuse(host, [ip for ip in addresses if not is_public_address(ip)], "is not public")
        _refuse(host, [ip for ip in addresses if is_this_host(ip)], "is this server's own address")
    return str(addresses[0])


def _refuse(host, addresses, why):
    if addresses:
        raise UnsafeCallbackUrl(f"the callback URL's host {host} {why}: {', '.join(map(str, addresses))}")


# -- sending -----------------------------------------------------------------------------------

def deliver(url, payload, secret, timeout, *, allow_private=False, resolve=resolve_host):
    """POST `payload` as signed JSON to `url`, checked as `check_callback_url` does, within
    `timeout` seconds in all; DeliveryError unless the receiver answers 2xx in time."""
    deadline = time.monotonic() + timeout
    try:
        scheme, host, port, path, address = _target(url, allow_private, _by_deadline(resolve, deadline))
    except UnsafeCallbackUrl as exc:
        raise DeliveryError(f"refused: {exc}") from None
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "followsift-webhooks/1",
        SIGNATURE_HEADER: signature(secret, int(time.time()), body),
        "X-Followsift-Job-Id": str(payload.get("job_id", "")),
    }
    connection = _connection(scheme, host, port, address, deadline)
    try:
        connection.request("POST", path, body=body, headers=headers)
        with connection.getresponse() as response:
            response.read(MAX_RESPONSE_BYTES)
    except TimeoutError:
        raise DeliveryError(f"the receiver did not answer within {timeout}s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"could not reach the receiver: {exc!r}") from None
    finally:
        connection.close()
    if not 200 <= response.status < 300:  # a redirect too: following it would drop the POST's body
        raise DeliveryError(f"the receiver answered {response.status}")


def _by_deadline(resolve, deadline):
    """`resolve`, given up (TimeoutError) at the deadline. A lookup cannot be interrupted, so it
    runs in a thread of its own, which a slow DNS server may keep until the lookup's timeout."""
    def resolve_in_time(host, port):
        lookup = _lookups.submit(resolve, host, port)
        try:
            return lookup.result(timeout=_remaining(deadline))
        except TimeoutError:
            raise TimeoutError("no answer before the delivery deadline") from None
    return resolve_in_time


def _connection(scheme, host, port, address, deadline):
    if scheme == "https":
        connection = _PinnedHTTPSConnection(host, port, context=ssl.create_default_context())
    else:
        connection = _PinnedHTTPConnection(host, port)
    connection.address, connection.deadline = address, deadline
    connection.response_class = functools.partial(_DeadlineResponse, deadline=deadline)
    return connection


def _remaining(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the delivery deadline passed")
    return left


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to `address` (the checked one) whatever `host` resolves to by now; `host` is
    still what the Host header (and, over TLS, SNI and the certificate check) names. Every
    step ends by `deadline` (a time.monotonic() value)."""

    address = deadline = None

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), _remaining(self.deadline))
        self.sock.settimeout(_remaining(self.deadline))  # bounds the TLS handshake and the request


class _PinnedHTTPSConnection(http.client.HTTPSConnection, _PinnedHTTPConnection):
    """HTTPSConnection.connect wraps the socket _PinnedHTTPConnection.connect opened in TLS,
    verifying the certificate against `host`."""


class _DeadlineResponse(http.client.HTTPResponse):
    """A response read through `_DeadlineReader`: the status line and headers too must arrive
    by the deadline, not merely each byte within a socket timeout of the last."""

    def __init__(self, sock, *args, deadline, **kwargs):
        super().__init__(sock, *args, **kwargs)
        self.fp.close()
        self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))


class _DeadlineReader(io.RawIOBase):
    """The socket's file (which keeps the socket open while a response reads it, as
    http.client expects), with the socket's timeout set to the time left before every read."""

    def __init__(self, sock, deadline):
        self.sock, self.file, self.deadline = sock, sock.makefile("rb", buffering=0), deadline

    def readable(self):
        return True

    def readinto(self, buffer):
        self.sock.settimeout(_remaining(self.deadline))
        return self.file.readinto(buffer)

    def close(self):
        self.file.close()
        super().close()
