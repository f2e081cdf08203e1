"""Settings for CLI commands: loaded once, and a bad setting ends the command with one line naming it."""

from __future__ import annotations

import typer

from config.settings import Settings, SettingsError, get_settings


def settings_or_exit() -> Settings:
    """Load settings; a bad one stops the command with exit code 2 and one line naming it."""
    try:
        return get_settings()
    except SettingsError as exc:
        typer.echo(f"lead-router: {exc}", err=True)
        raise typer.Exit(2) from None
