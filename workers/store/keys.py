"""Redis key names, in one place so every process agrees on them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """All Redis keys under one prefix (`ROUTER_KEY_PREFIX`, default `lr`)."""

    prefix: str = "lr"

    # Each kind of per-lead key has a namespace of its own, with the lead id last: lead ids may contain ':'
    # and any suffix, so no lead id can ever name another lead's key.

    def lead(self, lead_id: str) -> str:
        """Hash: the lead record."""
        return f"{self.prefix}:lead:{lead_id}"

    def lead_events(self, lead_id: str) -> str:
        """List: the lead's history (attempts, picks, callbacks), JSON entries."""
        return f"{self.prefix}:events:{lead_id}"

    @property
    def lock_prefix(self) -> str:
        return f"{self.prefix}:lock:"

    def lead_lock(self, lead_id: str) -> str:
        """String with TTL: held by the worker delivering this lead."""
        return f"{self.lock_prefix}{lead_id}"

    @property
    def pending(self) -> str:
        """Sorted set: leads not yet in a final state, scored by their lease deadline (ms)."""
        return f"{self.prefix}:pending"

    @property
    def parked(self) -> str:
        """Sorted set: leads waiting (rate limit, backoff, no agent, pause), scored by due time (ms)."""
        return f"{self.prefix}:parked"

    @property
    def dead(self) -> str:
        """Sorted set: dead-lettered lead ids, scored by time of death (ms)."""
        return f"{self.prefix}:dead"

    @property
    def created(self) -> str:
        """Sorted set: every lead with a full record, scored by when it was accepted (ms); retention walks it."""
        return f"{self.prefix}:created"

    @property
    def tombstones(self) -> str:
        """Sorted set: leads shrunk to a tombstone, scored by when they were shrunk (ms)."""
        return f"{self.prefix}:tombstones"

    @property
    def retention_lock(self) -> str:
        """String with TTL: held by the one process running a retention sweep."""
        return f"{self.prefix}:retention:lock"

    @property
    def export_stream(self) -> str:
        """Stream: finished leads' outcomes, appended before their records shrink (ROUTER_EXPORT_STREAM)."""
        return f"{self.prefix}:export"

    @property
    def rate(self) -> str:
        """Sorted set: sliding log of Ryng requests in the last minute."""
        return f"{self.prefix}:ryng:rate"

    @property
    def paused(self) -> str:
        """Hash: present while delivery is paused (Ryng said 403); fields reason, since."""
        return f"{self.prefix}:ryng:paused"

    @property
    def probe(self) -> str:
        """String with TTL: the right to send one probe while paused."""
        return f"{self.prefix}:ryng:probe"

    def webhook(self, webhook_id: str) -> str:
        """String with TTL: the lead a signed webhook (by its `webhook-id`) delivered."""
        return f"{self.prefix}:webhook:{webhook_id}"

    def callback(self, call_key: str) -> str:
        """String with TTL: marks a callback already applied (dedup)."""
        return f"{self.prefix}:callback:{call_key}"

    def agent_prefix(self) -> str:
        """Prefix under which the routing engine keeps agent and pool state."""
        return f"{self.prefix}:routing"
