"""`make run` (run_local.py) end to end, twice, on its embedded stack (SQLite, embedded Redis,
the emulator) in an instance folder of its own: it serves within seconds, prints plain lines
to a pipe, keeps one key in instance/local-api-key that the second run reuses (so the first
run's job is still there), the dashboard with that key shows the job, the synthetic banner and
the profile links, and SIGTERM stops every process it started."""
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from stack import free_port
from test_dashboard import browser  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parent.parent
# Empty, not unset: `.env` must not switch the test to a real database, Redis or Apify.
REAL_SERVICES = ("DATABASE_URL", "REDIS_URL", "APIFY_TOKEN", "APIFY_API_URL", "PUBLIC_BASE_URL", "CELERY_QUEUE")


class LocalRun:
    """`python run_local.py` with its output in a file (a pipe, not a terminal)."""

    def __init__(self, instance, port):
        self.url, self.log = f"http://127.0.0.1:{port}", instance.parent / f"run-{time.monotonic_ns()}.log"
        env = {**os.environ, **dict.fromkeys(REAL_SERVICES, ""), "INSTANCE_PATH": str(instance), "PORT": str(port),
               "NO_PROXY": "127.0.0.1,localhost"}
        self.started = time.monotonic()
        with open(self.log, "w") as out:
            self.process = subprocess.Popen([sys.executable, "run_local.py"], cwd=ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def output(self):
        return self.log.read_text(errors="replace")

    def wait_for(self, text, timeout=90):
        """Seconds from the start until `text` appeared in the output."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process.poll() is None and time.monotonic() < deadline, self.output()
            time.sleep(0.05)
        return time.monotonic() - self.started

    def processes(self):
        """The pids of run_local.py and of everything it started, and their children."""
        parents = {}
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            try:
                parents[int(stat_file.parent.name)] = int(stat_file.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
        tree, grown = {self.process.pid}, True
        while grown:
            found = {pid for pid, parent in parents.items() if parent in tree}
            grown, tree = not found <= tree, tree | found
        return tree

    def stop(self):
        """SIGTERM to run_local.py alone; returns the pids that are still alive 20 s later."""
        started = self.processes()
        assert len(started) >= 6, f"web, worker, clock, emulator and us: {started}"
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        deadline = time.monotonic() + 20
        while (alive := {pid for pid in started if _alive(pid)}) and time.monotonic() < deadline:
            time.sleep(0.2)
        return alive


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _jobs(url, key):
    request = urllib.request.Request(f"{url}/api/jobs", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return [job["job_id"] for job in json.loads(response.read())["jobs"]]


def test_make_run_keeps_its_key_and_stops_whole(tmp_path, browser):  # noqa: F811 (the fixture)
    instance, port = tmp_path / "instance", free_port()
    first = LocalRun(instance, port)
    try:
        serving = first.wait_for("==> Serving on")
        first.wait_for("Ctrl-C to stop")
        key_file = instance / "local-api-key"
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        output = first.output()
        assert key in output and "\r" not in output and "SecurityWarning" not in output
        assert any(line.startswith("    completed  100.0%") for line in output.splitlines())
        job_id = re.search(r"Sample job ([0-9a-f-]{36})", output).group(1)
        assert serving < 30, f"serving after {serving:.1f}s"
        check_dashboard(browser, first.url, key, job_id)
    finally:
        assert first.stop() == set()

    second = LocalRun(instance, port)
    try:
        second.wait_for("==> Serving on")
        assert key_file.read_text().strip() == key
        assert job_id in _jobs(second.url, key)
    finally:
        assert second.stop() == set()


def check_dashboard(browser, url, key, job_id):  # noqa: F811 (the fixture)
    page = browser.new_page()
    page.goto(url + "/")
    page.wait_for_selector("#key-hint", state="visible")
    page.wait_for_selector("#synthetic", state="visible")
    page.fill("#api-key", key)
    page.click("text=Use key")
    page.click(f"#job-rows tr[data-job-id='{job_id}']")
    page.wait_for_selector("#job-status.completed")
    first = page.wait_for_selector("#result-rows tr:first-child a.profile")
    username = first.text_content()
    assert first.get_attribute("href") == f"https://www.instagram.com/{username}/"
    assert page.locator("#result-rows a.profile").count() == 50
    page.close()
