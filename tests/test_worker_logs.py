"""Worker log lines carry the job and batch they are about; Sentry gets its integrations explicitly."""
import re
import subprocess
import sys

from stack import ROOT


def test_every_task_line_names_its_job_and_batch(app, worker, emulator):
    accounts = [f"logged{i}" for i in range(60)]
    result = app.test_cli_runner().invoke(args=["scrape", *accounts, "--gender", "any", "--total", "120", "--wait",
                                                "--poll", "0.1"])
    assert result.exit_code == 0, result.output
    job_id = result.output.split()[1].rstrip(":")
    lines = [line for line in worker.log().splitlines() if job_id in line and "logger=followsift.tasks" in line]
    batches = {index: [line for line in lines if re.search(rf"job {job_id} batch {index}\b", line)] for index in (0, 1)}
    for index, batch_lines in batches.items():
        assert batch_lines and all(f"job_id={job_id} batch={index} " in line for line in batch_lines), batch_lines
    ready = next(line for line in worker.log().splitlines() if " ready." in line)
    assert "job_id=- batch=-" in ready  # outside a task


def test_sentry_is_initialised_with_the_flask_and_celery_integrations():
    # In a child process: sentry_sdk.init is process-wide and must not touch the test session.
    code = ("import sentry_sdk; from utils.config import Settings; from utils.observability import init_sentry;"
            "init_sentry(Settings(sentry_dsn='http://public@127.0.0.1:9/1'));"
            "client = sentry_sdk.get_client();"
            "print(sorted(set(client.integrations) & {'flask', 'celery'}), client.options['send_default_pii'])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.split("\n")[0] == "['celery', 'flask'] False", result.stderr
