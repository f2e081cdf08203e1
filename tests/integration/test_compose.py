"""docker-compose.yml and .dockerignore: valid YAML, a routing-file mount, and a worker healthcheck whose command
answers 0 with the worker up and fails with it down (run here for real, against a real worker)."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import yaml

from tests.harness import ROOT, Stack


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_the_build_context_leaves_out_the_virtualenv_state_and_history() -> None:
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", "var", ".git", ".env", "**/__pycache__", ".mypy_cache", ".pytest_cache"} <= ignored
    dockerfile = (ROOT / "Dockerfile").read_text()
    for needed in ("pyproject.toml", "README.md", "router", "workers", "config"):  # what the image copies
        assert needed in dockerfile and needed not in ignored


def test_every_router_service_mounts_the_routing_folder_and_names_the_file() -> None:
    services = _compose()["services"]
    for name in ("api", "worker", "flower", "sandbox"):
        service = services[name]
        assert "${ROUTING_DIR:-./examples}:/etc/lead-router:ro" in service["volumes"]
        assert service["environment"]["ROUTER_ROUTING_FILE"] == \
            "${ROUTING_FILE:+/etc/lead-router/}${ROUTING_FILE:-}"
    assert "volumes" not in services["redis"] or all("lead-router" not in v for v in services["redis"]["volumes"])


def test_the_worker_healthcheck_pings_this_worker(make_stack: Callable[..., Stack]) -> None:
    check = _compose()["services"]["worker"]["healthcheck"]
    kind, command = check["test"]
    assert kind == "CMD-SHELL"
    # As the container's shell runs it ($$ is compose's escape for $), with this venv's Celery.
    words = shlex.split(command.replace("$$", "$"))
    assert words[0] == "celery"
    argv = [sys.executable, "-m", "celery", *words[1:]]
    stack = make_stack()
    env = stack.env | {"HOSTNAME": socket.gethostname()}
    script = " ".join(shlex.quote(word) if "$" not in word else word for word in argv)
    down = subprocess.run(["sh", "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert down.returncode != 0, down.stdout
    stack.start_worker(concurrency=1, name="celery")  # node celery@<this host>, as in the container
    up = subprocess.run(["sh", "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "pong" in up.stdout
