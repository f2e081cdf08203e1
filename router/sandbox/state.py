"""The sandbox's in-memory state: received campaigns, counters, the rate limiter, faults, simulated calls.

One process, one `SandboxState`. Every method takes the lock and never awaits, so the state is safe from
the event loop and from other threads (e.g. a test client's) alike.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from datetime import UTC, datetime

from router.sandbox.models import CallRecord, CampaignRecord, CampaignSubmission, SandboxStats
from router.sandbox.options import FaultSettings, FaultsUpdate, SandboxOptions


def utc_now_iso() -> str:
    """Now, as Ryng writes times: ISO 8601 UTC with milliseconds and a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SandboxState:
    """Everything the sandbox remembers; reset by `reset()`."""

    def __init__(self, *, options: SandboxOptions) -> None:
        self.options = options
        self.lock = threading.RLock()
        self.rng = random.Random(options.seed)
        self._faults = options.initial_faults()
        self._campaigns: list[CampaignRecord] = []
        self._calls: list[CallRecord] = []
        self._stats = SandboxStats(window_seconds=options.rate_window_seconds)
        self._admitted: dict[str, deque[float]] = {}
        self._seen: deque[float] = deque()
        self._next_call_id = _first_call_id()
        self._next_call_log_id = 5001

    # --- requests, rate limit, faults -----------------------------------------------------------------
    def note_request(self, *, now: float) -> None:
        """Count one campaign request (any outcome) and track the busiest window."""
        with self.lock:
            self._stats.total_requests += 1
            self._seen.append(now)
            while self._seen and self._seen[0] <= now - self.options.rate_window_seconds:
                self._seen.popleft()
            self._stats.max_requests_in_window = max(self._stats.max_requests_in_window, len(self._seen))

    def admit(self, *, token: str, now: float) -> bool:
        """Rate limit: True if this token has had fewer than N admitted requests in the rolling window."""
        with self.lock:
            window = self._admitted.setdefault(token, deque())
            while window and window[0] <= now - self.options.rate_window_seconds:
                window.popleft()
            if len(window) >= self.options.rate_limit_per_min:
                self._stats.rate_limited += 1
                return False
            window.append(now)
            return True

    def count_status(self, status: int) -> None:
        with self.lock:
            key = str(status)
            self._stats.by_status[key] = self._stats.by_status.get(key, 0) + 1

    def latency_seconds(self) -> float:
        with self.lock:
            return self._faults.latency_ms / 1000.0

    def take_failure(self) -> int | None:
        """The status to fail this request with (fail_next first, then fail_rate), or None."""
        with self.lock:
            faults = self._faults
            if faults.fail_next > 0:
                faults.fail_next -= 1
            elif not (faults.fail_rate > 0 and self.rng.random() < faults.fail_rate):
                return None
            self._stats.faults_injected += 1
            return faults.fail_status

    def take_timeout(self) -> float | None:
        """Seconds to withhold this (accepted) request's answer, or None."""
        with self.lock:
            if self._faults.timeout_next <= 0:
                return None
            self._faults.timeout_next -= 1
            self._stats.timeouts_injected += 1
            return self._faults.timeout_seconds

    def faults(self) -> FaultSettings:
        with self.lock:
            return self._faults.model_copy()

    def update_faults(self, update: FaultsUpdate) -> FaultSettings:
        with self.lock:
            changes = update.model_dump(exclude_none=True)
            if "seed" in changes:
                self.rng.seed(changes.pop("seed"))
            self._faults = self._faults.model_copy(update=changes)
            return self._faults.model_copy()

    def clear_faults(self) -> FaultSettings:
        with self.lock:
            self._faults = FaultSettings()
            return self._faults.model_copy()

    # --- campaigns ----------------------------------------------------------------------------------
    def record(self, submission: CampaignSubmission, *, delayed_seconds: float = 0.0) -> CampaignRecord:
        """Number, time-stamp and keep an accepted campaign."""
        with self.lock:
            campaign_id = len(self._campaigns) + 1
            record = CampaignRecord(
                **submission.model_dump(),
                id=campaign_id,
                received_at=utc_now_iso(),
                response_delayed_seconds=delayed_seconds,
            )
            if record.name is None:
                record.name = f"campaign::{campaign_id}"
            self._campaigns.append(record)
            self._stats.accepted += 1
            for row in record.rows:
                self._stats.assigned_by_agent[row.agent] = self._stats.assigned_by_agent.get(row.agent, 0) + 1
            return record.model_copy(deep=True)

    def campaigns(self) -> list[CampaignRecord]:
        with self.lock:
            return [campaign.model_copy(deep=True) for campaign in self._campaigns]

    def stats(self) -> SandboxStats:
        with self.lock:
            return self._stats.model_copy(deep=True)

    # --- simulated calls ----------------------------------------------------------------------------
    def new_call(
        self, *, campaign_id: int, row_index: int, number: str, agent: str, agent_id: int
    ) -> CallRecord:
        """Create and keep a call record (the caller mutates it only under `lock`)."""
        with self.lock:
            call = CallRecord(
                call_id=self._next_call_id,
                call_log_id=self._next_call_log_id,
                campaign_id=campaign_id,
                row_index=row_index,
                number=number,
                agent=agent,
                agent_id=agent_id,
                disposition=self.rng.choice(self.options.dispositions),
            )
            self._next_call_id += 1
            self._next_call_log_id += 1
            self._calls.append(call)
            self._stats.calls += 1
            return call

    def count_callback(self, *, delivered: bool) -> None:
        with self.lock:
            if delivered:
                self._stats.callbacks_delivered += 1
            else:
                self._stats.callbacks_failed += 1

    def calls(self) -> list[CallRecord]:
        with self.lock:
            return [call.model_copy(deep=True) for call in self._calls]

    def reset(self) -> None:
        """Forget everything: campaigns, calls, counters, rate-limit windows; faults back to start-up."""
        with self.lock:
            self.rng.seed(self.options.seed)
            self._faults = self.options.initial_faults()
            self._campaigns.clear()
            self._calls.clear()
            self._stats = SandboxStats(window_seconds=self.options.rate_window_seconds)
            self._admitted.clear()
            self._seen.clear()
            self._next_call_id = _first_call_id()
            self._next_call_log_id = 5001


def _first_call_id() -> int:
    """Call ids are unique across restarts, as Ryng's are: each start begins at the clock in milliseconds times
    1000, so a restart never reuses an id unless the run before it made over 1000 calls per millisecond."""
    return time.time_ns() // 1_000_000 * 1000
