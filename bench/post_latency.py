"""POST /api/scrape-followers latency through gunicorn, for 10,000 and 100,000 accounts.

The request validates the accounts, writes the job and its batch rows in one transaction
and publishes one dispatch message: no worker runs here, so nothing else competes.
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import time

from harness import ROOT, stack, summary


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_web(env, port):
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **env},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def measure(port, accounts, repeats):
    body = json.dumps({"accounts": [f"account_{i}" for i in range(accounts)], "targetGender": "female",
                       "totalScrapeCount": accounts * 50})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for _ in range(repeats + 2):
        started = time.perf_counter()
        connection.request("POST", "/api/scrape-followers", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status == 202, response.status
    return samples[2:], len(body)  # the first two warm up each gunicorn worker


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with stack() as (env, _emulator, _workers):
        port = free_port()
        web = start_web(env, port)
        try:
            for accounts, repeats in ((10_000, args.repeats), (100_000, max(3, args.repeats // 4))):
                samples, size = measure(port, accounts, repeats)
                print(f"POST {accounts:>7,} accounts ({size / 1e6:4.1f} MB body): {summary(samples)}")
        finally:
            web.terminate()
            web.wait(10)


if __name__ == "__main__":
    main()
