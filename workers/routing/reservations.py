"""Capacity reservations: from its pick until released, a lead holds one unit of its agent's capacity.

A pick makes the reservation (`pick.lua`) and each delivery's settlement moves its deadline (`delivery_settle.lua`);
this module frees it when the call ends or the lead never reaches the agent, and frees those whose deadline passed.
The keys a release touches depend on what the reservation names (its agent, its number), so each release reads the
reservation, then passes those keys to one script that checks nothing changed in between; a lead whose
reservation did change is read again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from workers.lua import load_script
from workers.store.connections import RedisClient
from workers.store.keys import Keys

__all__ = ["Reservations"]

#: How many times a release reads again a reservation that changed under it (a pick racing it) before giving up.
_READS = 10

Mode = Literal["leads", "cancel", "expired"]


class Reservations:
    """Reads and frees reservations; cheap to build, safe to share between threads."""

    def __init__(self, client: RedisClient, *, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._release = load_script(client, "reservation_release")

    def release(self, lead_id: str, *, now_ms: int, cancel: bool = False) -> bool:
        """Free the lead's reservation; False if it held none. `cancel`: no wrap-up, no sticky ownership."""
        for _ in range(_READS):
            released, stale = self._run([lead_id], now_ms=now_ms, mode="cancel" if cancel else "leads")
            if not stale:
                return released > 0
        raise RuntimeError(f"the reservation of lead {lead_id!r} kept changing while being released")

    def expire(self, *, now_ms: int, limit: int) -> int:
        """Free reservations whose deadline passed (at most `limit`); those that changed meanwhile wait a round."""
        due: list[str] = self._client.zrangebyscore(  # type: ignore[assignment]
            self._keys.reservations, "-inf", now_ms, start=0, num=limit
        )
        return self._run(due, now_ms=now_ms, mode="expired")[0] if due else 0

    def _run(self, lead_ids: Sequence[str], *, now_ms: int, mode: Mode) -> tuple[int, int]:
        pipe = self._client.pipeline(transaction=False)
        for lead_id in lead_ids:
            pipe.hmget(self._keys.reservation(lead_id), ["agent", "number"])
        held: list[list[str | None]] = pipe.execute()
        keys = [self._keys.reservations]
        args: list[str | int] = [now_ms, mode]
        for lead_id, (agent, number) in zip(lead_ids, held, strict=True):
            keys += [self._keys.reservation(lead_id), self._keys.agent(agent or ""), self._keys.sticky(number or "")]
            args += [lead_id, agent or "", number or ""]
        released, stale = self._release(keys=keys, args=args)
        return int(released), int(stale)
