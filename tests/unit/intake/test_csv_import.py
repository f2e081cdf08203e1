"""CSV import on a real Redis: bad rows (invalid, oversize cell, bad bytes) are listed with their line and the
import goes on; a fatal error (Redis gone) ends it with a report of what was taken and where it stopped."""

from __future__ import annotations

import csv
from pathlib import Path

import redis

from router.intake.csv_import import import_csv
from tests.harness import free_port
from workers.store.embedded import start_embedded
from workers.store.keys import Keys
from workers.store.records import LeadStore


def test_bad_rows_are_listed_with_their_line_and_the_rest_is_taken(
    tmp_path: Path, redis_client: redis.Redis, key_prefix: str
) -> None:
    sheet = tmp_path / "leads.csv"
    huge = "x" * (csv.field_size_limit() + 10)
    sheet.write_bytes(
        b"id,number,name,pool,Product,City\n"
        b"A1,998314242,James,,Life,Pune\n"
        b"A2,12,Short,,Life,Pune\n"
        b"A3,893247489,Ren\xe9,,Motor,Goa\n"
        + f"A4,893247480,Big,,{huge},Goa\n".encode()
        + b"A5,893247481,Mia,life,Motor,Goa\n"
        b"A6,893247482,Noor,nowhere,Motor,Goa\n"
    )
    store = LeadStore(redis_client, keys=Keys(key_prefix))
    queued: list[str] = []
    seen: list[tuple[int, int]] = []
    report = import_csv(sheet, store=store, enqueue=queued.append, pools=["life"],
                        progress=lambda done, rows: seen.append((done, rows)))
    assert report.stopped is None and report.rows == 6 and report.line == 7
    assert (report.taken, report.duplicates) == (2, 0) and queued == ["A1", "A5"] == report.taken_ids
    assert [error.split(":", 1)[0] for error in report.errors] == ["line 3", "line 4", "line 5", "line 7"]
    assert "column 'name' is not UTF-8 text" in report.errors[1]
    assert "unreadable row: field larger than field limit" in report.errors[2]
    assert "nowhere" in report.errors[3]
    assert report.extra_columns == ["Product", "City"]
    assert dict(report.targets) == {"routing rules": 1, "pool life": 1}
    record = store.get("A1")
    assert record is not None and record.fields == {"Product": "Life", "City": "Pune"}  # extra columns as fields
    assert [rows for _, rows in seen] == [1, 2, 3, 4, 5, 6] and seen[-1][0] == sheet.stat().st_size


def test_a_header_without_the_lead_columns_stops_at_line_1(
    tmp_path: Path, redis_client: redis.Redis, key_prefix: str
) -> None:
    sheet = tmp_path / "leads.csv"
    sheet.write_text("id,phone\nA1,998314242\n")
    report = import_csv(sheet, store=LeadStore(redis_client, keys=Keys(key_prefix)), enqueue=lambda _: None)
    assert report.stopped is not None and "must include number" in report.stopped
    assert report.taken == 0 and report.line == 0


def test_redis_going_away_stops_the_import_with_what_was_taken(tmp_path: Path) -> None:
    sheet = tmp_path / "leads.csv"
    sheet.write_text("id,number\n" + "".join(f"B{i},99831424{i}\n" for i in range(6)))
    server = start_embedded(port=free_port())
    client = redis.Redis(port=server.port, decode_responses=True, socket_timeout=2)
    try:
        def stop_after_two(_: int, rows: int) -> None:
            if rows == 2:
                server.stop()

        report = import_csv(sheet, store=LeadStore(client, keys=Keys("t")), enqueue=lambda _: None,
                            progress=stop_after_two)
    finally:
        client.close()
        if server.is_running():
            server.stop()
    assert report.stopped is not None and report.taken == 2
    assert report.line == 4 and report.rows == 3  # the third row (line 4) is where it stopped
