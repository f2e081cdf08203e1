"""`lead-router sandbox`: run the Ryng sandbox (registered by the main CLI as `app.command("sandbox")`)."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError


def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    token: Annotated[str, typer.Option(envvar="SANDBOX_TOKEN", help="Accepted x-access-token.")] = (
        "sandbox-token"
    ),
    agents: Annotated[
        str, typer.Option(help="Agents as username:id, comma separated, first = Ryng's first.")
    ] = ("alice:10,bob:20"),
    rate_limit: Annotated[int, typer.Option(help="Requests per token per rolling window.")] = 60,
    rate_window: Annotated[float, typer.Option(help="The rolling window, in seconds (60 at Ryng).")] = 60.0,
    call_delay: Annotated[float, typer.Option(help="Seconds from acceptance to the first callback.")] = 2.0,
    no_calls: Annotated[
        bool, typer.Option("--no-calls", help="Do not simulate calls or send callbacks.")
    ] = False,
    callback_retry: Annotated[float, typer.Option(help="Seconds between callback retries.")] = 60.0,
    fail_rate: Annotated[float, typer.Option(help="Probability (0..1) of a random failure.")] = 0.0,
    fail_status: Annotated[int, typer.Option(help="Status code of injected failures.")] = 500,
    latency_ms: Annotated[int, typer.Option(help="Latency added to every campaign request.")] = 0,
    seed: Annotated[int | None, typer.Option(help="Seed for random failures and call outcomes.")] = None,
) -> None:
    """Run the Ryng sandbox: Ryng's Create Campaign API, in memory, with faults and simulated callbacks."""
    from router.cli.ports import refuse_busy_port
    from router.sandbox import SandboxOptions, parse_agents, serve  # the web stack, only when the sandbox runs

    try:
        options = SandboxOptions(
            token=token,
            agents=parse_agents(agents),
            rate_limit_per_min=rate_limit,
            rate_window_seconds=rate_window,
            call_delay_seconds=call_delay,
            simulate_calls=not no_calls,
            callback_retry_seconds=callback_retry,
            fail_rate=fail_rate,
            fail_status=fail_status,
            latency_ms=latency_ms,
            seed=seed,
        )
    except (ValueError, ValidationError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    refuse_busy_port("sandbox", host, port, fix="SANDBOX_PORT / --port")
    typer.echo(f"RYNG_BASE_URL=http://{host}:{port}/rest-api/v1")
    serve(host=host, port=port, options=options)
