"""The Celery app: the one object created at import. Its configuration is read lazily from settings.

Start a worker with `lead-router worker` (or `celery -A workers.celery_app worker`).
"""

from __future__ import annotations

from typing import Any

from celery import Celery, bootsteps

app = Celery("lead_router", include=["workers.tasks"])
app.config_from_object("workers.celery_config")


class PumpStep(bootsteps.StartStopStep):
    """Runs the pump thread in the worker's main process for as long as the worker consumes."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.pump: Any = None

    def start(self, parent: Any) -> None:
        from workers.tasks import start_pump

        self.pump = start_pump()

    def stop(self, parent: Any) -> None:
        if self.pump is not None:
            self.pump.stop()
            self.pump = None


app.steps["worker"].add(PumpStep)
