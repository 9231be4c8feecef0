"""`GET /api/jobs`: a key's jobs, newest first, paged by cursor; the shared job-creation path."""
import uuid

import pytest

from conftest import authorised_client, cancel, eventually, submit
from utils import store


@pytest.fixture
def own_client(app, engine):
    """A client with a key of its own, so the listing holds only this test's jobs."""
    return authorised_client(app, store.keys.create_api_key(engine, f"jobs-list-{uuid.uuid4().hex[:8]}"))


def test_jobs_are_listed_newest_first_and_paged_by_cursor(own_client, client):
    created = [submit(own_client, [f"acct{i}"])["job_id"] for i in range(5)]
    submit(client, ["someone_else"])  # another key's job stays out of the listing

    first = own_client.get("/api/jobs?limit=2").get_json()
    assert [job["job_id"] for job in first["jobs"]] == created[::-1][:2]
    assert first["jobs"][0]["accounts"] == 1 and first["jobs"][0]["total_batches"] == 1
    seen, cursor = [job["job_id"] for job in first["jobs"]], first["next_cursor"]
    while cursor:
        page = own_client.get(f"/api/jobs?limit=2&cursor={cursor}").get_json()
        seen += [job["job_id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
    assert seen == created[::-1]


def test_a_job_in_the_list_reads_like_its_status(own_client, engine):
    job_id = submit(own_client, ["nike"])["job_id"]
    cancel(engine, job_id)
    # A worker may have started the batch's run before the cancel; once it is aborted, nothing moves.
    status = eventually(lambda: own_client.get(f"/api/job-status/{job_id}").get_json(),
                        lambda status: status["batches_running"] == status["batches_storing"] == 0)
    assert own_client.get("/api/jobs").get_json()["jobs"][0] == status


def test_a_key_without_jobs_gets_an_empty_list(own_client):
    assert own_client.get("/api/jobs").get_json() == {"jobs": [], "limit": 20, "next_cursor": None}


@pytest.mark.parametrize("query, code", [("limit=0", "invalid_parameter"), ("limit=101", "invalid_parameter"),
                                         ("cursor=nonsense", "invalid_cursor"), ("cursor=cjox", "invalid_cursor")])
def test_bad_list_parameters(own_client, query, code):
    response = own_client.get(f"/api/jobs?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_the_list_needs_a_key(app):
    assert app.test_client().get("/api/jobs").status_code == 401
