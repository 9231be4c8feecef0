"""Server-Sent Events: the status stream of a job run by the real worker; heartbeats and lifetime."""
import json
from itertools import count

from utils import store
from utils.config import Settings
from utils.events import job_events

from conftest import submit


def _parse(stream):
    """(event name, data) pairs and comment lines of an SSE text stream."""
    events = []
    for block in stream.split("\n\n"):
        lines = [line for line in block.split("\n") if line]
        if lines and lines[0].startswith(":"):
            events.append(("comment", lines[0]))
        elif lines and lines[0].startswith("event: "):
            events.append((lines[0][7:], json.loads(lines[1][6:])))
    return events


def test_the_stream_follows_a_job_to_its_end(client, worker, emulator):
    emulator.configure(run_duration_s=1.5)
    created = submit(client, ["nike", "adidas"], total=40)
    response = client.get(f"/api/job-events/{created['job_id']}", buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    events = _parse(response.get_data(as_text=True))  # returns when the server closes the stream

    statuses = [data for name, data in events if name == "status"]
    assert [name for name, _ in events] == ["status"] * len(statuses)
    assert statuses[0]["status"] in ("queued", "processing")
    assert statuses[-1] == client.get(created["status_url"]).get_json()
    assert statuses[-1]["status"] == "completed" and statuses[-1]["profiles_kept"] > 0
    assert all(a != b for a, b in zip(statuses, statuses[1:])), "only changes are sent"
    progress = [s["batches_done"] for s in statuses]
    assert progress == sorted(progress)


def test_heartbeats_and_a_bounded_lifetime(quiet_engine):
    engine = quiet_engine
    job_id, *_ = store.work.create_job(
        engine, api_key_id=None, usernames=["a"], target_gender="any", min_confidence=0.0,
        total_scrape_count=1, per_account_limit=1, batch_size=1, actor_id="test/actor",
    )
    settings = Settings(sse_poll_seconds=1, sse_heartbeat_seconds=3, sse_max_seconds=10)
    ticks = count()  # a clock that moves one second per read, so nothing waits
    stream = "".join(job_events(engine, job_id, store.jobs.ALL_KEYS, settings, clock=lambda: next(ticks), sleep=lambda _: None))
    events = _parse(stream)
    assert events[0][0] == "status" and events[0][1]["status"] == "queued"
    assert events.count(("comment", ": keep-alive")) >= 2
    assert events[-1] == ("timeout", {"job_id": job_id, "reconnect": True})


def test_unknown_job_and_no_key(app, client):
    assert client.get("/api/job-events/00000000-0000-0000-0000-000000000000").status_code == 404
    assert app.test_client().get("/api/job-events/00000000-0000-0000-0000-000000000000").status_code == 401
