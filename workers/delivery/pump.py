"""The pump: a thread in each worker's main process that puts due and lost leads back on the queue.

Every `interval` it claims parked leads whose time has come; every few seconds it claims leads whose lease ran
out (lost between accept and enqueue, or with a killed worker) and expires stale capacity reservations. Claims
are atomic Lua calls, so any number of pumps on any number of hosts never enqueue a lead twice for one claim.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import kombu.exceptions
import redis
import structlog

from workers.store.parking import Parking

log = structlog.get_logger(__name__)


class Pump:
    def __init__(
        self,
        *,
        parking: Parking,
        enqueue: Callable[[str], None],
        expire_reservations: Callable[[], int],
        interval: float,
        sweep_every: float = 2.0,
        outcomes: Callable[[], int] | None = None,
    ) -> None:
        self._parking = parking
        self._enqueue = enqueue
        self._expire = expire_reservations
        self._interval = interval
        self._sweep_every = sweep_every
        self._outcomes = outcomes  # queues the sends of outcomes due to CRMs; returns how many
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sweep = 0.0

    def run_once(self) -> int:
        """One round: returns how many leads were enqueued."""
        ids = self._parking.claim_due()
        now = time.monotonic()
        if now - self._last_sweep >= self._sweep_every:
            self._last_sweep = now
            lost = self._parking.claim_expired()
            if lost:
                log.warning("leases_expired", count=len(lost))
            ids += lost
            expired = self._expire()
            if expired:
                log.info("reservations_expired", count=expired)
        for lead_id in ids:
            self._enqueue(lead_id)
        if self._outcomes is not None:
            self._outcomes()
        return len(ids)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except (redis.ConnectionError, redis.TimeoutError, kombu.exceptions.OperationalError) as exc:
                # Redis or broker away (restarting, failing over): one line, not a traceback each round.
                log.warning("pump_round_failed", error=f"{type(exc).__name__}: {exc}")
                self._stop.wait(min(5.0, self._interval * 10))
            except Exception:  # anything else: keep pumping, leases keep the leads
                log.exception("pump_round_failed")
                self._stop.wait(min(5.0, self._interval * 10))
            self._stop.wait(self._interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="lead-router-pump", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
