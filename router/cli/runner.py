"""`lead-router run`: the whole router on one machine for development — Redis, sandbox, API and a worker."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from config.settings import Settings


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
        for _, process in reversed(self.children):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, process in reversed(self.children):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
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
    """Start everything on embedded defaults; print what runs where; stop cleanly."""
    from workers.store.embedded import start_embedded

    env = dict(os.environ)
    server = None
    if not settings.redis_url:
        server = start_embedded(data_dir=settings.router_embedded_redis_dir)
        env["REDIS_URL"] = f"redis://127.0.0.1:{server.port}/0"
    # Two example agents, unless the agents come from ROUTER_AGENTS or a routing file.
    agents = settings.router_agents or ("" if settings.router_routing_file else "alice,bob")
    env["ROUTER_AGENTS"] = agents
    roster = sandbox_agents(settings, agents)
    public_url = settings.router_public_url or f"http://{settings.router_host}:{settings.router_port}"
    env["ROUTER_PUBLIC_URL"] = public_url
    if settings.router_callback_secret is None:
        env["ROUTER_CALLBACK_SECRET"] = secrets.token_urlsafe(24)
    if settings.router_admin_token is None:
        env["ROUTER_ADMIN_TOKEN"] = secrets.token_urlsafe(18)
    # Development: lead records are readable from this machine without a token (never from elsewhere).
    env.setdefault("ROUTER_LOOPBACK_READS", "true")
    exe = [sys.executable, "-m", "router.cli"]
    supervisor = Supervisor()
    where = {"redis": f"{env.get('REDIS_URL') or settings.redis_url}" + (" (embedded Valkey)" if server else "")}
    password = env.get("FLOWER_PASSWORD") or secrets.token_urlsafe(9)
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
                                        f"--basic-auth=admin:{password}", "--logging=warning"], env)
            where["flower"] = f"http://127.0.0.1:{flower_port}  (user admin, password {password})"
        if not wait_http(f"{public_url}/healthz"):
            print("lead-router run: the API did not start", file=sys.stderr)
            return 1
        where["api"] = f"{public_url}  (docs {public_url}/docs)"
        if settings.router_admin_token is None:
            where["admin"] = f"{public_url}/v1/admin  (Authorization: Bearer {env['ROUTER_ADMIN_TOKEN']})"
        where["worker"] = f"{concurrency} process(es); agents (name:Ryng id) {roster.replace(',', ', ')}"
        lines = [f"{name:<8} {value}" for name, value in where.items()]
        lines += [
            "",
            "Operator commands (lead-router agents list, explain ID, dead list, ...) in another terminal:",
            f"  export REDIS_URL={env['REDIS_URL']}" if server else "  (they use the same REDIS_URL)",
            *([f"  export ROUTER_ROUTING_FILE={settings.router_routing_file}"] if settings.router_routing_file else []),
            "",
            "Route a lead:",
            f"  curl -X POST {public_url}/v1/leads -H 'content-type: application/json' \\",
            "    -d '{\"id\":\"XT243\",\"number\":\"998314242\",\"name\":\"James\","
            "\"fields\":{\"Product\":\"Life Insurance\"}}'",
            f"  curl {public_url}/v1/leads/XT243      (from this machine; elsewhere with the admin token)",
            "Ctrl-C stops everything.",
        ]
        print("\n".join(lines), flush=True)
        return supervisor.wait()
    finally:
        supervisor.stop()
        if server is not None:
            server.stop()
