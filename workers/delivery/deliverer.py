"""Delivering one lead: pause check → pick an agent → pace → post to Ryng → record, retry, park or bury.

This is the plain logic behind the Celery task. It never lets an exception escape for a lead-specific
problem: such a crash is counted on the record, the lead is parked with backoff, and after
`max_crashes` it is dead-lettered (a poison lead cannot loop hot or block others). Only infrastructure
failures (Redis down) propagate, and then the lead's lease brings it back later.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

import redis
import structlog

from workers.clock import iso, now_ms
from workers.delivery.policy import DeliveryPolicy
from workers.routing.assigner import Assigner, LeadFacts, Pick
from workers.routing.rules import UnknownPoolError
from workers.ryng.client import CampaignRequest, Outcome, RyngClient, RyngResult
from workers.store.counters import Counters
from workers.store.lead_record import LeadRecord, WaitReason
from workers.store.parking import Parking
from workers.store.pause import DeliveryPause
from workers.store.records import LeadStore, Status

log = structlog.get_logger(__name__)



class Step(StrEnum):
    """What one delivery step did (the Celery task's result, and the label in its log line)."""

    POSTED = "posted"
    RETRYING = "retrying"
    WAITING_NO_AGENT = "waiting-no_agent_eligible"
    WAITING_UNAUTHORIZED = "waiting-ryng_unauthorized"
    WAITING_RATE_LIMIT = "waiting-rate_limit"
    DEAD = "dead"
    CRASHED = "crashed"
    #: Another worker holds the lead; it comes back shortly.
    LOCKED = "locked"
    UNKNOWN = "unknown"
    #: A stray copy of the message (lease sweep, redelivery) before the lead's backoff ended: the backoff stands.
    NOT_DUE = "not-due"
    #: Delivered meanwhile (a callback, another worker) or already dead: nothing to bury.
    NOT_BURIED = "not-buried"
    ALREADY_POSTED = "already-posted"
    ALREADY_CONNECTED = "already-connected"
    ALREADY_COMPLETED = "already-completed"
    ALREADY_DEAD = "already-dead"

    @classmethod
    def already(cls, status: Status) -> Step:
        return cls(f"already-{status}")

    @classmethod
    def waiting(cls, reason: WaitReason) -> Step:
        return cls(f"waiting-{reason}")


#: Waits shorter than this are slept in the task; longer ones are parked in Redis.
SHORT_WAIT_SECONDS = 1.5
#: A message for a lead another worker holds comes back this much later.
LOCKED_RETRY_SECONDS = 2.0


class Deliverer:
    """Runs one delivery step for a lead; `run` is idempotent and safe to call from any worker at any time."""

    def __init__(
        self,
        *,
        store: LeadStore,
        parking: Parking,
        limiter_acquire: Callable[[], tuple[bool, float]],
        pause: DeliveryPause,
        assigner: Assigner,
        ryng: RyngClient,
        policy: DeliveryPolicy,
        counters: Counters,
        sleep: Callable[[float], None],
        on_dead: Callable[[str], object] | None = None,
    ) -> None:
        self._store = store
        self._parking = parking
        self._acquire = limiter_acquire
        self._pause = pause
        self._assigner = assigner
        self._ryng = ryng
        self._policy = policy
        self._counters = counters
        self._sleep = sleep
        self._on_dead = on_dead  # e.g. queue the outcome for the lead's CRM: it will not be called

    def run(self, lead_id: str) -> Step:
        """Deliver the lead if it is still open; returns a short label of what happened."""
        token = uuid.uuid4().hex
        if not self._store.lock(lead_id, token=token):
            # Another worker has it now; look again shortly rather than drop this message for a whole lease.
            self._parking.park(lead_id, delay_seconds=LOCKED_RETRY_SECONDS)
            return Step.LOCKED
        try:
            record = self._store.get(lead_id)
            if record is None:
                self._parking.finish(lead_id)
                return Step.UNKNOWN
            if record.is_final:
                self._parking.finish(lead_id)
                return Step.already(record.status)
            if self._parking.due_in(lead_id) > 0:
                return Step.NOT_DUE
            if record.last_outcome == Outcome.ACCEPTED:
                # Ryng accepted it and we recorded that, but a crash came before the status: never post again.
                return self._decide(lead_id, record.attempts or 1, None, probing=False)
            if record.in_task:
                _, buried = self._crash(lead_id, detail=" while being delivered")
                if buried:
                    return buried
            self._store.update(lead_id, in_task="1")
            try:
                label = self._step(lead_id, record)
            except redis.RedisError:
                raise  # Redis itself is away: not the lead's fault; its lease brings it back, uncounted
            except Exception as exc:  # a lead-specific crash: counted, parked with backoff, never hot-looped
                name = type(exc).__name__
                self._store.update(lead_id, in_task="0", last_error=f"{name}: {exc}"[:500])
                log.exception("delivery_crashed", lead_id=lead_id)
                crashes, buried = self._crash(lead_id, detail=f": {name}", error=name)
                if buried:
                    return buried
                self._parking.park(lead_id, delay_seconds=self._policy.backoff(crashes))
                return Step.CRASHED
            self._store.update(lead_id, in_task="0")
            return label
        finally:
            self._store.unlock(lead_id, token=token)

    def _crash(self, lead_id: str, *, detail: str, error: str | None = None) -> tuple[int, Step | None]:
        """Count one crash of this lead's delivery: (crashes so far, the burial's label once past the limit)."""
        crashes = self._store.incr(lead_id, "crashes")
        self._store.event(lead_id, "crash", crashes=crashes, **({"error": error} if error else {}))
        if crashes >= self._policy.max_crashes:
            return crashes, self._bury(lead_id, reason=f"crashed {crashes} times{detail}")
        return crashes, None

    # --- the steps ----------------------------------------------------------------------------------
    def _step(self, lead_id: str, record: LeadRecord) -> Step:
        self._parking.renew(lead_id)
        if not record.agent and record.agent_mapping != "all-agents":
            try:
                pick = self._pick(lead_id, record)
            except UnknownPoolError as exc:  # the routing file changed under a queued lead
                return self._bury(lead_id, reason=f"cannot route: {exc}")
            if pick.outcome == "wait":
                if not record.waiting_since_ms:
                    self._store.update(lead_id, waiting_since_ms=now_ms())
                delay = min(max(pick.retry_after_seconds or 5.0, 0.5), 60.0)
                return self._wait(lead_id, reason=WaitReason.NO_AGENT_ELIGIBLE, delay=delay)
            if pick.outcome == "unroutable":
                return self._bury(lead_id, reason=pick.reason)
            record = self._store.get(lead_id) or record
        # Paused (Ryng said 403): only a lead ready to post may spend the interval's one probe.
        probing = False
        if self._pause.state() is not None:
            if not self._pause.take_probe():
                return self._wait(lead_id, reason=WaitReason.RYNG_UNAUTHORIZED, delay=self._pause.probe_seconds)
            probing = True
        granted, wait = self._acquire()
        if not granted and wait <= SHORT_WAIT_SECONDS:
            self._sleep(wait)
            granted, wait = self._acquire()
        if not granted:
            self._counters.incr("rate_limited")
            return self._wait(lead_id, reason=WaitReason.RATE_LIMIT, delay=wait)
        return self._post(lead_id, record, probing=probing)

    def _pick(self, lead_id: str, record: LeadRecord) -> Pick:
        facts = LeadFacts(
            lead_id=lead_id,
            number=record.number,
            fields=record.fields,
            source=record.source or "api",
            pool=record.payload.get("pool"),
            agent=record.payload.get("agent"),
        )
        waited = _seconds_since(record.waiting_since_ms)
        pick = self._assigner.pick(facts, waited_seconds=waited)
        audit: dict[str, Any] = {
            "pool": pick.pool,
            "rule": pick.rule or "",
            "strategy": pick.strategy,
            "reason": pick.reason,
            "skipped": [{"agent": s.agent, "reason": s.reason} for s in pick.skipped],
        }
        self._store.event(lead_id, "pick", outcome=pick.outcome, agent=pick.agent, **audit)
        if pick.outcome == "assigned" and pick.agent:
            self._store.transition(
                lead_id, Status.ASSIGNED, agent=pick.agent, agent_id=pick.agent_id or "",
                pool=pick.pool, rule=pick.rule or "", strategy=pick.strategy, reason=pick.reason,
                agent_mapping="global", assigned_at=iso(),
            )
            self._counters.incr("assigned")
        elif pick.outcome == "ryng":
            self._store.transition(
                lead_id, Status.ASSIGNED, agent="", pool=pick.pool, rule=pick.rule or "",
                strategy=pick.strategy, reason=pick.reason, agent_mapping="all-agents", assigned_at=iso(),
            )
        return pick

    def _post(self, lead_id: str, record: LeadRecord, *, probing: bool) -> Step:
        payload = record.payload
        attempt = self._store.incr(lead_id, "attempts")
        last = record.last_outcome
        if attempt > 1 and last in ("", "sending", Outcome.AMBIGUOUS):
            # The previous send may have reached Ryng (timeout after sending, or a crash before recording).
            self._store.update(lead_id, possible_duplicate="1")
            self._store.event(lead_id, "possible_duplicate", previous=last or "unrecorded")
            self._counters.incr("possible_duplicates")
        self._store.update(lead_id, last_outcome="sending")
        agent = record.agent
        request = CampaignRequest(
            lead_id=lead_id,
            name=self._policy.campaign_name_template.format(lead_id=lead_id, agent=agent, pool=record.pool),
            number=str(payload["number"]),
            agent=agent,
            agent_id=int(record.agent_id) if record.agent_id.isdigit() else None,
            fields=_ryng_fields(payload),
            field_slots=dict(self._policy.field_slots),
            lead_id_slot=self._policy.lead_id_slot,
            connect_callback_url=self._policy.connect_callback_url,
            terminal_callback_url=self._policy.terminal_callback_url,
        )
        result = self._ryng.create_campaign(request)
        self._record_attempt(lead_id, attempt, result)
        return self._decide(lead_id, attempt, result, probing=probing)

    def _record_attempt(self, lead_id: str, attempt: int, result: RyngResult) -> None:
        self._store.update(
            lead_id, last_outcome=result.outcome, last_status_code=result.status_code or "",
            last_message=result.message[:300],
        )
        self._store.event(
            lead_id, "attempt", attempt=attempt, outcome=result.outcome, status_code=result.status_code,
            message=result.message[:300], body=result.body[:500], elapsed_ms=result.elapsed_ms,
            dropped_fields=list(result.dropped_fields),
        )
        self._counters.incr(f"ryng_{result.outcome}")
        log.info(
            "ryng_attempt", lead_id=lead_id, attempt=attempt, outcome=str(result.outcome),
            status_code=result.status_code, elapsed_ms=result.elapsed_ms,
        )

    def _decide(self, lead_id: str, attempt: int, result: RyngResult | None, *, probing: bool) -> Step:
        """What to do after an attempt; `result` None means an acceptance already on the record."""
        if probing and result is not None and result.outcome != Outcome.UNAUTHORIZED and self._pause.resume():
            # Any answer but 401/403 shows the token is accepted again: everyone may post.
            self._store.event(lead_id, "delivery_resumed", by="probe")
            log.warning("delivery_resumed", by="probe")
        if result is None or result.outcome == Outcome.ACCEPTED:
            self._store.transition(lead_id, Status.POSTED, posted_at=iso(), wait_reason="")
            self._assigner.extend(lead_id=lead_id)  # the reservation timeout runs from the post, not the pick
            self._parking.finish(lead_id)
            self._counters.incr("posted")
            return Step.POSTED
        if result.outcome == Outcome.UNAUTHORIZED:
            # Not the lead's fault: keep it, do not count the attempt against it, stop everyone posting.
            self._store.incr(lead_id, "attempts", -1)
            self._pause.pause(reason=f"Ryng answered {result.status_code}: {result.message[:120]}")
            log.error("delivery_paused", reason="ryng_unauthorized", status_code=result.status_code)
            return self._wait(lead_id, reason=WaitReason.RYNG_UNAUTHORIZED, delay=self._pause.probe_seconds)
        if result.outcome == Outcome.REJECTED:
            return self._bury(lead_id, reason=f"Ryng rejected the lead ({result.status_code}): {result.message}")
        if attempt >= self._policy.max_attempts:
            return self._bury(lead_id, reason=f"gave up after {attempt} attempts: {result.message}")
        delay = self._policy.backoff(attempt)
        if result.retry_after:
            # Honour Ryng's Retry-After, with jitter on top so the waiting leads do not return in one burst.
            floor = min(result.retry_after, self._policy.backoff_max_seconds)
            delay = max(delay, floor + random.uniform(0, self._policy.backoff_base_seconds))
        self._store.transition(lead_id, Status.RETRYING, wait_reason="", retry_in_seconds=round(delay, 2))
        self._assigner.extend(lead_id=lead_id)
        self._pause.unhold(lead_id)
        self._store.event(lead_id, "retry_scheduled", attempt=attempt, delay_seconds=round(delay, 3))
        self._parking.park(lead_id, delay_seconds=delay)
        return Step.RETRYING

    def _wait(self, lead_id: str, *, reason: WaitReason, delay: float) -> Step:
        self._store.transition(lead_id, Status.WAITING, wait_reason=reason)
        self._parking.park(lead_id, delay_seconds=delay)
        if reason == WaitReason.RYNG_UNAUTHORIZED:
            self._pause.hold(lead_id)
        self._assigner.extend(lead_id=lead_id)  # still on its way to its agent: keep the capacity held
        return Step.waiting(reason)

    def _bury(self, lead_id: str, *, reason: str) -> Step:
        if self._store.bury(lead_id, dead_reason=reason[:500], dead_at=iso(), in_task="0", wait_reason="") is None:
            return Step.NOT_BURIED
        self._store.event(lead_id, "dead", reason=reason[:500])
        self._assigner.release(lead_id=lead_id, cancel=True)  # it never reached the agent
        self._counters.incr("dead")
        log.warning("lead_dead", lead_id=lead_id, reason=reason[:200])
        if self._on_dead is not None:
            self._on_dead(lead_id)
        return Step.DEAD


def _ryng_fields(payload: Mapping[str, Any]) -> dict[str, str]:
    fields = {str(k): str(v) for k, v in (payload.get("fields") or {}).items()}
    if payload.get("name") and "Name" not in fields:
        fields = {"Name": str(payload["name"]), **fields}
    return fields


def _seconds_since(since_ms: int) -> float:
    if since_ms <= 0:
        return 0.0
    return max(0.0, (now_ms() - since_ms) / 1000)

