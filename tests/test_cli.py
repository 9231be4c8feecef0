"""The operator commands through the app's CLI runner, with the real worker and emulator."""
import csv
import stat
from datetime import timedelta

import sqlalchemy as sa

from app import create_app
from conftest import cancel, submit
from utils import store


def test_scrape_waits_for_the_job_and_writes_every_result_to_csv(app, engine, worker, emulator, tmp_path):
    out = tmp_path / "results.csv"
    result = app.test_cli_runner().invoke(args=[
        "scrape", "@Nike", "adidas", "nike", "--gender", "female", "--total", "60", "--min-confidence", "0.7",
        "--out", str(out), "--poll", "0.1"])
    assert result.exit_code == 0, result.output
    job_id = result.output.split()[1].rstrip(":")
    job = store.jobs.get_job(engine, job_id, store.jobs.ALL_KEYS)
    assert (job["status"], job["accounts_count"], job["per_account_limit"]) == ("completed", 2, 30)
    assert (job["target_gender"], job["min_confidence"], job["api_key_id"]) == ("female", 0.7, None)
    assert f"job {job_id} completed: kept {job['profiles_kept']} of {job['profiles_scraped']}" in result.output

    with out.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == job["profiles_kept"] > 0
    assert list(rows[0]) == list(store.results.RESULT_COLUMNS)
    assert {row["gender"] for row in rows} == {"female"}
    assert {row["profile_id"] for row in rows} == {p["profile_id"] for p in _stored(engine, job_id)}
    assert all(set(row["source_accounts"].split(";")) <= {"nike", "adidas"} for row in rows)


def _stored(engine, job_id):
    profiles, cursor = store.results.result_page(engine, job_id, 1000)
    assert cursor is None
    return profiles


def test_scrape_validates_like_the_api_and_creates_nothing(app, engine):
    before = store.jobs.list_jobs(engine, store.jobs.ALL_KEYS, 1)[0]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["scrape", "nike", "bad name!", "--gender", "male", "--total", "10"])
    assert result.exit_code != 0
    assert "not valid Instagram usernames" in result.output and "bad name!" in result.output
    result = runner.invoke(args=["scrape", "nike", "--gender", "male", "--total", "0"])
    assert result.exit_code != 0 and "does not match the schema" in result.output
    result = runner.invoke(args=["scrape", "nike", "--gender", "men", "--total", "10"])
    assert result.exit_code != 0 and "'men' is not one of" in result.output
    assert store.jobs.list_jobs(engine, store.jobs.ALL_KEYS, 1)[0] == before


def test_scrape_without_wait_queues_the_job_and_returns(app, engine):
    result = app.test_cli_runner().invoke(args=["scrape", "natgeo", "--gender", "any", "--total", "5"])
    assert result.exit_code == 0, result.output
    job_id = result.output.split()[1].rstrip(":")
    assert store.jobs.get_job(engine, job_id, store.jobs.ALL_KEYS)["status"] in store.schema.ACTIVE_JOB_STATUSES
    cancel(engine, job_id)


def test_jobs_lists_the_newest_jobs_of_every_key(app, client):
    job_id = submit(client, ["listed_by_cli"])["job_id"]
    cancel(app.extensions["engine"], job_id)
    result = app.test_cli_runner().invoke(args=["jobs", "--limit", "5"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if job_id in line)
    assert "cancelled" in line and "0/1" in line


def test_tick_and_purge_run_once(app, engine):
    runner = app.test_cli_runner()
    job_id, *_ = store.work.create_job(engine, api_key_id=None, usernames=["lost_one"], target_gender="any",
                                      min_confidence=0.0, total_scrape_count=1, per_account_limit=1, batch_size=50, actor_id="test/actor")
    cancel(engine, job_id)
    result = runner.invoke(args=["tick"])
    assert result.exit_code == 0 and result.output.startswith("published "), result.output

    with engine.begin() as conn:
        conn.execute(store.schema.jobs.update().where(store.schema.jobs.c.job_id == job_id)
                     .values(created_at=store.utcnow() - timedelta(days=400)))
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0 and result.output.startswith("purged ")
    assert store.jobs.get_job(engine, job_id, store.jobs.ALL_KEYS) is None
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.schema.batches)
                            .where(store.schema.batches.c.job_id == job_id)).scalar() == 0


def test_local_key_is_kept_in_the_instance_folder_and_reused_while_live(engine, postgres_url, redis_url, tmp_path):
    app = create_app({"database_url": postgres_url, "redis_url": redis_url, "instance_path": str(tmp_path)})
    runner = app.test_cli_runner()
    result = runner.invoke(args=["local-key"])
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    path = tmp_path / "local-api-key"
    assert path.read_text() == key + "\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.keys.api_key_id(engine, key) is not None
    assert runner.invoke(args=["local-key"]).output.strip() == key

    assert runner.invoke(args=["revoke-api-key", "make-run"]).exit_code == 0
    path.chmod(0o644)
    renewed = runner.invoke(args=["local-key"]).output.strip()
    assert renewed != key and store.keys.api_key_id(engine, renewed) is not None
    assert path.read_text() == renewed + "\n" and stat.S_IMODE(path.stat().st_mode) == 0o600

    path.unlink()  # a lost file: the live key cannot be read back, so it is replaced
    replaced = runner.invoke(args=["local-key"]).output.strip()
    assert store.keys.api_key_id(engine, renewed) is None and store.keys.api_key_id(engine, replaced) is not None
