"""The shared rate limiter on a real Redis: the limit holds in every window, from threads and from processes.

Grants are stamped by Redis's clock, which the test cannot read back, so each grant is bracketed by the local
clock just before the call and just after it returns (same host, same clock). A violation is reported only
when limit + 1 grants *certainly* fell inside one window: no false alarms, and latency of a millisecond or so
hardly weakens the check against a 200 ms window.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from multiprocessing.queues import Queue

import redis

from workers.store.connections import connect
from workers.store.keys import Keys
from workers.store.limiter import RateLimiter

Grant = tuple[float, float]  # local time before the call, after it returned

LIMIT = 5
WINDOW = 0.2
RUN_SECONDS = 1.0


def certain_violation(grants: list[Grant], *, limit: int, window: float) -> tuple[int, float] | None:
    """(index, span) of limit + 1 grants that certainly lie within less than `window`, or None."""
    ordered = sorted(grants)
    for i, (start, _) in enumerate(ordered):
        later_ends = sorted(end for begin, end in ordered[i:] if begin >= start)
        if len(later_ends) > limit and later_ends[limit] - start < window:
            return i, later_ends[limit] - start
    return None


def check(grants: list[Grant], *, limit: int, window: float) -> None:
    assert certain_violation(grants, limit=limit, window=window) is None
    # Over the whole run at most limit * (windows spanned + 1) grants can fit.
    span = max(end for _, end in grants) - min(begin for begin, _ in grants)
    assert len(grants) <= limit * (int(span / window) + 1)
    # And the limiter is not simply refusing: hammered for the whole run, it grants most of what it may.
    assert len(grants) >= limit * int(RUN_SECONDS / window) * 0.6


def hammer(url: str, prefix: str, start_at: float, out: list[Grant], problems: list[str]) -> None:
    """Call acquire as fast as possible for RUN_SECONDS; note grants, and any slot that makes no sense."""
    client = connect(url)
    limiter = RateLimiter(client, keys=Keys(prefix), limit=LIMIT, window_seconds=WINDOW)
    while time.time() < start_at:
        time.sleep(0.001)
    try:
        while time.time() < start_at + RUN_SECONDS:
            before = time.time()
            slot = limiter.acquire()
            after = time.time()
            if slot.granted:
                out.append((before, after))
                if slot.wait_seconds != 0 or not 1 <= slot.used <= LIMIT:
                    problems.append(f"odd grant {slot}")
            elif not (0 < slot.wait_seconds <= WINDOW + 0.001 and slot.used == LIMIT):
                problems.append(f"odd refusal {slot}")
    except Exception as exc:  # reported by the test, not lost in a thread or a child process
        problems.append(repr(exc))
    finally:
        client.close()


def hammer_process(url: str, prefix: str, start_at: float, queue: Queue[tuple[list[Grant], list[str]]]) -> None:
    grants: list[Grant] = []
    problems: list[str] = []
    hammer(url, prefix, start_at, grants, problems)
    queue.put((grants, problems))


def test_the_limit_holds_in_a_window_and_frees_up(redis_client: redis.Redis, key_prefix: str) -> None:
    limiter = RateLimiter(redis_client, keys=Keys(key_prefix), limit=3, window_seconds=60)
    slots = [limiter.acquire() for _ in range(3)]
    assert [(s.granted, s.used, s.wait_seconds) for s in slots] == [(True, 1, 0), (True, 2, 0), (True, 3, 0)]
    refused = limiter.acquire()
    assert not refused.granted and refused.used == 3
    assert 59 < refused.wait_seconds <= 60.0  # until the oldest grant leaves the window
    assert limiter.in_window() == 3 and limiter.limit == 3
    # The key does not outlive the window by much.
    ttl = redis_client.pttl(Keys(key_prefix).rate)
    assert 60_000 < ttl <= 61_000


def test_waiting_the_given_time_is_enough(redis_client: redis.Redis, key_prefix: str) -> None:
    limiter = RateLimiter(redis_client, keys=Keys(key_prefix), limit=2, window_seconds=0.3)
    assert limiter.acquire().granted and limiter.acquire().granted
    refused = limiter.acquire()
    assert not refused.granted and 0.2 < refused.wait_seconds <= 0.3
    time.sleep(refused.wait_seconds)
    assert limiter.acquire().granted


def test_limiters_with_different_prefixes_are_independent(redis_client: redis.Redis, key_prefix: str) -> None:
    one = RateLimiter(redis_client, keys=Keys(key_prefix + "a"), limit=1)
    two = RateLimiter(redis_client, keys=Keys(key_prefix + "b"), limit=1)
    assert one.acquire().granted and two.acquire().granted
    assert not one.acquire().granted and not two.acquire().granted


def test_check_catches_a_violation() -> None:
    # The checker itself must be able to fail: six grants 10 ms apart break a 5-per-200 ms limit.
    grants = [(t * 0.01, t * 0.01 + 0.001) for t in range(6)]
    assert certain_violation(grants, limit=5, window=0.2) is not None
    spread = [(t * 0.05, t * 0.05 + 0.001) for t in range(12)]  # 20/s: 4 per 200 ms
    assert certain_violation(spread, limit=5, window=0.2) is None


def test_eight_threads_never_exceed_the_limit(redis_url: str, key_prefix: str) -> None:
    per_thread: list[list[Grant]] = [[] for _ in range(8)]
    problems: list[str] = []
    start_at = time.time() + 0.1
    threads = [threading.Thread(target=hammer, args=(redis_url, key_prefix, start_at, out, problems))
               for out in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert problems == []
    grants = [g for out in per_thread for g in out]
    check(grants, limit=LIMIT, window=WINDOW)
    assert sum(1 for out in per_thread if out) >= 2  # the grants really were shared out


def test_four_processes_never_exceed_the_limit(redis_url: str, key_prefix: str) -> None:
    context = multiprocessing.get_context("fork")
    queue: Queue[tuple[list[Grant], list[str]]] = context.Queue()
    start_at = time.time() + 0.3
    processes = [context.Process(target=hammer_process, args=(redis_url, key_prefix, start_at, queue))
                 for _ in range(4)]
    for process in processes:
        process.start()
    try:
        results = [queue.get(timeout=10) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
    assert all(process.exitcode == 0 for process in processes)
    assert [problem for _, found in results for problem in found] == []
    check([g for out, _ in results for g in out], limit=LIMIT, window=WINDOW)
    assert sum(1 for out, _ in results if out) >= 2
