"""Operator commands that work on the database and the queue directly (no API key, no HTTP):

    flask --app app migrate                     apply the SQL files in migrations/ not yet run
    flask --app app create-api-key NAME         print a new key (shown once); revoke-api-key NAME
    flask --app app rotate-webhook-secret NAME  print a new callback signing secret for the key
    flask --app app set-key-limits NAME --default-budget 50 --max-budget 500 --monthly-cap 2000
    flask --app app local-key                   the stable key of local development (`make run` uses it)
    flask --app app tick                        one tick of the clock (it ticks every TICK_SECONDS)
    flask --app app purge                       delete jobs older than RESULTS_TTL_DAYS once
    flask --app app scrape nike adidas --gender female --total 5000 --wait --out results.csv
    flask --app app jobs

`scrape` creates the job through the job service, as `POST /api/scrape-followers` does
(`utils/jobs.py`: `parse_spec` and `submit`), so it is validated, normalised and queued
identically; a worker (`celery -A tasks worker`) must be running for it to progress. Jobs
made here belong to no API key: `flask jobs` lists them, the dashboard does not.
"""
import os
import time
import typing
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from celery_config import Publisher, request_abort
from utils import export, jobs, maintenance, store
from utils.scraper import Scraper
from utils.store.jobs import ALL_KEYS
from utils.store.schema import ENDED_JOB_STATUSES, JobStatus

GENDERS = typing.get_args(jobs.TargetGender)
LOCAL_KEY_NAME = "make-run"
LOCAL_KEY_FILE = "local-api-key"


def _engine():
    return current_app.extensions["engine"]


@click.command("scrape")
@click.argument("accounts", nargs=-1, required=True)
@click.option("--gender", type=click.Choice(GENDERS), required=True, help="The gender to keep.")
@click.option("--total", type=int, required=True, help="Followers to scrape in all, split over the accounts.")
@click.option("--min-confidence", type=float, help="Below this an inferred gender counts as unknown.")
@click.option("--max-age-days", type=float,
              help="Read follower lists scraped at most this many days ago instead of scraping (0: always scrape).")
@click.option("--wait", is_flag=True, help="Show a progress bar until the job ends.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True),
              help="When the job ends, write its results to this CSV file (implies --wait).")
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between progress checks.")
@with_appcontext
def scrape_command(accounts, gender, total, min_confidence, max_age_days, wait, out, poll):
    """Scrape the followers of ACCOUNT... and keep those of one gender."""
    body = {"accounts": list(accounts), "targetGender": gender, "totalScrapeCount": total}
    if min_confidence is not None:
        body["minConfidence"] = min_confidence
    if max_age_days is not None:
        body["maxAgeDays"] = max_age_days
    settings = current_app.config["SETTINGS"]
    try:
        job = jobs.submit(_engine(), current_app.extensions["celery"], settings, jobs.parse_spec(body, settings),
                          api_key_id=None)
    except jobs.JobError as exc:
        raise click.ClickException(_describe(exc)) from None
    job_id = job["job_id"]
    click.echo(f"job {job_id}: {job['accounts']} accounts in {job['total_batches']} batches, "
               f"up to {job['per_account_limit']} followers each"
               + (f", {job['accounts_reused']} from stored lists" if job["accounts_reused"] else ""))
    if not (wait or out):
        return
    final = _watch(job_id, poll)
    click.echo(f"job {job_id} {final['status']}: kept {final['profiles_kept']} of "
               f"{final['profiles_scraped']} followers scraped"
               + (f" ({final['batches_failed']} batches failed)" if final["batches_failed"] else ""))
    if final["error_message"]:
        click.echo(f"  {final['error_message']}")
    if out:
        _write_csv(job_id, out)
        click.echo(f"wrote {final['profiles_kept']} profiles to {out}")
    if final["status"] != JobStatus.COMPLETED:
        raise SystemExit(1)


def _describe(exc):
    details = "".join(f"\n  {d.get('field', '')}: {d.get('message') or d.get('value')}" for d in exc.details or [])
    return f"{exc.message}{details}"


def _watch(job_id, poll):
    """A live progress bar over the job's batches until the job ends; returns the final job row."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("batches"),
               TextColumn("kept {task.fields[kept]:,}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("queued", total=None, kept=0)
        while True:
            job = store.jobs.get_job(_engine(), job_id, ALL_KEYS)
            progress.update(task, description=job["status"], completed=job["batches_done"],
                            total=job["total_batches"], kept=job["profiles_kept"])
            if job["status"] in ENDED_JOB_STATUSES:
                return job
            time.sleep(poll)


def _write_csv(job_id, path):
    """The job's CSV export, exactly as the API serves it (utils/export.py), into `path`."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        file.writelines(export.stream(_engine(), job_id, "csv"))


@click.command("jobs")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="How many, newest first.")
@with_appcontext
def jobs_command(limit):
    """List the newest jobs (of every API key) with their state."""
    found, _ = store.jobs.list_jobs(_engine(), ALL_KEYS, limit)
    table = Table("job", "created", "status", "batches", "kept", "scraped", "target")
    for job in found:
        table.add_row(job["job_id"], job["created_at"].strftime("%Y-%m-%d %H:%M:%S"), job["status"],
                      f"{job['batches_done']}/{job['total_batches']}", f"{job['profiles_kept']:,}",
                      f"{job['profiles_scraped']:,}", job["target_gender"])
    Console(width=140).print(table)


@click.command("migrate")
@with_appcontext
def migrate_command():
    """Apply the SQL files in migrations/ that have not run yet."""
    applied = store.migrate(_engine())
    click.echo(f"applied: {', '.join(applied)}" if applied else "schema up to date")


@click.command("create-api-key")
@with_appcontext
@click.argument("name")
def create_api_key_command(name):
    """Create an API key called NAME and print it (it is shown only this once)."""
    try:
        key = store.keys.create_api_key(_engine(), name)
    except sa.exc.IntegrityError:
        raise click.ClickException(f"a live key called {name!r} exists; revoke it first") from None
    click.echo(key)


@click.command("rotate-webhook-secret")
@with_appcontext
@click.argument("name")
def rotate_webhook_secret_command(name):
    """Give the API key called NAME a new callback signing secret and print it (shown only this once)."""
    secret = store.keys.rotate_webhook_secret(_engine(), name)
    if secret is None:
        raise click.ClickException(f"no live key called {name!r}")
    click.echo(secret)


@click.command("set-key-limits")
@with_appcontext
@click.argument("name")
@click.option("--default-budget", type=float, help="maxCostUsd for the key's jobs that name none (USD).")
@click.option("--max-budget", type=float, help="The largest maxCostUsd a job of the key may name (USD).")
@click.option("--monthly-cap", type=float, help="What the key's jobs may spend in a calendar month (USD).")
def set_key_limits_command(name, default_budget, max_budget, monthly_cap):
    """Set the spending limits of the API key called NAME (unset ones keep the server's defaults)."""
    limits = {key: value for key, value in (("default_max_cost_usd", default_budget),
                                           ("max_cost_usd_limit", max_budget), ("monthly_cap_usd", monthly_cap))
              if value is not None}
    if not limits or not store.keys.set_spending_limits(_engine(), name, **limits):
        raise click.ClickException(f"no live key called {name!r}, or no limit given")
    click.echo(f"{name}: " + ", ".join(f"{key} = {value:g}" for key, value in limits.items()))


@click.command("revoke-api-key")
@with_appcontext
@click.argument("name")
def revoke_api_key_command(name):
    """Revoke the API key called NAME; its jobs stay, unreachable."""
    if not store.keys.revoke_api_key(_engine(), name):
        raise click.ClickException(f"no live key called {name!r}")
    click.echo(f"revoked {name}")


@click.command("local-key")
@with_appcontext
def local_key_command():
    """Print the local development key (the one `make run` uses), creating it if need be."""
    click.echo(local_key(_engine(), current_app.config["SETTINGS"].instance_path))


def local_key(engine, instance_path):
    """The stable API key of local development, kept in `instance/local-api-key` (mode 0600).

    The key on file is reused while it is live in this database, so a browser that saved it
    and the jobs made with it survive restarts. Otherwise (no file, revoked, another database)
    a new key replaces it; only its hash is in the database, so a lost file cannot be read
    back and the old live key of that name is revoked.
    """
    path = Path(instance_path) / LOCAL_KEY_FILE
    key = path.read_text().strip() if path.exists() else ""
    if key and store.keys.api_key_id(engine, key) is not None:
        return key
    store.keys.revoke_api_key(engine, LOCAL_KEY_NAME)
    key = store.keys.create_api_key(engine, LOCAL_KEY_NAME)
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write(key + "\n")
    path.chmod(0o600)  # O_CREAT's mode does not apply to a file that was already there
    return key


@click.command("tick")
@with_appcontext
def tick_command():
    """One tick of the clock: hand back dead workers' batches, poll Apify, republish what Redis lost."""
    settings = current_app.config["SETTINGS"]
    count = maintenance.tick(_engine(), settings, Scraper(settings), Publisher(current_app.extensions["celery"]))
    click.echo(f"published {count} batches to store")


@click.command("purge")
@with_appcontext
def purge_command():
    """Delete jobs older than RESULTS_TTL_DAYS, with their batches and results, and the
    follower lists as old that no job reads."""
    celery = current_app.extensions["celery"]
    jobs, lists = maintenance.purge(_engine(), current_app.config["SETTINGS"],
                                    lambda run_ids: request_abort(celery, run_ids))
    click.echo(f"purged {jobs} jobs and {lists} follower lists")


COMMANDS = (migrate_command, create_api_key_command, revoke_api_key_command, rotate_webhook_secret_command,
            set_key_limits_command, local_key_command, tick_command, purge_command, scrape_command, jobs_command)
