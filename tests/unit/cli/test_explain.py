"""`explain` in words: each part of a record (pick, skipped agents, attempts, callbacks) as a sentence."""

from __future__ import annotations

from router.api.schemas import LeadRecord
from router.cli.explain import describe


def test_a_retried_then_dead_lead_reads_as_what_happened() -> None:
    record = LeadRecord(
        id="XT9", status="dead", source="lsq", agent="carol", agent_id="30", pool="motor", rule=None,
        strategy="least_busy", reason="fewest open (0)", attempts=2, last_status_code="422",
        last_message="Invalid number", dead_reason="Ryng rejected the lead (422): Invalid number",
        created_at="2026-01-02T10:00:00.000Z",
        history=[
            {"at": "2026-01-02T10:00:00.000Z", "event": "accepted", "source": "lsq"},
            {"at": "2026-01-02T10:00:01.000Z", "event": "pick", "outcome": "assigned", "agent": "carol",
             "pool": "motor", "rule": "", "strategy": "least_busy", "reason": "fewest open (0)",
             "skipped": [{"agent": "dave", "reason": "off_shift"}, {"agent": "erin", "reason": "at_capacity"}]},
            {"at": "2026-01-02T10:00:02.000Z", "event": "attempt", "attempt": 1, "outcome": "retryable",
             "status_code": 503, "message": "busy", "elapsed_ms": 12, "dropped_fields": []},
            {"at": "2026-01-02T10:00:02.000Z", "event": "retry_scheduled", "attempt": 1, "delay_seconds": 2.1},
            {"at": "2026-01-02T10:00:05.000Z", "event": "attempt", "attempt": 2, "outcome": "rejected",
             "status_code": 422, "message": "Invalid number", "elapsed_ms": 9, "dropped_fields": ["Notes"]},
            {"at": "2026-01-02T10:00:05.000Z", "event": "dead", "reason": "Ryng rejected the lead"},
        ],
    )
    text = "\n".join(describe(record))
    assert text.startswith("lead XT9: dead, source lsq\n")
    assert "agent carol (Ryng id 30), pool motor, no rule matched, strategy least_busy: fewest open (0)" in text
    assert "dead: Ryng rejected the lead (422): Invalid number" in text
    assert "2 attempt(s) to Ryng; last answer 422 'Invalid number'" in text
    assert "created    2026-01-02T10:00:00.000Z" in text
    assert "picked carol from pool motor (no rule matched; strategy least_busy" in text
    assert "skipped dave: off shift" in text and "skipped erin: at capacity (open leads)" in text
    assert ("2026-01-02T10:00:02.000Z  attempt 1: Ryng answered 503 'busy' in 12 ms — failed, retried later"
            in text)
    assert "next try in 2.1 s" in text
    assert "attempt 2: Ryng answered 422 'Invalid number' in 9 ms — rejected (not retried); fields left out: Notes" \
        in text
    assert "{" not in text  # words, not JSON


def test_a_waiting_lead_with_a_call_says_so() -> None:
    record = LeadRecord(
        id="W1", status="completed", wait_reason=None, agent_mapping="all-agents", call_id="c-7",
        disposition="Interested", talktime="00:01:10",
        history=[{"at": "2026-01-02T10:00:00.000Z", "event": "callback_terminal", "ryng_event": "call-ended",
                  "agent": "bob", "disposition": "Interested"}],
    )
    text = "\n".join(describe(record))
    assert "no agent named: Ryng chooses among all its agents" in text
    assert "call c-7: Interested, talk time 00:01:10" in text
    assert "Ryng callback call-ended (agent bob), disposition Interested" in text
    waiting = describe(LeadRecord(id="W2", status="waiting", wait_reason="no_agent_eligible"))
    assert waiting[0] == "lead W2: waiting (no agent eligible)"
