"""Adaptive batching: one Ryng request carries several leads when they wait on the rate limiter.

Opt-in (`RYNG_MAX_BATCH` > 1). A run that holds a limiter slot for its lead gathers other leads already picked
and waiting for the limiter (`DeliveryLedger.gather`, one atomic call), posts them all as one campaign with
`agentMapping: "inline"` — each row with its own agent, the one its own pick chose, and its own lead id — and
settles them all in one call. The batch's answer applies to every lead in it:

- accepted: all posted (each records the batch's campaign name and size);
- 5xx, 429, timeout: all retry with backoff; an ambiguous answer flags each lead's next attempt a possible
  duplicate, as for one lead;
- 403: delivery pauses and every lead waits, as for one lead;
- any other 4xx: the batch is split — every lead goes back to be sent alone (the attempt not counted against it),
  so one bad number cannot sink the others.

Nothing waits to be gathered: with no lead waiting the run posts its lead alone, as without batching.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog

from workers.clock import iso, now_ms
from workers.delivery.ledger import DeliveryLedger, Settlement, history_entry
from workers.delivery.policy import DeliveryPolicy
from workers.ryng.client import Outcome, RyngClient, RyngResult
from workers.ryng.payload import BatchRequest, CampaignRequest
from workers.store.histograms import observe_posted, observe_send
from workers.store.lead_record import Status, WaitReason
from workers.store.pause import DeliveryPause
from workers.store.records import LeadStore

__all__ = ["Batcher", "Member"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Member:
    """One lead of a batch: its request and the attempt this send counts for it."""

    lead_id: str
    attempt: int
    request: CampaignRequest
    #: When the lead was accepted (ms): its time to posted is observed when the batch is accepted.
    created_ms: int = 0


class Batcher:
    """Gathers, posts and settles batches; the run that holds the limiter slot is the batch's leader."""

    def __init__(
        self,
        *,
        ledger: DeliveryLedger,
        ryng: RyngClient,
        policy: DeliveryPolicy,
        pause: DeliveryPause,
        store: LeadStore,
        bury: Callable[[str, str], object],
    ) -> None:
        self._ledger = ledger
        self._ryng = ryng
        self._policy = policy
        self._pause = pause
        self._store = store
        self._bury = bury  # (lead id, reason): dead-letters a lead whose lock this batch holds

    def carry(self, leader: Member, *, token: str) -> str | None:
        """Post `leader` with the leads waiting for the limiter; None when none could be gathered (then the
        leader goes alone, as without batching). Every lead of the batch is settled and unlocked on return.

        Returns what became of the leader: `posted`, `retrying`, `dead` or `waiting-ryng_unauthorized`."""
        gathered = self._ledger.gather(leader.lead_id, token=token, limit=self._policy.max_batch - 1)
        if not gathered:
            return None
        members = [leader]
        unfit: list[tuple[str, Settlement]] = []
        for lead in gathered:
            try:
                request = self._policy.campaign_request(
                    lead.lead_id, lead.record, agent=lead.record.agent, agent_id=lead.record.agent_id,
                    pool=lead.record.pool,
                )
            except Exception as exc:  # its own run will meet the same trouble, alone: let it
                log.warning("batch_member_unfit", lead_id=lead.lead_id, error=type(exc).__name__)
                unfit.append((lead.lead_id, _alone(events=())))
                continue
            members.append(Member(lead.lead_id, lead.attempt, request, created_ms=lead.record.created_ms))
        if len(members) == 1:
            self._ledger.settle_many(unfit, token=token)
            return None
        batch = BatchRequest(name=f"batch-{uuid.uuid4().hex[:12]}", rows=tuple(m.request for m in members))
        result = self._ryng.create_campaign(batch)
        log.info(
            "ryng_batch_attempt", batch=batch.name, size=len(members), outcome=str(result.outcome),
            status_code=result.status_code, elapsed_ms=result.elapsed_ms,
        )
        runs, buried = self._settlements(batch, members, result)
        self._ledger.settle_many([*runs, *unfit], token=token)
        for lead_id, reason in buried:
            self._bury(lead_id, reason)
            self._store.unlock(lead_id, token=token)
        if any(lead_id == leader.lead_id for lead_id, _ in buried):
            return "dead"
        return _LEADER_STEPS[result.outcome]

    def _settlements(
        self, batch: BatchRequest, members: list[Member], result: RyngResult
    ) -> tuple[list[tuple[str, Settlement]], list[tuple[str, str]]]:
        """How each lead of the batch settles after its answer; and the leads to dead-letter, with why."""
        size = len(members)
        answer = {"last_outcome": str(result.outcome), "last_status_code": str(result.status_code or ""),
                  "last_message": result.message[:300], "batch": batch.name, "batch_size": str(size)}
        counted = f"ryng_{result.outcome}"
        if result.outcome == Outcome.UNAUTHORIZED:
            self._pause.pause(reason=f"Ryng answered {result.status_code}: {result.message[:120]}")
            log.error("delivery_paused", reason="ryng_unauthorized", status_code=result.status_code)
        runs: list[tuple[str, Settlement]] = []
        buried: list[tuple[str, str]] = []
        for index, member in enumerate(members):
            entry = history_entry(
                "attempt", attempt=member.attempt, outcome=result.outcome, status_code=result.status_code,
                message=result.message[:300], body=result.body[:500], elapsed_ms=result.elapsed_ms,
                dropped_fields=list(result.dropped_fields), batch=batch.name, batched_with=size - 1,
            )
            leader_counts = ("batches",) if index == 0 else ()
            if result.outcome == Outcome.ACCEPTED:
                settlement = Settlement(
                    status=Status.POSTED, fields=answer | {"posted_at": iso(), "wait_reason": ""}, finish=True,
                    events=(entry,), counters=(counted, "posted", "batched", *leader_counts),
                )
            elif result.outcome == Outcome.UNAUTHORIZED:
                settlement = Settlement(
                    status=Status.WAITING, fields=answer | {"wait_reason": WaitReason.RYNG_UNAUTHORIZED},
                    park_seconds=self._pause.probe_seconds, held="hold", attempts_delta=-1, events=(entry,),
                    counters=(counted, *leader_counts),
                )
            elif result.outcome == Outcome.REJECTED:
                split = history_entry("batch_split", batch=batch.name, status_code=result.status_code)
                settlement = _alone(events=(entry, split), fields=answer,
                                    counters=("batch_split", *leader_counts))
            elif member.attempt >= self._policy.max_attempts:
                settlement = Settlement(fields=answer, events=(entry,), counters=(counted, *leader_counts),
                                        unlock=False)
                buried.append((member.lead_id, f"gave up after {member.attempt} attempts: {result.message}"))
            else:
                delay = self._policy.backoff(member.attempt)
                if result.retry_after:
                    floor = min(result.retry_after, self._policy.backoff_max_seconds)
                    delay = max(delay, floor + random.uniform(0, self._policy.backoff_base_seconds))
                settlement = Settlement(
                    status=Status.RETRYING,
                    fields=answer | {"wait_reason": "", "retry_in_seconds": str(round(delay, 2))},
                    park_seconds=delay, held="unhold", counters=(counted, *leader_counts),
                    events=(entry, history_entry("retry_scheduled", attempt=member.attempt,
                                                 delay_seconds=round(delay, 3))),
                )
            runs.append((member.lead_id, _observed(settlement, result, member, leader=index == 0)))
        return runs, buried


#: What became of the batch's leader (every lead of the batch had the same answer), as the deliverer labels it.
_LEADER_STEPS = {
    Outcome.ACCEPTED: "posted",
    Outcome.RETRY: "retrying",
    Outcome.AMBIGUOUS: "retrying",
    Outcome.REJECTED: "retrying",  # split: each lead goes again, alone
    Outcome.UNAUTHORIZED: f"waiting-{WaitReason.RYNG_UNAUTHORIZED}",
}


def _observed(settlement: Settlement, result: RyngResult, member: Member, *, leader: bool) -> Settlement:
    """The settlement with the request's timings (counted once, on the leader) and the lead's time to posted."""
    now = now_ms()
    timings = (observe_send(result.outcome, result.elapsed_ms, created_ms=member.created_ms, now_ms=now) if leader
               else observe_posted(result.outcome, created_ms=member.created_ms, now_ms=now))
    return replace(settlement, counters=(*settlement.counters, *timings)) if timings else settlement


def _alone(
    *, events: tuple[str, ...], fields: dict[str, str] | None = None, counters: tuple[str, ...] = ()
) -> Settlement:
    """Back to delivery at once, to be sent alone from now on (never batched again; this attempt not counted)."""
    return Settlement(
        status=Status.RETRYING, fields=(fields or {}) | {"batch_split": "1", "wait_reason": ""}, park_seconds=0,
        held="unhold", attempts_delta=-1, events=events, counters=counters,
    )
