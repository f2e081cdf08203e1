"""Start the real API with the admin router (`router.routes.admin`) mounted, as a real process.

When `router/app.py` mounts the admin router itself, `start_admin_api` is simply `Stack.start_api()` (the
`lead-router api` command). Until then it serves `create_app()` plus the admin router the same way the CLI
does (same logging set-up, no access log, same uvicorn limits).
"""

from __future__ import annotations

import sys
import uuid

from tests.harness import ROOT, Proc, Stack, free_port, wait_http


def admin_mounted() -> bool:
    return "admin.router" in (ROOT / "router" / "app.py").read_text()


def serve(port: int) -> None:
    """Run in a child process: the `lead-router api` command, with the admin router added."""
    import uvicorn

    from config.logging import configure_logging
    from config.settings import get_settings
    from router.app import create_app
    from router.limits import uvicorn_limits
    from router.routes import admin

    settings = get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    app = create_app(settings)
    if not any(getattr(route, "path", "").startswith("/v1/admin/dead") for route in app.routes):
        app.include_router(admin.router)
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                **uvicorn_limits())  # type: ignore[arg-type]


def start_admin_api(stack: Stack) -> Proc:
    """The API with the admin routes, as a process of `stack` (stopped with it)."""
    if admin_mounted():
        return stack.start_api()
    port = free_port()
    stack.api_url = f"http://127.0.0.1:{port}"
    stack.settings.setdefault("ROUTER_PUBLIC_URL", stack.api_url)
    stack.settings.setdefault("ROUTER_CALLBACK_SECRET", uuid.uuid4().hex)
    code = f"from tests.integration.admin_app import serve; serve({port})"
    proc = stack.spawn("api", [sys.executable, "-c", code])
    wait_http(f"{stack.api_url}/healthz")
    return proc
