"""Redis key names, in one place so every process agrees on them.

Every key the router uses is built here and nowhere else; `docs/KEYS.md` lists them all, with their types, what
they hold and who writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SCHEMA_VERSION", "Keys", "broker_queue"]

#: The key layout in force: 2 is "every key under one hash tag" (1 was `<prefix>:...`, untagged).
SCHEMA_VERSION = 2


@dataclass(frozen=True, slots=True)
class Keys:
    """All Redis keys under one prefix (`ROUTER_KEY_PREFIX`, default `lr`), inside one hash tag: `{lr}:...`.

    The hash tag puts every key of a router in one Redis Cluster slot, so each Lua script may touch any of them
    (a script names every key it touches in KEYS). The whole layout is in `docs/KEYS.md`.

    Each kind of per-lead key has a namespace of its own, with the lead id last: lead ids may contain ':' and any
    suffix, so no lead id can ever name another lead's key.
    """

    prefix: str = "lr"

    @property
    def tag(self) -> str:
        """The hash tag that starts every key: `{<prefix>}`."""
        return "{" + self.prefix + "}"

    def match(self, pattern: str = "*") -> str:
        """A SCAN MATCH pattern over this router's keys (`pattern` is what follows `{<prefix>}:`): `lead:*` for the
        lead records. The tag is matched literally, so a prefix never matches another router's keys."""
        return f"{_glob_literal(self.tag)}:{pattern}"

    # --- leads --------------------------------------------------------------------------------------------

    def lead(self, lead_id: str) -> str:
        """Hash: the lead record."""
        return f"{self.tag}:lead:{lead_id}"

    def lead_events(self, lead_id: str) -> str:
        """List: the lead's history (attempts, picks, callbacks), JSON entries."""
        return f"{self.tag}:events:{lead_id}"

    def lead_lock(self, lead_id: str) -> str:
        """String with TTL: held by the worker delivering this lead."""
        return f"{self.tag}:lock:{lead_id}"

    @property
    def pending(self) -> str:
        """Sorted set: leads not yet in a final state, scored by their lease deadline (ms)."""
        return f"{self.tag}:pending"

    @property
    def parked(self) -> str:
        """Sorted set: leads waiting (rate limit, backoff, no agent, pause), scored by due time (ms)."""
        return f"{self.tag}:parked"

    @property
    def ready(self) -> str:
        """Sorted set: leads picked and waiting for the rate limiter (since ms), which a batch may carry."""
        return f"{self.tag}:ready"

    @property
    def dead(self) -> str:
        """Sorted set: dead-lettered lead ids, scored by time of death (ms)."""
        return f"{self.tag}:dead"

    def webhook(self, webhook_id: str) -> str:
        """String with TTL: the lead a signed webhook (by its `webhook-id`) delivered."""
        return f"{self.tag}:webhook:{webhook_id}"

    @property
    def consume_rejected(self) -> str:
        """List: queue messages the consumer could not take as leads (newest first, bounded)."""
        return f"{self.tag}:consume:rejected"

    # --- Ryng ---------------------------------------------------------------------------------------------

    @property
    def created(self) -> str:
        """Sorted set: every lead with a full record, scored by when it was accepted (ms); retention walks it."""
        return f"{self.tag}:created"

    @property
    def created_indexed(self) -> str:
        """String: set once the leads written before the created index existed were indexed."""
        return f"{self.tag}:created:indexed"

    @property
    def tombstones(self) -> str:
        """Sorted set: leads shrunk to a tombstone, scored by when they were shrunk (ms)."""
        return f"{self.tag}:tombstones"

    @property
    def retention_lock(self) -> str:
        """String with TTL: held by the one process running a retention sweep."""
        return f"{self.tag}:retention:lock"

    @property
    def export_stream(self) -> str:
        """Stream: finished leads' outcomes, appended before their records shrink (ROUTER_EXPORT_STREAM)."""
        return f"{self.tag}:export"

    @property
    def rate(self) -> str:
        """Sorted set: sliding log of Ryng requests in the last minute."""
        return f"{self.tag}:ryng:rate"

    @property
    def paused(self) -> str:
        """Hash: present while delivery is paused (Ryng said 403); fields reason, since."""
        return f"{self.tag}:ryng:paused"

    @property
    def paused_held(self) -> str:
        """Set: leads parked because of the pause, woken at once by a resume."""
        return f"{self.tag}:ryng:paused:held"

    @property
    def probe(self) -> str:
        """String with TTL: the right to send one probe while paused."""
        return f"{self.tag}:ryng:probe"

    def callbacks_applied(self, lead_id: str) -> str:
        """Hash with TTL: the callbacks applied to this lead (dedup), `kind:call id:event` -> 1."""
        return f"{self.tag}:callback-seen:{lead_id}"

    @property
    def callbacks_unmatched(self) -> str:
        """List: callbacks matched to no lead (or to a lead never sent to Ryng), kept for an operator (newest first,
        bounded)."""
        return f"{self.tag}:callbacks:unmatched"

    # --- outcomes back to the CRM (workers/outcomes): one queue per lead, sent in order, oldest first ------

    def outcome_queue(self, lead_id: str) -> str:
        """List: the lead's outcome messages not yet delivered to its CRM, oldest first (JSON)."""
        return f"{self.tag}:outq:{lead_id}"

    def outcome_marker(self, message_id: str) -> str:
        """String with TTL: an outcome message already queued (so a retried callback queues it once)."""
        return f"{self.tag}:outmark:{message_id}"

    @property
    def outcomes_due(self) -> str:
        """Sorted set: leads with outcomes to send, scored by when the next try is due (ms)."""
        return f"{self.tag}:outcomes:due"

    @property
    def outcomes_dead(self) -> str:
        """List: outcome messages given up on (newest first, bounded), JSON with the reason."""
        return f"{self.tag}:outcomes:dead"

    # --- id-only leads waiting for their record from the CRM's API (workers/fetch) --------------------------

    @property
    def fetches_due(self) -> str:
        """Sorted set: leads waiting for their record from the CRM's API, scored by when the next read is due (ms)."""
        return f"{self.tag}:fetches:due"

    # --- agents, pools and reservations (the assigner's state) -----------------------------------------

    def agent(self, name: str) -> str:
        """Hash: one agent's configuration, live overrides and counters."""
        return f"{self.tag}:routing:agent:{name}"

    @property
    def agent_ordinals(self) -> str:
        """Hash: agent name → ordinal, fixed on first registration and never removed."""
        return f"{self.tag}:routing:ordinals"

    @property
    def agent_ordinal_seq(self) -> str:
        """String: the last ordinal handed out."""
        return f"{self.tag}:routing:ordinal_seq"

    @property
    def agents(self) -> str:
        """Set: the agents configured now."""
        return f"{self.tag}:routing:agents"

    @property
    def pools(self) -> str:
        """Set: the pools configured now."""
        return f"{self.tag}:routing:pools"

    def pool_members(self, pool: str) -> str:
        """Sorted set: the pool's members, scored by ordinal."""
        return f"{self.tag}:routing:pool:{pool}:members"

    def pool_config(self, pool: str) -> str:
        """String: the pool's configuration, JSON."""
        return f"{self.tag}:routing:pool:{pool}:config"

    def pool_cursor(self, pool: str) -> str:
        """String: the last agent the pool's round robin picked."""
        return f"{self.tag}:routing:pool:{pool}:cursor"

    def pool_wrr(self, pool: str) -> str:
        """Hash: agent name → current weight of the pool's smooth weighted round robin."""
        return f"{self.tag}:routing:pool:{pool}:wrr"

    def pool_streak(self, pool: str) -> str:
        """Hash: the agent the pool picked last (by a strategy) and how many times in a row (agent, n)."""
        return f"{self.tag}:routing:pool:{pool}:streak"

    def reservation(self, lead_id: str) -> str:
        """Hash: the agent a lead holds one unit of capacity of, and why."""
        return f"{self.tag}:routing:resv:{lead_id}"

    @property
    def reservations(self) -> str:
        """Sorted set: lead ids holding a reservation, scored by its deadline (ms)."""
        return f"{self.tag}:routing:reservations"

    def sticky(self, number: str) -> str:
        """Hash with TTL: the agent that last had this phone number (agent, at)."""
        return f"{self.tag}:routing:sticky:{number}"

    # --- the router itself ------------------------------------------------------------------------------

    @property
    def metrics(self) -> str:
        """Hash: router counters shared by every process (name → count)."""
        return f"{self.tag}:metrics"

    @property
    def schema(self) -> str:
        """String: the key layout version this Redis holds (`SCHEMA_VERSION` once migrated)."""
        return f"{self.tag}:schema"

    # --- the layout before the hash tag (version 1), for the migration -------------------------------

    def legacy_match(self) -> str:
        """A SCAN MATCH pattern over the keys of the untagged layout: `<prefix>:*`."""
        return f"{_glob_literal(self.prefix)}:*"

    def from_legacy(self, legacy_key: str) -> str:
        """The key that replaces an untagged one: `<prefix>:rest` becomes `{<prefix>}:rest`."""
        head = f"{self.prefix}:"
        if not legacy_key.startswith(head):
            raise ValueError(f"{legacy_key!r} is not a key of prefix {self.prefix!r}")
        return f"{self.tag}:{legacy_key.removeprefix(head)}"


def _glob_literal(text: str) -> str:
    """`text` as a literal in a Redis glob pattern (SCAN MATCH, KEYS): `*`, `?`, `[`, `]` and `\\` escaped."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def broker_queue(queue: str) -> str:
    """List: a Celery queue on a Redis broker (kombu's key for priority 0 is the queue's own name).

    Not under the router's prefix or hash tag: Celery owns it. The intake writes to it only when the broker is
    the lead store's own Redis database (see workers/task_message.py); a Redis Cluster is never a Celery broker.
    """
    return queue
