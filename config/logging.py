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


class _LineWriter:
    """structlog's logger: writes each rendered line to the root handler's stream, under the handler's lock.

    Our own log lines (one per HTTP request, among others) so skip the standard library's record, caller lookup
    and second formatting pass; other libraries' records still go through the handler. Both end up as the same
    lines in the same stream.
    """

    def __init__(self, handler: logging.StreamHandler[Any], name: str) -> None:
        self._handler = handler
        self.name = name

    def msg(self, message: str) -> None:
        handler = self._handler
        handler.acquire()
        try:
            handler.stream.write(message + "\n")
            handler.flush()
        finally:
            handler.release()

    log = debug = info = warn = warning = err = error = critical = fatal = failure = exception = msg


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
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, tracebacks, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    structlog.configure(
        processors=[*shared, tracebacks, renderer],
        logger_factory=lambda *args: _LineWriter(handler, str(args[0]) if args else ""),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


#: Celery's per-task lines ("Task ... received", "Task ... succeeded in ...s"): the router's own line per delivery
#: step says the same with the lead, its outcome and Ryng's answer.
CELERY_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def quiet_task_lines(level: str) -> None:
    """A worker logs one line per task, its own: Celery's received/succeeded lines only at DEBUG (failures and
    retries are warnings and errors, so they still show)."""
    if logging.getLevelName(level) > logging.DEBUG:
        for name in CELERY_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
