"""Busy ports: found before a server starts, and reported in one line that says what to do."""

from __future__ import annotations

import socket

import typer

__all__ = ["port_busy", "refuse_busy_port"]


def port_busy(host: str, port: int) -> bool:
    """True when a server could not listen on host:port (bound with SO_REUSEADDR, as uvicorn does)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def refuse_busy_port(command: str, host: str, port: int, *, fix: str) -> None:
    """Stop the command (exit 2) with one line when host:port is taken; `fix` names the setting or option."""
    if port_busy(host, port):
        typer.echo(f"lead-router {command}: port {port} is in use: stop the other process or set {fix}", err=True)
        raise typer.Exit(2)
