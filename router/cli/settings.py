"""Settings for CLI commands: loaded once, and a bad setting ends the command with one line naming it.

While `lead-router run` runs, commands in other terminals find its Redis by themselves: when REDIS_URL is not in
the environment, the run's `var/run.env` supplies it (and the routing file), and each command names the Redis it
uses on stderr (`redis_source`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from config.settings import Settings, SettingsError, get_settings
from router.cli.run_files import RUN_ENV, read_run_env
from workers.store.connections import masked, redis_url

if TYPE_CHECKING:
    from workers.services import Services

__all__ = ["redis_source", "services_or_exit", "settings_or_exit"]

#: The REDIS_URL this process took from a run's run.env ("url", "file"), and whether it named its Redis yet.
_from_run: dict[str, str] = {}


def _load() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        typer.echo(f"lead-router: {exc}", err=True)
        raise typer.Exit(2) from None


def _adopt_run(settings: Settings) -> Settings:
    """Take REDIS_URL (and the routing file or agents) from a run in progress, unless REDIS_URL is set already."""
    if "REDIS_URL" in os.environ or settings.redis_url:
        return settings
    run_dir = Path(settings.router_run_dir)
    values = read_run_env(run_dir)
    if not values or not values.get("REDIS_URL"):
        return settings
    # Through the environment, so that every reader of the settings (the Celery app's broker too) agrees.
    os.environ["REDIS_URL"] = values["REDIS_URL"]
    for name in ("ROUTER_ROUTING_FILE", "ROUTER_AGENTS"):  # the run's routing, unless this shell names its own
        if values.get(name) and name not in os.environ:
            os.environ[name] = values[name]
    _from_run["url"] = values["REDIS_URL"]
    _from_run["file"] = str(run_dir / RUN_ENV)
    get_settings.cache_clear()
    return _load()


def redis_source(settings: Settings) -> tuple[str, str]:
    """The Redis these settings use (password masked) and where that came from."""
    url = redis_url(settings.redis_url)
    if settings.redis_url is None:
        where = "default: no REDIS_URL set and no `lead-router run` running here"
    elif _from_run.get("url") == settings.redis_url:
        where = f"from make run, {_from_run['file']}"
    elif os.environ.get("REDIS_URL") == settings.redis_url:
        where = "REDIS_URL in the environment"
    else:
        where = "REDIS_URL in .env"
    return masked(url), where


def settings_or_exit(*, find_run: bool = True, announce: bool = True) -> Settings:
    """Load settings; a bad one stops the command with exit code 2 and one line naming it.

    `find_run` takes a running `lead-router run`'s Redis when REDIS_URL is not set; `announce` names the Redis
    in use on stderr.
    """
    settings = _load()
    if find_run:
        settings = _adopt_run(settings)
    if announce and not _from_run.get("announced"):
        _from_run["announced"] = "yes"  # once per command, however often it loads its settings
        url, where = redis_source(settings)
        typer.echo(f"redis: {url} ({where})", err=True)
    return settings


def services_or_exit() -> Services:
    """The router's services for an operator command (each collaborator is built only when used)."""
    from workers.services import Services

    services = Services.from_settings(settings_or_exit())
    services.migrate()
    return services
