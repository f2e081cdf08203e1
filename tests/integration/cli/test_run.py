"""`lead-router run` (what `make run` starts): embedded Redis, sandbox, API, worker and Flower, stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx

from tests.harness import ROOT, cli, free_port, wait_http, wait_until


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_run_from_a_copied_env_example_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    """As a newcomer would: `cp .env.example .env`, change a few values, `make run` (from another folder here)."""
    api_port, sandbox_port, flower_port = free_port(), free_port(), free_port()
    overrides = {"ROUTER_PORT": str(api_port), "SANDBOX_PORT": str(sandbox_port), "ROUTER_AGENTS": "carol,dave",
                 "SANDBOX_TOKEN": "my-sandbox-token", "ROUTER_EMBEDDED_REDIS_DIR": str(tmp_path / "redis"),
                 "LOG_FORMAT": "json"}
    lines = [line for line in (ROOT / ".env.example").read_text().splitlines()
             if line.split("=", 1)[0] not in overrides]
    (tmp_path / ".env").write_text("\n".join([*lines, *(f"{k}={v}" for k, v in overrides.items())]) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RYNG_", "ROUTER_", "CELERY_", "REDIS_"))}
    env |= {"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "run.log").open("wb")
    run = subprocess.Popen([*cli("run", "--flower-port", str(flower_port))], env=env, cwd=tmp_path, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    try:
        api = f"http://127.0.0.1:{api_port}"
        wait_http(f"{api}/healthz", timeout=60)
        output = wait_until(lambda: (lambda text: text if "Ctrl-C stops everything" in text else "")(
            (tmp_path / "run.log").read_text()), timeout=30, what="the start-up summary")
        assert "embedded Valkey" in output and "built-in sandbox" in output
        assert "agents (name:Ryng id) carol:10, dave:20" in output
        assert "export REDIS_URL=redis://127.0.0.1:" in output and "Bearer " in output
        with httpx.Client(timeout=10) as client:
            for lead_id, number in (("XT243", "998314242"), ("XT250", "893247489")):
                answer = client.post(f"{api}/v1/leads", json={"id": lead_id, "number": number})
                assert answer.status_code == 202, answer.text
            campaigns_url = f"http://127.0.0.1:{sandbox_port}/_sandbox/campaigns"
            campaigns = wait_until(lambda: (lambda c: c if len(c) == 2 else None)(client.get(campaigns_url).json()),
                                   timeout=30, what="two campaigns")
            assert [c["agents"] for c in campaigns] == [["carol"], ["dave"]]
            record = client.get(f"{api}/v1/leads/XT243").json()
            assert record["status"] in ("posted", "connected", "completed") and record["attempts"] == 1
            assert campaigns[0]["terminal_callback_url"].startswith(api)  # callbacks come back to this router
            assert client.get(f"http://127.0.0.1:{flower_port}/").status_code == 401  # Flower wants its password
        redis_port = int(output.split("redis://127.0.0.1:", 1)[1].split("/", 1)[0])
        run.send_signal(signal.SIGINT)  # Ctrl-C
        assert run.wait(40) == 0
        for port in (api_port, sandbox_port, flower_port, redis_port):
            assert not listening(port), f"port {port} still open after Ctrl-C"
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        log.close()
