"""The Ryng sandbox: an HTTP server emulating Ryng's Create Campaign API (with its round-robin quirk, rate
limit, fault injection and simulated call callbacks) for development and end-to-end tests."""

from __future__ import annotations

from router.sandbox.app import create_sandbox_app, serve
from router.sandbox.options import FaultSettings, FaultsUpdate, SandboxOptions, parse_agents

__all__ = ["FaultSettings", "FaultsUpdate", "SandboxOptions", "create_sandbox_app", "parse_agents", "serve"]
