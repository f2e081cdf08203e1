"""`lead-router import` as an operator runs it: bad rows listed with their line, one summary (per agent, when the
last lead reaches Ryng), a fatal error summarised the same way, and a progress bar only on a terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.harness import ROOT, Stack, cli


def _sheet(path: Path, rows: int) -> Path:
    path.write_bytes(
        b"id,number,name,agent,Product,City\n"
        + b"".join(f"R{i},99831{i:04d},Name {i},,Life,Pune\n".encode() for i in range(rows))
        + b"BAD1,12,Short,,Life,Pune\n"
        + b"BAD2,998300001,Ren\xe9,,Life,Pune\n"
        + f"BAD3,998300002,Big,,{'x' * 200_000},Pune\n".encode()
        + b"X1,998300003,Pinned,bob,Motor,Goa\n"
    )
    return path


def test_import_lists_bad_rows_and_summarises(make_stack: Callable[..., Stack], tmp_path: Path) -> None:
    stack = make_stack(RYNG_RATE_LIMIT_PER_MIN="60")
    sheet = _sheet(tmp_path / "leads.csv", rows=5)
    done = subprocess.run(cli("import", str(sheet)), env=stack.env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "importing" not in done.stderr  # no progress bar off a terminal
    assert f"redis: {stack.redis_url} (REDIS_URL in the environment)" in done.stderr
    rejected = [line for line in done.stderr.splitlines() if line.startswith("rejected ")]
    assert [line.split(":", 1)[0] for line in rejected] == ["rejected line 7", "rejected line 8", "rejected line 9"]
    assert "not UTF-8" in rejected[1] and "field larger than field limit" in rejected[2]
    out = done.stdout
    assert "6 taken, 0 already known, 3 rejected (9 rows read)" in out
    assert "extra columns, kept as lead fields: Product, City" in out
    assert "by agent so far: " in out  # no worker runs here: the leads wait in the queue
    assert "asked for: routing rules 5, agent bob 1" in out
    assert "at 60 per minute (RYNG_RATE_LIMIT_PER_MIN) the last of these 6 leads reaches Ryng in about 6 s" in out

    header = tmp_path / "no-number.csv"
    header.write_text("id,phone\nA1,998314242\n")
    fatal = subprocess.run(cli("import", str(header)), env=stack.env, cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert fatal.returncode == 2 and "Traceback" not in fatal.stderr
    assert "0 taken, 0 already known, 0 rejected (0 rows read)" in fatal.stdout
    assert "stopped at line 1: the CSV header must include number" in fatal.stdout


def test_the_progress_bar_shows_on_a_terminal_only(make_stack: Callable[..., Stack], tmp_path: Path) -> None:
    stack = make_stack()
    sheet = _sheet(tmp_path / "leads.csv", rows=300)
    main, terminal = pty.openpty()
    proc = subprocess.Popen(cli("import", str(sheet)), env=stack.env | {"COLUMNS": "160"}, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        assert ready, "no output from the import"
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the import ended: its terminal closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and b"301 taken, 0 already known, 3 rejected (304 rows read)" in out
    text = shown.decode(errors="replace")
    assert "importing" in text and "100%" in text and "rows/s" in text and "304 rows" in text, text[-2000:]
