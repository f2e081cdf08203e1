"""Logging: JSON lines with the module's logger name, tracebacks as data (without locals), secrets masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from config.logging import CELERY_TASK_LOGGERS, configure_logging, quiet_task_lines


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Configure JSON logging as a process does, with the one handler writing to a buffer; read its lines."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(level="INFO", fmt="json")
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    structlog.reset_defaults()
    root.handlers[:], root.level = saved[0], saved[1]


def test_a_traceback_is_structured_data(json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    log = structlog.get_logger("workers.delivery.deliverer")
    customer_number = "+919812345678"
    try:
        raise KeyError(len(customer_number))
    except KeyError:
        log.exception("delivery_crashed", lead_id="L1", access_token="abc")
    [line] = json_lines()
    assert line["event"] == "delivery_crashed" and line["logger"] == "workers.delivery.deliverer"
    assert line["access_token"] == "***" and line["level"] == "error"
    [chain] = line["exception"]
    assert chain["exc_type"] == "KeyError" and chain["frames"]
    assert any(frame["name"] == "test_a_traceback_is_structured_data" for frame in chain["frames"])
    assert customer_number not in json.dumps(line)  # no local variables in the frames


def test_a_standard_library_traceback_is_structured_too(json_lines: Callable[[], list[dict[str, Any]]]) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("celery.worker").exception("task failed")
    [line] = json_lines()
    assert line["logger"] == "celery.worker" and line["exception"][0]["exc_value"] == "boom"


def test_our_loggers_are_named_by_module() -> None:
    from workers.delivery import deliverer

    assert deliverer.log._logger_factory_args == ("workers.delivery.deliverer",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("level", "quiet"), [("INFO", True), ("WARNING", True), ("DEBUG", False)])
def test_celerys_per_task_lines_show_only_at_debug(level: str, quiet: bool) -> None:
    loggers = [logging.getLogger(name) for name in CELERY_TASK_LOGGERS]
    saved = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.NOTSET)
        quiet_task_lines(level)
        assert all(logger.level == (logging.WARNING if quiet else logging.NOTSET) for logger in loggers)
        assert all(logger.isEnabledFor(logging.ERROR) for logger in loggers)  # a failed task is still logged
    finally:
        for logger, was in zip(loggers, saved, strict=True):
            logger.setLevel(was)
