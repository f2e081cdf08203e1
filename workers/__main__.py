"""`python -m workers <celery worker options>`: the worker process itself, with the router's logging.

`lead-router worker` checks the settings and the routing file, then becomes this process (exec): the Celery app,
its tasks and their logging, without the command line's own modules — every pool child is a copy of it.
"""

from __future__ import annotations

import sys

from config.logging import configure_logging, quiet_task_lines
from config.settings import SettingsError, get_settings


def main(options: list[str]) -> None:
    try:
        settings = get_settings()
    except SettingsError as exc:  # `lead-router worker` checks first; started directly, one line all the same
        sys.exit(f"lead-router worker: {exc}")
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    quiet_task_lines(settings.log_level)
    from workers.celery_app import app  # after logging: the app's modules log from their first line

    app.worker_main(["worker", *options])


if __name__ == "__main__":
    main(sys.argv[1:])
