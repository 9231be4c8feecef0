"""How full one worker dyno keeps the Apify account: an emulated account admitting 16 runs of
1 GB (16 GB), runs of 4 s, 96 batches; one worker as the Procfile runs it (prefork, 2
processes) with the clock, gunicorn for the webhooks, real Postgres and Redis.

Prints, per mode: wall time against the ideal ceil(96/16) x 4 s, the fraction of the account's
capacity used (ideal / wall), peak runs in flight, starts refused with 402, failed batches,
peak RSS of the worker dyno (main process plus pool); then the fairness case: a 2-batch job of
another key submitted while the 96-batch job fills the account, and how long it took.

    bench/apify_capacity.py                       # every mode
    bench/apify_capacity.py --modes webhooks --batches 48

Modes: `webhooks` (PUBLIC_BASE_URL set; the governor learns the account's limits), `refusals`
(the limits cannot be read and the cap is set above the account: 402s keep it full), `poller`
(no PUBLIC_BASE_URL: the clock's poller alone). Targets: >= 0.8 of capacity (>= 0.6 poller
only), 0 failed batches, the worker dyno's memory (PSS: shared pages once) < 512 MB
(Standard-1X); the small job done within 2 run lengths.
"""
import argparse
import math
import threading
import time

from harness import Client, api_key, free_port, group_pss_mb, machine_limits, peak_rss_mb, stack, wait_for_job, web
from stack import Beat, Worker

RUN_SECONDS, ACCOUNT_RUNS, BATCH = 4.0, 16, 50
MODES = {
    "webhooks": {"webhooks": True, "env": {}, "faults": []},
    "refusals": {"webhooks": True, "env": {"APIFY_MAX_CONCURRENT_RUNS": "40"},
                 "faults": [{"route": "account_limits", "status": 403, "type": "insufficient-permissions"}]},
    "poller": {"webhooks": False, "env": {}, "faults": []},
}


def run_mode(name, batches, fairness):
    mode = MODES[name]
    with stack(workers=0) as (env, emulator, _):
        port = free_port()
        env = {**env, **mode["env"], "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}" if mode["webhooks"] else ""}
        emulator.configure(run_duration_s=RUN_SECONDS, max_memory_mb=ACCOUNT_RUNS * 1024)
        for rule in mode["faults"]:
            emulator.fault(**rule)
        with web(env, port=port):
            worker = Worker(env, f"/tmp/bench-capacity-{name}-worker.log", concurrency=2)
            clock = Beat(env, f"/tmp/bench-capacity-{name}-beat.log")
            pss = _PeakPss(worker.process.pid)
            try:
                report = _job(env, port, batches, fairness)
                rss = sum(peak_rss_mb(worker.process.pid).values())
                pss.stop()
            finally:
                clock.stop()
                worker.stop()
        stats = emulator.stats()
    ideal = math.ceil(batches / ACCOUNT_RUNS) * RUN_SECONDS
    print(f"[{name}] {batches} batches: wall {report['wall']:.1f} s vs ideal {ideal:.0f} s -> "
          f"{ideal / report['wall']:.2f} of capacity; peak runs in flight {stats['peak_running']} "
          f"(account admits {ACCOUNT_RUNS}); 402s met {stats['starts_refused']}; failed batches "
          f"{report['failed']}; worker dyno: peak PSS {pss.peak:.0f} MB (sum of the processes' peak RSS {rss:.0f} MB)")
    if fairness:
        print(f"[{name}] fairness: a 2-batch job of another key submitted {report['small_at']:.1f} s into the "
              f"big one ended {report['small_took']:.1f} s later ({report['small_took'] / RUN_SECONDS:.1f} run "
              f"lengths; target <= 2)")


class _PeakPss:
    """The highest PSS of a worker's process group, sampled every 0.2 s."""

    def __init__(self, pid):
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while not self.done.wait(0.2):
            self.peak = max(self.peak, group_pss_mb(self.pid))

    def stop(self):
        self.done.set()
        self.thread.join()


def _job(env, port, batches, fairness):
    big, small = Client(port, api_key(env, "big")), Client(port, api_key(env, "small"))
    body = {"accounts": [f"cap_{i}" for i in range(batches * BATCH)], "targetGender": "any",
            "totalScrapeCount": batches * BATCH * 2}
    started = time.perf_counter()
    created = big.request("POST", "/api/scrape-followers", body, expect=202)
    report = {}
    if fairness:
        time.sleep(RUN_SECONDS * 1.5)  # the account is full of the big job's runs
        report["small_at"] = time.perf_counter() - started
        small_body = {"accounts": [f"fair_{i}" for i in range(2 * BATCH)], "targetGender": "any",
                      "totalScrapeCount": 2 * BATCH * 2}
        small_created = small.request("POST", "/api/scrape-followers", small_body, expect=202)
        wait_for_job(small, small_created["status_url"])
        report["small_took"] = time.perf_counter() - started - report["small_at"]
    status = wait_for_job(big, created["status_url"])
    report.update(wall=time.perf_counter() - started, failed=status["batches_failed"])
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--batches", type=int, default=96)
    args = parser.parse_args()
    print("\n".join(machine_limits()))
    for name in args.modes:
        run_mode(name, args.batches, fairness=False)
    run_mode(args.modes[0], args.batches, fairness=True)


if __name__ == "__main__":
    main()
