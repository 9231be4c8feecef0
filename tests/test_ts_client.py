"""The TypeScript client a frontend generates from the live OpenAPI document (openapi-typescript)
typechecks, strict, against a Next.js-style poller (tests/ts_client/poller.ts): submit a job,
poll its status until it ends, page its results by cursor.

The npm packages come from tests/ts_client/package-lock.json (`npm ci`, once, kept in its
gitignored node_modules/ until the lock file changes)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parent / "ts_client"
GENERATED = FOLDER / "generated"
pytestmark = pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")),
                                reason="Node.js and npm are not installed: the TypeScript client is not checked")

# Each line is wrong for the API the document describes; the typecheck must reject every one.
WRONG_CLIENT = """import { followsift, type JobStatus } from "../poller";
const client = followsift("http://127.0.0.1:5000", "key");
export const unknownStatus: JobStatus["status"] = "done";
export const unknownRoute = client.GET("/api/job-state/{job_id}", { params: { path: { job_id: "1" } } });
export const unknownField = (status: JobStatus): number => status.followers_found;
export const missingBody = client.POST("/api/scrape-followers", { body: { accounts: ["nike"] } });
"""


def npm(*args):
    result = subprocess.run(["npm", *args], cwd=FOLDER, capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr


def run(*args):
    code, output = npm(*args)
    assert code == 0, output


@pytest.fixture(scope="module")
def generated(app):
    """tests/ts_client/generated/followsift.ts, from the app's /api/openapi.json."""
    installed = FOLDER / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < (FOLDER / "package-lock.json").stat().st_mtime:
        run("ci", "--no-audit", "--no-fund")
    GENERATED.mkdir(exist_ok=True)
    document = app.test_client().get("/api/openapi.json")
    assert document.status_code == 200
    (GENERATED / "openapi.json").write_bytes(document.get_data())
    run("run", "--silent", "generate")
    return GENERATED / "followsift.ts"


def test_the_poller_typechecks_against_the_generated_client(generated):
    assert re.search(r"^\s+getJobStatus: \{", generated.read_text(), re.M), "operations are named by operationId"
    run("run", "--silent", "typecheck")


def test_the_typecheck_rejects_a_client_that_does_not_fit_the_api(generated):
    """Without this, types that fell back to `any` would pass the check above."""
    wrong = GENERATED / "wrong.ts"
    wrong.write_text(WRONG_CLIENT)
    try:
        code, output = npm("run", "--silent", "typecheck")
    finally:
        wrong.unlink()
    assert code != 0
    assert {int(line) for line in re.findall(r"generated/wrong\.ts\((\d+),", output)} == {3, 4, 5, 6}, output
    assert "poller.ts" not in output, output
