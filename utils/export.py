"""Every result of a job as CSV or NDJSON, streamed page by page in constant memory.

The rows are read by keyset (`results.result_page` after the last id), one page of
EXPORT_PAGE_SIZE at a time, and each page is encoded and handed on before the next is read.

CSV: a header row, then one row per profile; `source_accounts` is joined with ";" (Instagram
usernames cannot contain it) and booleans are `true`/`false`, as in the JSON. Text cells that
a spreadsheet could read as a formula are prefixed with "'" (OWASP's advice on CSV injection;
see `spreadsheet_safe`): display names are written by strangers. NDJSON: one JSON object per
line, exactly as the results API pages them, `source_accounts` a list.
"""
import csv
import io
import json
import re
import unicodedata

from utils.store import results

EXPORT_PAGE_SIZE = 1000
FORMATS = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
# A tab, CR or LF first; or = + - @ | % after any blanks, zero-width characters included.
_FORMULA = re.compile(r"[\t\r\n]|[\s\u200b-\u200d\u2060\ufeff]*[=+\-@|%]")


def profiles(engine, job_id, page_size=EXPORT_PAGE_SIZE, source=None):
    """Yield the job's profiles (those found under input account `source`, if given) a page (a
    list) at a time, in the order they were stored."""
    after_id = None
    while True:
        page, next_cursor = results.result_page(engine, job_id, page_size, after_id=after_id, source=source)
        if page:
            yield page
        if next_cursor is None:
            return
        after_id = results.decode_cursor(next_cursor)


def stream(engine, job_id, fmt, source=None):
    """Yield the export of `fmt` ("csv" or "ndjson") as text chunks, one per page."""
    if fmt == "csv":
        yield _csv_lines([results.RESULT_COLUMNS])
        for page in profiles(engine, job_id, source=source):
            yield _csv_lines(_csv_row(profile) for profile in page)
    else:
        for page in profiles(engine, job_id, source=source):
            yield "".join(json.dumps(profile, ensure_ascii=False) + "\n" for profile in page)


def _csv_lines(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def spreadsheet_safe(text):
    """`text` with a leading "'" when a spreadsheet could take it for a formula (or for a DDE
    `|` command or a `%` macro). Spreadsheets skip leading blanks, and some fold full-width and
    other compatibility forms ("＝", "﹢") to ASCII, so the test runs on the NFKC form."""
    return "'" + text if _FORMULA.match(unicodedata.normalize("NFKC", text)) else text


def _csv_row(profile):
    row = []
    for name in results.RESULT_COLUMNS:
        value = profile[name]
        if name == "source_accounts":
            value = ";".join(value)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, str):
            value = spreadsheet_safe(value)
        row.append("" if value is None else value)
    return row
