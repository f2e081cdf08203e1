"""The files `lead-router run` keeps: secrets generated once (0600), run.env only while its process lives."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from router.cli.run_files import read_run_env, remove_run_env, run_secrets, write_run_env
from workers.store.embedded import choose_port


def test_secrets_are_generated_once_private_and_kept(tmp_path: Path) -> None:
    first, created = run_secrets(tmp_path)
    assert created and set(first) == {"FLOWER_PASSWORD", "ROUTER_ADMIN_TOKEN", "ROUTER_CALLBACK_SECRET"}
    assert len(set(first.values())) == 3 and all(len(value) >= 16 for value in first.values())
    path = tmp_path / "secrets.env"
    assert path.stat().st_mode & 0o777 == 0o600
    os.chmod(path, 0o644)  # loosened by hand: put back to 0600, values unchanged
    again, created_again = run_secrets(tmp_path)
    assert again == first and not created_again
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_missing_secret_is_added_and_the_others_kept(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text("FLOWER_PASSWORD=mine\n")
    values, created = run_secrets(tmp_path)
    assert created and values["FLOWER_PASSWORD"] == "mine" and values["ROUTER_ADMIN_TOKEN"]


def test_run_env_is_read_only_while_its_process_lives(tmp_path: Path) -> None:
    write_run_env(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6390/0"})
    assert read_run_env(tmp_path) == {"REDIS_URL": "redis://127.0.0.1:6390/0"}
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    text = (tmp_path / "run.env").read_text().replace(f"PID={os.getpid()}", f"PID={gone.stdout.strip()}")
    (tmp_path / "run.env").write_text(text)  # the run was killed: its file stays, its process is gone
    assert read_run_env(tmp_path) is None
    remove_run_env(tmp_path)
    assert not (tmp_path / "run.env").exists() and read_run_env(tmp_path) is None


def test_the_embedded_port_is_kept_unless_another_process_listens_on_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        taken.listen()
        choice = choose_port(port)
        assert choice.port != port
        assert choice.why_not == f"port {port} is taken (another process listens on it)"
    assert choose_port(port).port == port and choose_port(port).why_not is None
