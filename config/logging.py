"""structlog set-up: once per process; JSON off a TTY, console on one; context variables merged first.

Loggers are named by module (`structlog.get_logger(__name__)`). In JSON, a traceback is structured data (the
`exception` key holds the exception chain with its frames), so a log pipeline can query it; on a console it is
the usual text.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer

_SECRET_KEYS = re.compile(r"token|secret|password|authorization|signature", re.IGNORECASE)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Never let a secret-looking field reach the output."""
    for key in list(event):
        if _SECRET_KEYS.search(key):
            event[key] = "***"
    return event


def configure_logging(*, level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog and the standard library's root logger to the same renderer."""
    render_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if render_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    # No local variables in tracebacks: they may hold a token or a customer's phone number.
    tracebacks: Any = (
        structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)) if render_json
        else structlog.processors.format_exc_info
    )
    structlog.configure(
        processors=[
            *shared,
            tracebacks,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, tracebacks, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
