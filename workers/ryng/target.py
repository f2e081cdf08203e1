"""Which Ryng the router talks to, and where Ryng calls back: both follow from settings alone."""

from __future__ import annotations

from config.settings import Settings

__all__ = ["SANDBOX_PATH", "callback_urls", "ryng_target"]

SANDBOX_PATH = "/rest-api/v1"


def ryng_target(settings: Settings) -> tuple[str, str]:
    """The Ryng base URL and token in force: the real account when a token is set, else the sandbox."""
    if not settings.uses_sandbox:
        url = settings.ryng_url
        if url is None:
            raise ValueError("RYNG_ACCESS_TOKEN is set: set RYNG_SUBDOMAIN or RYNG_BASE_URL too")
        token = settings.ryng_access_token
        assert token is not None
        return url, token.get_secret_value()
    url = settings.ryng_url or f"http://{settings.sandbox_host}:{settings.sandbox_port}{SANDBOX_PATH}"
    return url, settings.sandbox_token


def callback_urls(settings: Settings) -> tuple[str | None, str | None]:
    """The connect and terminal callback URLs handed to Ryng, when a public URL and secret are set."""
    secret = settings.router_callback_secret
    if not settings.router_public_url or secret is None or not secret.get_secret_value():
        return None, None
    base = f"{settings.router_public_url}/v1/ryng/{secret.get_secret_value()}"
    return f"{base}/connect", f"{base}/terminal"
