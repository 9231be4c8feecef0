"""The dashboard at `/`, end to end in headless Chromium (Debian's `chromium`, driven by Playwright):
the hint where a key is found, enter the key, create a job from pasted and uploaded accounts,
watch it complete, page the results with their profile links, download the CSV. The app is
served on a free port, wired to the session's Postgres, Redis, worker and emulator."""
import csv
import io
import shutil
from pathlib import Path

import pytest

from app import create_app
from conftest import all_results, authorised_client

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-proxy-server"]


def test_the_page_and_its_assets_need_no_key_and_come_from_this_origin(app):
    client = app.test_client()
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    for asset in ("dashboard.js", "dashboard.css", "vendor/papaparse.min.js"):
        assert f"/dashboard/static/{asset}" in html
        assert client.get(f"/dashboard/static/{asset}").status_code == 200


def test_favicon(app):
    response = app.test_client().get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
    assert response.data.startswith(b"\0\0\1\0")  # an ICO header


@pytest.mark.parametrize("settings, synthetic", [
    ({"apify_token": "apify_api_real"}, False),
    ({"apify_token": "apify_api_real", "apify_api_url": "https://api.apify.com/"}, False),
    ({"apify_token": ""}, True),
    ({"apify_token": "emulator-token", "apify_api_url": "http://127.0.0.1:8765"}, True),
])
def test_info_says_whether_apify_is_emulated(postgres_url, redis_url, settings, synthetic):
    app = create_app({"database_url": postgres_url, "redis_url": redis_url, **settings})
    response = app.test_client().get("/dashboard/info.json")
    assert response.status_code == 200 and response.get_json() == {"synthetic": synthetic}


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_a_job_from_the_dashboard(app, api_key, worker, emulator, web_server, browser, tmp_path):
    page = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(web_server + "/")
    assert page.locator("#app").is_hidden()
    hint = page.wait_for_selector("#key-hint", state="visible").text_content()
    assert "make run" in hint and "flask --app app local-key" in hint
    page.wait_for_selector("#synthetic", state="visible")  # the session's app has no Apify token

    page.fill("#api-key", "fs_not_a_key")
    page.click("text=Use key")
    page.wait_for_selector("#message.error >> text=not accepted")
    page.fill("#api-key", api_key)
    page.click("text=Use key")
    page.wait_for_selector("#app", state="visible")
    assert page.locator("#key-hint").is_hidden()

    page.fill("#accounts", "nike\n@Adidas")
    page.set_input_files("#accounts-file", files=[{
        "name": "accounts.csv", "mimeType": "text/csv", "buffer": b"username,notes\nnatgeo,big\nshop1,small\n"}])
    page.wait_for_selector("#message.info >> text=2 accounts read from accounts.csv")
    page.select_option("#gender", "female")
    page.fill("#total", "400")
    page.fill("#confidence", "0.6")
    page.click("#create-job")

    page.wait_for_selector("#job-rows tr.selected .status.completed", timeout=60_000)
    job_id = page.text_content("#job-id")
    client = authorised_client(app, api_key)
    status = client.get(f"/api/job-status/{job_id}").get_json()
    assert (status["status"], status["accounts"], status["target_gender"], status["min_confidence"]) == (
        "completed", 4, "female", 0.6)
    kept = status["profiles_kept"]
    assert kept > 100, "enough results for more than two pages"
    assert page.locator("#chart rect").count() == 6
    assert f"{status['gender_breakdown']['female']:,}" in page.text_content("#chart")
    assert page.text_content("#job-rows tr.selected .progress span") == "100%"

    profiles = all_results(client, job_id)
    page.wait_for_selector(f"#page-info >> text=1–50 of {kept:,}")
    assert page.locator("#result-rows tr").count() == 50
    assert page.text_content("#result-rows tr:first-child td:first-child") == profiles[0]["username"]
    check_profile_links(page, profiles[:50])
    page.click("#next-page")
    page.wait_for_selector(f"#page-info >> text=51–100 of {kept:,}")
    assert page.text_content("#result-rows tr:first-child td:first-child") == profiles[50]["username"]
    page.click("#prev-page")
    page.wait_for_selector(f"#page-info >> text=1–50 of {kept:,}")

    page.wait_for_selector("#account-rows tr:nth-child(4)")
    accounts = client.get(f"/api/jobs/{job_id}/accounts").get_json()["accounts"]
    shown = [[cell.text_content() for cell in tr.query_selector_all("td")] for tr in page.query_selector_all("#account-rows tr")]
    assert [cells[:2] + cells[4:5] for cells in shown] == [[a["account"], a["status"], f"{a['kept']:,}"] for a in accounts]
    overlap = client.get(f"/api/jobs/{job_id}/overlap?top=6").get_json()
    header = [th.text_content() for th in page.query_selector_all("#overlap-head td")]
    assert header == ["", *overlap["accounts"]]
    pair = overlap["shared"][0]
    row = overlap["accounts"].index(pair["a"]) + 1
    column = overlap["accounts"].index(pair["b"]) + 2
    assert page.text_content(f"#overlap-rows tr:nth-child({row}) td:nth-child({column})") == f"{pair['shared']:,}"

    with page.expect_download() as download_info:
        page.click("#download")
    download = download_info.value
    assert download.suggested_filename == f"followsift-{job_id}.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [row["profile_id"] for row in rows] == [p["profile_id"] for p in profiles]
    assert {row["gender"] for row in rows} == {"female"}

    screenshot = tmp_path / "dashboard.png"
    page.screenshot(path=screenshot, full_page=True)
    print(f"dashboard screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
    assert errors == []


def check_profile_links(page, profiles):
    """Each result row links its Instagram profile and shows its picture, never the referrer."""
    links = page.locator("#result-rows a.profile")
    assert links.count() == len(profiles)
    for i in (0, len(profiles) - 1):
        link, profile = links.nth(i), profiles[i]
        assert link.get_attribute("href") == f"https://www.instagram.com/{profile['username']}/"
        assert link.get_attribute("rel") == "noopener noreferrer"
        picture = link.locator("img")
        assert picture.get_attribute("src") == profile["profile_pic_url"]
        assert picture.get_attribute("referrerpolicy") == "no-referrer"
