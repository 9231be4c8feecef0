"""GET /api/job-status under 100 concurrent clients, each on its own keep-alive connection to
gunicorn (run as the Procfile runs it), from an asyncio load generator in this process.

Two loads: every client polling as a frontend does (a request every --interval seconds), and
every client sending its next request as soon as the last one is answered (the saturation
throughput; its latency is then clients / throughput, by Little's law).
Target: p95 <= 25 ms at 100 clients.
"""
import argparse
import asyncio
import random
import time

from harness import Client, api_key, machine_limits, p95, stack, summary, web


async def client_loop(port, request, interval, until, samples, first_samples):
    await asyncio.sleep(random.uniform(0, interval))  # frontends are not in step with each other
    # Connect when about to ask, as a browser does: gunicorn's gthread worker hands a new
    # connection straight to a thread, which would sit blocked on a client that says nothing.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        first = True
        while time.monotonic() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            elapsed = time.perf_counter() - started
            # A connection's first request also pays for connecting: counted apart.
            (first_samples if first else samples).append(elapsed * 1000)
            first = False
            if interval:
                await asyncio.sleep(max(0.0, interval - elapsed))
    finally:
        writer.close()


async def load(port, request, clients, interval, seconds):
    samples, first_samples = [], []
    until = time.monotonic() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(port, request, interval, until, samples, first_samples)
                           for _ in range(clients)))
    return samples, first_samples, (len(samples) + len(first_samples)) / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between one client's polls")
    args = parser.parse_args()
    with stack() as (env, _emulator, _workers), web(env) as port:
        print("\n".join(machine_limits(env["DATABASE_URL"])))
        key = api_key(env)
        client = Client(port, key)
        body = {"accounts": [f"bench_{i}" for i in range(1000)], "targetGender": "female", "totalScrapeCount": 50_000}
        status_url = client.request("POST", "/api/scrape-followers", body, expect=202)["status_url"]
        request = (f"GET {status_url} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n").encode()
        for name, interval in ((f"polling every {args.interval:g} s", args.interval), ("saturation", 0)):
            samples, first_samples, rate = asyncio.run(load(port, request, args.clients, interval, args.seconds))
            print(f"status, {args.clients} clients, {name:18s}: {rate:7,.0f} requests/s; {summary(samples)}")
            print(f"    first request of each new connection: {summary(first_samples)}")
        if p95(samples):
            print(f"saturation: {args.clients} / {rate:,.0f} req/s = {args.clients / rate * 1000:.0f} ms per request "
                  f"by Little's law")


if __name__ == "__main__":
    main()
