"""Sending one lead's oldest outcome to its CRM: signed with Standard Webhooks, at least once, in order.

A 2xx settles the message. A 408, 425, 429, 5xx, timeout or connection error is tried again after a jittered
backoff, up to `ROUTER_OUTCOME_MAX_ATTEMPTS` tries; another 4xx, a missing secret or running out of tries puts
the message in the dead outcomes (`lead-router dead outcomes`), and the lead's record says so.

The signature (https://www.standardwebhooks.com/): `webhook-id` is the message's id (the same on every try, so
the CRM can drop a repeat), `webhook-timestamp` the try's time, `webhook-signature` `v1,<base64 HMAC-SHA256>`
with the source's `whsec_` secret (`outcome_secret_env`).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from enum import StrEnum

import httpx
import structlog
from standardwebhooks.webhooks import Webhook

from workers.delivery.policy import DeliveryPolicy
from workers.outcomes.outbox import Outbox

__all__ = ["OutcomeSender", "Sent"]

log = structlog.get_logger(__name__)

_RETRYABLE = frozenset({408, 425, 429})


class Sent(StrEnum):
    NOTHING = "nothing"
    DELIVERED = "delivered"
    RETRYING = "retrying"
    DEAD = "dead"
    SETTLED_ELSEWHERE = "settled_elsewhere"


class OutcomeSender:
    """One send of a lead's oldest outcome message, and what follows from its answer."""

    def __init__(
        self, *, outbox: Outbox, client: httpx.Client, policy: DeliveryPolicy, max_attempts: int
    ) -> None:
        self._outbox = outbox
        self._client = client
        self._policy = policy
        self._max_attempts = max_attempts

    def close(self) -> None:
        self._client.close()

    def run(self, lead_id: str) -> Sent:
        raw = self._outbox.head(lead_id)
        if raw is None:
            self._outbox.forget(lead_id)
            return Sent.NOTHING
        message = json.loads(raw)
        attempt = self._outbox.attempts(lead_id) + 1
        secret = os.environ.get(str(message.get("secret_env") or ""))
        if not secret:
            return self._dead(lead_id, raw, attempt, f"no signing secret: {message.get('secret_env')} is not set")
        body = json.dumps(message["body"], separators=(",", ":"), ensure_ascii=False)
        stamp = datetime.now(tz=UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": message["id"],
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": Webhook(secret).sign(message["id"], stamp, body),
            "user-agent": "lead-router",
        }
        try:
            answer = self._client.post(message["url"], content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return self._retry(lead_id, raw, attempt, f"{type(exc).__name__}: {exc}"[:300])
        if answer.is_success:
            settled = self._outbox.delivered(lead_id, raw, attempts=attempt, status=answer.status_code)
            log.info("outcome_delivered", lead_id=lead_id, attempts=attempt, status=answer.status_code)
            return Sent.DELIVERED if settled else Sent.SETTLED_ELSEWHERE
        reason = f"the CRM answered {answer.status_code}: {answer.text[:200]}"
        if 400 <= answer.status_code < 500 and answer.status_code not in _RETRYABLE:
            return self._dead(lead_id, raw, attempt, reason)
        return self._retry(lead_id, raw, attempt, reason)

    def _retry(self, lead_id: str, raw: str, attempt: int, reason: str) -> Sent:
        if attempt >= self._max_attempts:
            return self._dead(lead_id, raw, attempt, f"gave up after {attempt} tries: {reason}")
        delay = self._policy.backoff(attempt)
        self._outbox.retry_later(lead_id, attempts=attempt, error=reason, delay_seconds=delay)
        log.info("outcome_retrying", lead_id=lead_id, attempts=attempt, delay=round(delay, 2), reason=reason[:200])
        return Sent.RETRYING

    def _dead(self, lead_id: str, raw: str, attempt: int, reason: str) -> Sent:
        return Sent.DEAD if self._outbox.give_up(lead_id, raw, attempts=attempt, reason=reason) \
            else Sent.SETTLED_ELSEWHERE
