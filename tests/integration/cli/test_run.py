"""`lead-router run` (what `make run` starts): embedded Redis, sandbox, API, worker and Flower, stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from router.cli.run_files import write_run_env
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
                 "ROUTER_EMBEDDED_REDIS_PORT": str(free_port()), "LOG_FORMAT": "json"}
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
        assert "finds this Redis (var/run.env)" in output and "Bearer " in output
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


def _start_run(tmp_path: Path, env: dict[str, str], log_name: str) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = tmp_path / log_name
    with log_path.open("wb") as log:
        run = subprocess.Popen([*cli("run", "--flower-port", "0")], env=env, cwd=tmp_path, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    return run, log_path


def _run_once(tmp_path: Path, env: dict[str, str], log_name: str, *, while_running: Callable[[], None]) -> str:
    """One `lead-router run` until its summary, `while_running()`, then Ctrl-C: must exit 0; returns its output."""
    run, log_path = _start_run(tmp_path, env, log_name)
    try:
        wait_until(lambda: "Ctrl-C stops everything" in log_path.read_text() or run.poll() is not None,
                   timeout=90, what="the start-up summary")
        assert run.poll() is None, log_path.read_text()
        while_running()
        run.send_signal(signal.SIGINT)  # Ctrl-C reaches the supervisor only (as from a terminal)
        assert run.wait(60) == 0, log_path.read_text()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    return log_path.read_text()


def test_run_keeps_its_redis_port_and_secrets_and_stops_quietly(tmp_path: Path) -> None:
    """Two runs in one folder: the same Redis port and credentials; the CLI finds the run's Redis by itself;
    Ctrl-C stops everything (Redis last) with exit 0 and no traceback."""
    redis_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RYNG_", "ROUTER_", "CELERY_", "REDIS_"))}
    env |= {"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), "ROUTER_PORT": str(free_port()),
            "SANDBOX_PORT": str(free_port()), "ROUTER_EMBEDDED_REDIS_PORT": str(redis_port),
            "ROUTER_EMBEDDED_REDIS_DIR": str(tmp_path / "redis"), "LOG_FORMAT": "json"}
    secrets_file, run_env = tmp_path / "var" / "secrets.env", tmp_path / "var" / "run.env"
    seen: dict[str, str] = {}

    def operator_command() -> None:
        assert run_env.exists() and (run_env.stat().st_mode & 0o777) == 0o600
        seen["secrets"] = secrets_file.read_text()
        cli_env = {k: v for k, v in env.items() if k != "ROUTER_EMBEDDED_REDIS_PORT"}
        done = subprocess.run(cli("agents", "list"), env=cli_env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert f"redis: redis://127.0.0.1:{redis_port}/0 (from make run, var/run.env)" in done.stderr
        assert "alice" in done.stdout and "bob" in done.stdout  # the run's worker registered them there

    first = _run_once(tmp_path, env, "first.log", while_running=operator_command)
    first_secrets = seen["secrets"]
    assert (secrets_file.stat().st_mode & 0o777) == 0o600
    assert not run_env.exists(), "run.env outlived the run"
    assert not listening(redis_port)
    # A second run, right after: connections of the first may linger in TIME_WAIT, the port is still its own.
    second = _run_once(tmp_path, env, "second.log", while_running=operator_command)
    assert seen["secrets"] == first_secrets
    for output in (first, second):
        assert f"redis    redis://127.0.0.1:{redis_port}/0 (embedded Valkey)" in output
        assert "Traceback" not in output and "pump_round_failed" not in output
        assert "Connection refused" not in output and "Error 111" not in output
    assert "new credentials" in first and "new credentials" not in second
    password = first_secrets.split("FLOWER_PASSWORD=", 1)[1].split()[0]
    assert f"Flower password (user admin): {password}" not in second  # no Flower on this run: not shown
    admin = first_secrets.split("ROUTER_ADMIN_TOKEN=", 1)[1].split()[0]
    assert f"Bearer {admin}" in first and f"Bearer {admin}" in second


def test_run_on_a_busy_port_says_which_and_how_to_fix_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RYNG_", "ROUTER_", "CELERY_", "REDIS_"))}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env |= {"PYTHONPATH": str(ROOT), "ROUTER_PORT": str(free_port()), "SANDBOX_PORT": str(port)}
        done = subprocess.run(cli("run", "--flower-port", "0"), env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2
        assert done.stderr.strip().splitlines()[-1] == (
            f"lead-router run: port {port} (sandbox) is in use: stop the other process or set SANDBOX_PORT")
        api = subprocess.run(cli("api", "--port", str(port)), env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
        assert api.returncode == 2
        assert api.stderr.strip().splitlines()[-1] == (
            f"lead-router api: port {port} is in use: stop the other process or set ROUTER_PORT / --port")
        assert "Traceback" not in api.stderr + done.stderr
    assert not (tmp_path / "var" / "run.env").exists()
    write_run_env(tmp_path / "var", {"REDIS_URL": "redis://127.0.0.1:6390/0"})  # a run of this (live) process
    env["SANDBOX_PORT"] = str(free_port())
    second = subprocess.run(cli("run", "--flower-port", "0"), env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 2
    assert "another run is in progress in this folder (var/run.env)" in second.stderr.strip().splitlines()[-1]
