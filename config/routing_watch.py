"""Following the routing file while running: a changed file is re-read and, when valid, handed on.

Each process keeps one `RoutingWatch` beside its assigner. `check(adopt)` looks at the file's identity
(mtime, size, inode) at most every `interval` seconds; when it changed, the file is validated as at start-up.
A valid file is passed to `adopt` (which rebuilds the assigner and re-registers agents and pools in Redis); an
invalid one is logged once, one log line per mistake, and the configuration in force stays. If `adopt` fails
(Redis away, say) the change is tried again at the next check.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable

import structlog

from config.routing import RoutingConfig, RoutingConfigError, load_routing

__all__ = ["RoutingWatch"]

log = structlog.get_logger(__name__)

_Stamp = tuple[int, int, int]
_MISSING: _Stamp = (-1, -1, -1)


def _stamp(path: str) -> _Stamp:
    try:
        info = os.stat(path)
    except OSError:
        return _MISSING
    return info.st_mtime_ns, info.st_size, info.st_ino


class RoutingWatch:
    """The routing configuration in force in this process, and the file it follows (thread-safe)."""

    def __init__(
        self,
        *,
        path: str | None,
        agents: list[str],
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load the file now; a mistake raises `RoutingConfigError` (start-up refuses a bad file)."""
        self._path = path
        self._agents = list(agents)
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = _stamp(path) if path else _MISSING
        self._config = load_routing(path=path, agents=self._agents)
        self._checked = clock()
        self._rejected: _Stamp | None = None
        self.loaded_at = time.time()
        self.reloads = 0
        self.last_error: str | None = None

    @property
    def path(self) -> str | None:
        return self._path

    @property
    def config(self) -> RoutingConfig:
        return self._config

    def check(self, adopt: Callable[[RoutingConfig], None], *, force: bool = False) -> bool:
        """Reload when the file changed (looked at no more than every `interval` s, unless `force`).

        Returns True when a new configuration was adopted.
        """
        if self._path is None:
            return False
        now = self._clock()
        if not force and now - self._checked < self._interval:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # another thread of this process is checking right now
        try:
            self._checked = now
            stamp = _stamp(self._path)
            if stamp == self._stamp or stamp == self._rejected:
                return False
            return self._reload(stamp, adopt)
        finally:
            self._lock.release()

    async def follow(self, adopt: Callable[[RoutingConfig], None]) -> None:
        """Check every `interval` seconds until cancelled (an asyncio task); the work runs in a thread."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await asyncio.to_thread(self.check, adopt)
            except Exception:  # never let the follower die: the next round tries again
                log.exception("routing_check_failed", path=self._path)

    def _reload(self, stamp: _Stamp, adopt: Callable[[RoutingConfig], None]) -> bool:
        try:
            config = load_routing(path=self._path, agents=self._agents)
        except RoutingConfigError as exc:
            self._rejected = stamp
            self.last_error = str(exc)
            lines = str(exc).splitlines()
            for line in lines:
                log.error("routing_reload_rejected", path=self._path, mistake=line)
            log.warning("routing_kept", path=self._path, mistakes=len(lines))
            return False
        try:
            adopt(config)
        except Exception:  # e.g. Redis away while re-registering: try again at the next check
            log.exception("routing_reload_failed", path=self._path)
            return False
        self._config, self._stamp, self._rejected = config, stamp, None
        self.loaded_at, self.last_error = time.time(), None
        self.reloads += 1
        log.info(
            "routing_reloaded", path=self._path, agents=len(config.agents), pools=len(config.pools),
            rules=len(config.rules),
        )
        return True
