"""`lead-router status` against real Redis and a real worker (for the Celery ping)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable

from tests.harness import Stack, cli
from workers.fetch.waits import FetchWaits
from workers.store.connections import connect
from workers.store.keys import Keys
from workers.store.records import LeadStore


def _status(stack: Stack, *args: str) -> str:
    done = subprocess.run(cli("status", *args), env=stack.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_status_names_the_redis_the_workers_the_agents_and_the_pause(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(ROUTER_ADMIN_TOKEN="status-admin")
    stack.start_api()
    before = _status(stack)
    assert "Workers    0 online" in before
    assert f"Redis      {stack.redis_url}  (REDIS_URL in the environment)" in before

    stack.start_worker(concurrency=1, name="statusnode")
    auth = {"authorization": "Bearer status-admin"}
    assert stack.client.post(f"{stack.api_url}/v1/admin/agents/bob/pause", headers=auth,
                             json={"reason": "training"}).status_code == 200
    out = _status(stack)
    assert "Workers    1 online: statusnode@" in out
    assert "Delivery   running" in out
    assert "Budget     6000 of 6000 Ryng requests left" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "available" in lines["alice"] and "paused (training)" in lines["bob"]
    assert "next: alice" in out
    assert "Queue      0 queued" in out and "Dead       0" in out and "Callbacks  0 unmatched" in out
    assert "Fetching   none" in out


def test_status_counts_leads_waiting_for_their_crm_record(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    keys = Keys(stack.settings["ROUTER_KEY_PREFIX"])
    client = connect(stack.redis_url)
    try:
        waits = FetchWaits(client, keys=keys, store=LeadStore(client, keys=keys))
        for lead_id in ("F1", "F2", "F3"):
            waits.accept(lead_id=lead_id, crm_id=f"crm-{lead_id}", source="hubspot")
            waits.retry_later(lead_id, attempts=1, error="CRM answered 503", delay_seconds=600)
    finally:
        client.close()
    out = _status(stack)
    fetching = next(line for line in out.splitlines() if line.startswith("Fetching"))
    assert fetching in {f"Fetching   3 waiting for their CRM record; next read in {minutes} min" for minutes in (9, 10)}
    assert "Waiting    none" in out and "crm-F1" not in out


def test_status_watch_redraws_until_ctrl_c(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    proc = subprocess.Popen(cli("status", "--watch"), env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        seen = 0
        for line in proc.stdout:
            seen += "Redis      " in line  # (the clear-screen code is dropped when the output is not a terminal)
            if seen == 2:  # a second picture came by itself
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert seen == 2
    assert proc.returncode == 0 and "Traceback" not in err, err
