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
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

import redis
import structlog

from workers.clock import iso, now_ms
from workers.delivery.batch import Batcher, Member
from workers.delivery.ledger import DeliveryLedger, Settlement, history_entry
from workers.delivery.policy import DeliveryPolicy
from workers.routing.assigner import Assigner, LeadFacts, Pick
from workers.routing.rules import UnknownPoolError
from workers.ryng.client import Outcome, RyngClient, RyngResult
from workers.store.counters import Counters
from workers.store.histograms import observe_send
from workers.store.lead_record import LeadRecord, WaitReason
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
    """Runs one delivery step for a lead; `run` is idempotent and safe to call from any worker at any time.

    The happy path is four Redis round trips, each one atomic call: claim, pick, begin the send, settle (see
    `workers.delivery.ledger`).
    """

    def __init__(
        self,
        *,
        store: LeadStore,
        ledger: DeliveryLedger,
        pause: DeliveryPause,
        assigner: Assigner,
        ryng: RyngClient,
        policy: DeliveryPolicy,
        counters: Counters,
        sleep: Callable[[float], None],
        on_dead: Callable[[str], object] | None = None,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._pause = pause
        self._assigner = assigner
        self._ryng = ryng
        self._policy = policy
        self._counters = counters
        self._sleep = sleep
        self._on_dead = on_dead  # e.g. queue the outcome for the lead's CRM: it will not be called
        self._batcher = Batcher(
            ledger=ledger, ryng=ryng, policy=policy, pause=pause, store=store, bury=self._bury_lead,
        ) if policy.batching else None

    def run(self, lead_id: str) -> Step:
        """Deliver the lead if it is still open; returns a short label of what happened."""
        run = _Run(lead_id=lead_id, token=uuid.uuid4().hex)
        claim = self._ledger.claim(lead_id, token=run.token)
        if claim.verdict == "locked":
            return Step.LOCKED  # parked to come back shortly, rather than dropped for a whole lease
        if claim.verdict == "unknown":
            return Step.UNKNOWN
        if claim.verdict == "final":
            return Step.already(Status(claim.status))
        if claim.verdict == "not-due":
            return Step.NOT_DUE
        assert claim.record is not None
        try:
            if claim.crashes >= self._policy.max_crashes:  # the runs before this one never settled
                return self._bury(run, reason=f"crashed {claim.crashes} times while being delivered")
            return self._step(run, claim.record, paused=claim.paused)
        except redis.RedisError:
            raise  # Redis itself is away: not the lead's fault; its lease brings it back, uncounted
        except Exception as exc:  # a lead-specific crash: counted, parked with backoff, never hot-looped
            return self._crashed(run, exc)
        finally:
            if not run.settled:
                self._store.unlock(lead_id, token=run.token)

    def _crashed(self, run: _Run, exc: Exception) -> Step:
        name = type(exc).__name__
        log.exception("delivery_crashed", lead_id=run.lead_id)
        self._store.update(run.lead_id, in_task="0", last_error=f"{name}: {exc}"[:500])
        crashes = self._store.incr(run.lead_id, "crashes")
        self._store.event(run.lead_id, "crash", crashes=crashes, error=name)
        if crashes >= self._policy.max_crashes:
            return self._bury(run, reason=f"crashed {crashes} times: {name}")
        self._settle(run, Settlement(park_seconds=self._policy.backoff(crashes)))
        return Step.CRASHED

    # --- the steps ----------------------------------------------------------------------------------
    def _step(self, run: _Run, record: LeadRecord, *, paused: bool) -> Step:
        lead_id = run.lead_id
        pick_fields: dict[str, str] = {}
        pick_event, pick_counter = "", ""
        agent, agent_id, pool = record.agent, record.agent_id, record.pool
        if not record.agent and record.agent_mapping != "all-agents":
            try:
                pick = self._pick(lead_id, record)
            except UnknownPoolError as exc:  # the routing file changed under a queued lead
                return self._bury(run, reason=f"cannot route: {exc}")
            pick_event = _pick_entry(pick)
            if pick.outcome == "wait":
                delay = min(max(pick.retry_after_seconds or 5.0, 0.5), 60.0)
                since = {} if record.waiting_since_ms else {"waiting_since_ms": str(now_ms())}
                return self._wait(run, WaitReason.NO_AGENT_ELIGIBLE, delay, fields=since, events=(pick_event,))
            if pick.outcome == "unroutable":
                self._settle(run, Settlement(events=(pick_event,), unlock=False))
                return self._bury(run, reason=pick.reason)
            agent, agent_id, pool = pick.agent or "", str(pick.agent_id or ""), pick.pool
            pick_fields = {
                "status": Status.ASSIGNED, "agent": agent, "agent_id": agent_id, "pool": pick.pool,
                "rule": pick.rule or "", "strategy": pick.strategy, "reason": pick.reason,
                "agent_mapping": "global" if pick.outcome == "assigned" else "all-agents", "assigned_at": iso(),
            }
            pick_counter = "assigned" if pick.outcome == "assigned" else ""
        structlog.contextvars.bind_contextvars(agent=agent)  # in every log line, and in the task's result
        # Paused (Ryng said 403): only a lead ready to post may spend the interval's one probe.
        probing = False
        if paused:
            if not self._pause.take_probe():
                return self._wait(run, WaitReason.RYNG_UNAUTHORIZED, self._pause.probe_seconds,
                                  fields=pick_fields, events=(pick_event,) if pick_event else ())
            probing = True
        # Built before the attempt is counted: a lead whose payload cannot become a request never counts one.
        request = self._policy.campaign_request(lead_id, record, agent=agent, agent_id=agent_id, pool=pool)
        # A batch carries leads with their own agent, never while paused, and never one a batch had to split.
        batchable = self._batcher is not None and bool(agent) and not paused and not record.batch_split
        begun = self._ledger.begin(lead_id, pick_fields=pick_fields, pick_event=pick_event, pick_counter=pick_counter,
                                   may_defer=batchable)
        if begun.outcome == "wait" and begun.wait_seconds <= SHORT_WAIT_SECONDS:
            self._sleep(begun.wait_seconds)
            begun = self._ledger.begin(lead_id)
        if begun.outcome == "gone":
            return Step.already(Status(begun.status)) if begun.status else Step.UNKNOWN
        if begun.outcome == "defer":  # a backlog: wait a moment for a batch to carry the lead
            return self._wait(run, WaitReason.RATE_LIMIT, self._policy.batch_delay_seconds,
                              counters=("batch_deferred",), ready=True)
        if begun.outcome == "wait":
            return self._wait(run, WaitReason.RATE_LIMIT, begun.wait_seconds, counters=("rate_limited",),
                              ready=batchable)
        if batchable and self._batcher is not None:
            carried = self._batcher.carry(Member(lead_id, begun.attempt, request, created_ms=record.created_ms),
                                          token=run.token)
            if carried is not None:
                run.settled = True
                return Step(carried)
        result = self._ryng.create_campaign(request)
        run.observed = observe_send(result.outcome, result.elapsed_ms, created_ms=record.created_ms, now_ms=now_ms())
        # Ryng's answer rides on the step's one log line (the task's, which clears the context after it).
        structlog.contextvars.bind_contextvars(
            attempt=begun.attempt, ryng_outcome=str(result.outcome), status_code=result.status_code,
            elapsed_ms=result.elapsed_ms,
        )
        return self._decide(run, begun.attempt, result, probing=probing)

    def _pick(self, lead_id: str, record: LeadRecord) -> Pick:
        facts = LeadFacts(
            lead_id=lead_id,
            number=record.number,
            fields=record.fields,
            source=record.source or "api",
            pool=record.payload.get("pool"),
            agent=record.payload.get("agent"),
        )
        return self._assigner.pick(facts, waited_seconds=_seconds_since(record.waiting_since_ms))

    def _decide(self, run: _Run, attempt: int, result: RyngResult, *, probing: bool) -> Step:
        """Settle the run after Ryng's answer: posted, retrying, waiting (403) or dead."""
        lead_id = run.lead_id
        answer = {"last_outcome": str(result.outcome), "last_status_code": str(result.status_code or ""),
                  "last_message": result.message[:300]}
        attempt_entry = history_entry(
            "attempt", attempt=attempt, outcome=result.outcome, status_code=result.status_code,
            message=result.message[:300], body=result.body[:500], elapsed_ms=result.elapsed_ms,
            dropped_fields=list(result.dropped_fields),
        )
        counted = f"ryng_{result.outcome}"
        if probing and result.outcome != Outcome.UNAUTHORIZED and self._pause.resume():
            # Any answer but 401/403 shows the token is accepted again: everyone may post.
            self._store.event(lead_id, "delivery_resumed", by="probe")
            log.warning("delivery_resumed", by="probe")
        if result.outcome == Outcome.ACCEPTED:
            # The reservation timeout runs from the post, not the pick.
            self._settle(run, Settlement(
                status=Status.POSTED, fields=answer | {"posted_at": iso(), "wait_reason": ""}, finish=True,
                events=(attempt_entry,), counters=(counted, "posted"),
            ))
            return Step.POSTED
        if result.outcome == Outcome.UNAUTHORIZED:
            # Not the lead's fault: keep it, do not count the attempt against it, stop everyone posting.
            self._pause.pause(reason=f"Ryng answered {result.status_code}: {result.message[:120]}")
            log.error("delivery_paused", reason="ryng_unauthorized", status_code=result.status_code)
            return self._wait(run, WaitReason.RYNG_UNAUTHORIZED, self._pause.probe_seconds, fields=answer,
                              events=(attempt_entry,), counters=(counted,), attempts_delta=-1)
        if result.outcome == Outcome.REJECTED or attempt >= self._policy.max_attempts:
            self._settle(run, Settlement(fields=answer, events=(attempt_entry,), counters=(counted,), unlock=False))
            if result.outcome == Outcome.REJECTED:
                reason = f"Ryng rejected the lead ({result.status_code}): {result.message}"
            else:
                reason = f"gave up after {attempt} attempts: {result.message}"
            return self._bury(run, reason=reason)
        delay = self._policy.backoff(attempt)
        if result.retry_after:
            # Honour Ryng's Retry-After, with jitter on top so the waiting leads do not return in one burst.
            floor = min(result.retry_after, self._policy.backoff_max_seconds)
            delay = max(delay, floor + random.uniform(0, self._policy.backoff_base_seconds))
        self._settle(run, Settlement(
            status=Status.RETRYING, fields=answer | {"wait_reason": "", "retry_in_seconds": str(round(delay, 2))},
            park_seconds=delay, held="unhold", counters=(counted,),
            events=(attempt_entry, history_entry("retry_scheduled", attempt=attempt, delay_seconds=round(delay, 3))),
        ))
        return Step.RETRYING

    def _wait(
        self, run: _Run, reason: WaitReason, delay: float, *, fields: Mapping[str, str] | None = None,
        events: tuple[str, ...] = (), counters: tuple[str, ...] = (), attempts_delta: int = 0, ready: bool = False,
    ) -> Step:
        """Park the lead for `delay` (its agent's capacity stays held: it is still on its way); `ready`: it waits
        for the limiter, picked, and a batch may carry it meanwhile."""
        held: Literal["hold", ""] = "hold" if reason == WaitReason.RYNG_UNAUTHORIZED else ""
        self._settle(run, Settlement(
            status=Status.WAITING, fields={**(fields or {}), "wait_reason": reason},
            park_seconds=delay, held=held, events=events, counters=counters, attempts_delta=attempts_delta,
            ready=ready,
        ))
        return Step.waiting(reason)

    def _settle(self, run: _Run, settlement: Settlement) -> None:
        if run.observed:  # the request's timings ride on the settle that records its answer
            settlement, run.observed = replace(settlement, counters=(*settlement.counters, *run.observed)), ()
        self._ledger.settle(run.lead_id, token=run.token, settlement=settlement)
        run.settled = settlement.unlock

    def _bury(self, run: _Run, *, reason: str) -> Step:
        return self._bury_lead(run.lead_id, reason)

    def _bury_lead(self, lead_id: str, reason: str) -> Step:
        if self._store.bury(lead_id, dead_reason=reason[:500], dead_at=iso(), in_task="0", wait_reason="") is None:
            return Step.NOT_BURIED
        self._store.event(lead_id, "dead", reason=reason[:500])
        self._assigner.release(lead_id=lead_id, cancel=True)  # it never reached the agent
        self._counters.incr("dead")
        log.warning("lead_dead", lead_id=lead_id, reason=reason[:200])
        if self._on_dead is not None:
            self._on_dead(lead_id)
        return Step.DEAD


@dataclass(slots=True)
class _Run:
    """One delivery run: its lead, its lock token, and whether settling it has released the lock."""

    lead_id: str
    token: str
    settled: bool = False
    #: Histogram tokens of this run's request to Ryng, added to the settle that records its answer.
    observed: tuple[str, ...] = ()


def _pick_entry(pick: Pick) -> str:
    return history_entry(
        "pick", outcome=pick.outcome, agent=pick.agent, pool=pick.pool, rule=pick.rule or "",
        strategy=pick.strategy, reason=pick.reason, skipped=[{"agent": s.agent, "reason": s.reason}
                                                             for s in pick.skipped],
    )


def _seconds_since(since_ms: int) -> float:
    if since_ms <= 0:
        return 0.0
    return max(0.0, (now_ms() - since_ms) / 1000)

