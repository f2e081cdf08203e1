"""Settings for CLI commands: loaded once, and a bad setting ends the command with one line naming it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from config.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:
    from workers.services import Services


def settings_or_exit() -> Settings:
    """Load settings; a bad one stops the command with exit code 2 and one line naming it."""
    try:
        return get_settings()
    except SettingsError as exc:
        typer.echo(f"lead-router: {exc}", err=True)
        raise typer.Exit(2) from None


def services_or_exit() -> Services:
    """The router's services for an operator command (each collaborator is built only when used)."""
    from workers.services import Services

    services = Services.from_settings(settings_or_exit())
    services.migrate()
    return services
