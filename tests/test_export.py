"""The export: every result as CSV or NDJSON, streamed by keyset pages."""
import csv
import io
import json

import pytest

from utils import export, store
from utils.store.results import write_profiles

from conftest import all_results, cancel, submit, wait_for_job


def _csv_profiles(text):
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        row["source_accounts"] = row["source_accounts"].split(";") if row["source_accounts"] else []
    return rows


def test_both_formats_hold_every_result(client, engine, worker, emulator):
    accounts = ["nike", "adidas", "natgeo", "puma"]
    created = submit(client, accounts, total=4 * 300)
    assert wait_for_job(client, created["job_id"])["status"] == "completed"
    expected = all_results(client, created["job_id"])
    assert len(expected) > 1000, "the export crosses a page boundary"

    response = client.get(f"/api/job-results/{created['job_id']}/export?format=ndjson")
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    assert response.headers["Content-Disposition"] == f'attachment; filename="followsift-{created["job_id"]}.ndjson"'
    assert [json.loads(line) for line in response.get_data(as_text=True).splitlines()] == expected

    response = client.get(f"/api/job-results/{created['job_id']}/export?format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].endswith('.csv"')
    text = response.get_data(as_text=True)
    assert text.splitlines()[0] == ",".join(store.results.RESULT_COLUMNS)
    rows = _csv_profiles(text)
    assert [r["profile_id"] for r in rows] == [p["profile_id"] for p in expected]
    assert [r["source_accounts"] for r in rows] == [p["source_accounts"] for p in expected]
    assert [r["full_name"] for r in rows] == [p["full_name"] for p in expected]

    pages = list(export.profiles(engine, created["job_id"], page_size=333))
    assert max(len(page) for page in pages) == 333 and sum(pages, []) == expected


def test_csv_defuses_formulas_and_an_empty_job_has_a_header(client, engine, api_key):
    job_id, *_ = store.work.create_job(
        engine, api_key_id=store.keys.api_key_id(engine, api_key), usernames=["a"], target_gender="any",
        min_confidence=0.0, total_scrape_count=1, per_account_limit=1, batch_size=1, actor_id="test/actor",
    )
    cancel(engine, job_id)  # no worker is to run it: these rows are the test's own
    url = f"/api/job-results/{job_id}/export?format=csv"
    assert client.get(url).get_data(as_text=True) == ",".join(store.results.RESULT_COLUMNS) + "\n"
    write_profiles(engine, job_id, [{
        "profile_id": "1", "username": "eve", "full_name": '=HYPERLINK("http://x","hi")', "gender": "female",
        "gender_confidence": 0.9, "is_private": False, "is_verified": None, "profile_pic_url": None,
        "sources": ["a", "b"],
    }, {
        "profile_id": "2", "username": "bob", "full_name": "Bob", "gender": "male", "gender_confidence": 0.8,
        "is_private": True, "is_verified": False, "profile_pic_url": None, "sources": ["a"],
    }])
    eve, bob = _csv_profiles(client.get(url).get_data(as_text=True))
    assert eve["full_name"] == '\'=HYPERLINK("http://x","hi")' and eve["source_accounts"] == ["a", "b"]
    assert (eve["is_private"], eve["is_verified"]) == ("false", "")
    assert (bob["is_private"], bob["is_verified"]) == ("true", "false")


def test_bad_format_and_unknown_job(client):
    response = client.get("/api/job-results/00000000-0000-0000-0000-000000000000/export?format=csv")
    assert response.status_code == 404
    submitted = submit(client, ["nike"])
    response = client.get(f"/api/job-results/{submitted['job_id']}/export?format=xlsx")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize("text", [
    "=1+1", "+1", "-1", "@SUM(A1)", "|calc", "%0A", "\t=1", "\r=1", "\n=1", "\tplain", "\nplain",
    " =1", "   +1", "\u3000=1", "\u00a0=1", "\u200b=1", "\ufeff@x",
    "＝1+1", "＋1", "－1", "＠SUM(A1)", "｜calc", "％0A", "﹦1", "﹢1", "﹣1", "﹫x", " ＝1",
])
def test_cells_a_spreadsheet_could_run_are_defused(text):
    assert export.spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["Eve", "a=b", "e-mail", "50%", "", " Eve", "'quoted", "１+1"])
def test_plain_cells_are_left_alone(text):
    assert export.spreadsheet_safe(text) == text
