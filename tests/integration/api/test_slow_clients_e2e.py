"""300 slow connections from one address cannot starve the API: real sockets against `lead-router api`.

The slow clients come from 127.0.0.2 (all of 127.0.0.0/8 is this machine), the normal client from
127.0.0.1. Each slow connection sends one byte a second (of a request head, or of a body whose head it sent
whole) and reconnects on its next tick when it was cut off. While they do, a lead, a Ryng callback and
`/healthz` from the normal client must each answer within one second, again and again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from tests.harness import Stack

SLOW_CLIENTS = 300
SLOW_ADDRESS = "127.0.0.2"
RUN_SECONDS = 13.0  # longer than the head deadline (10 s): cut-offs and reconnections happen


@dataclass
class SlowCrowd:
    """SLOW_CLIENTS sockets, each sending one byte a second; a cut-off socket reconnects on its next tick."""

    host: str
    port: int
    mode: str  # "head" or "body"
    sockets: list[socket.socket | None] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    connects: int = 0
    cut_offs: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def _open(self) -> socket.socket | None:
        sock = socket.socket()
        sock.setblocking(True)
        sock.settimeout(2.0)
        try:
            sock.bind((SLOW_ADDRESS, 0))
            sock.connect((self.host, self.port))
        except OSError:
            sock.close()
            return None
        sock.setblocking(False)
        self.connects += 1
        if self.mode == "body":
            with contextlib.suppress(OSError):
                sock.send(
                    b"POST /v1/leads HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                    b"content-length: 5000\r\n\r\n"
                )
        return sock

    def _byte(self, index: int) -> bytes:
        if self.mode == "body":
            return b" "
        head = b"POST /v1/leads HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
        return head[self.sent[index] % len(head):][:1]

    def _closed(self, sock: socket.socket) -> bool:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return True if not data else self._closed(sock)

    def run(self) -> None:
        self.sockets = [self._open() for _ in range(SLOW_CLIENTS)]
        self.sent = [0] * SLOW_CLIENTS
        deadline = time.monotonic() + RUN_SECONDS + 5
        while not self.stop.is_set() and time.monotonic() < deadline:
            tick = time.monotonic()
            for index, sock in enumerate(self.sockets):
                if sock is not None and self._closed(sock):
                    sock.close()
                    sock = None
                    self.cut_offs += 1
                if sock is None:
                    sock = self.sockets[index] = self._open()  # cut off: reconnect on this tick
                    if sock is None:
                        continue
                try:
                    sock.send(self._byte(index))
                    self.sent[index] += 1
                except OSError:
                    sock.close()
                    self.sockets[index] = None
                    self.cut_offs += 1
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))
        for sock in self.sockets:
            if sock is not None:
                sock.close()


@pytest.mark.parametrize("mode", ["head", "body"])
def test_three_hundred_slow_connections_from_one_address_do_not_starve_others(
    make_stack: Callable[..., Stack], mode: str
) -> None:
    stack = make_stack()
    stack.start_api()
    port = int(stack.api_url.rsplit(":", 1)[1])
    crowd = SlowCrowd("127.0.0.1", port, mode)
    attack = threading.Thread(target=crowd.run, daemon=True)
    attack.start()
    secret = stack.settings["ROUTER_CALLBACK_SECRET"]
    within_a_second = httpx.Client(timeout=httpx.Timeout(1.0), transport=httpx.HTTPTransport(local_address="127.0.0.1"))
    rounds = 0
    try:
        time.sleep(2.0)  # the crowd is connected and trickling
        assert crowd.connects >= SLOW_CLIENTS
        started = time.monotonic()
        while time.monotonic() - started < RUN_SECONDS:
            lead_id = f"SLOW-{mode}-{uuid.uuid4().hex[:8]}"
            taken = within_a_second.post(
                f"{stack.api_url}/v1/leads", json={"id": lead_id, "number": "998314242"}
            )
            assert taken.status_code == 202, taken.text
            callback = within_a_second.post(
                f"{stack.api_url}/v1/ryng/{secret}/terminal", json={"event": "call-ended", "customFields": {}}
            )
            assert callback.status_code == 200, callback.text
            health = within_a_second.get(f"{stack.api_url}/healthz")
            assert health.status_code == 200, health.text
            rounds += 1
            time.sleep(0.5)
    finally:
        crowd.stop.set()
        attack.join(timeout=10)
        within_a_second.close()
    assert rounds >= 10
    assert crowd.cut_offs > 0  # the crowd was refused or cut off, and came back
    api_log = next(proc.log() for proc in stack.procs if proc.name == "api")  # the whole log, not its tail
    assert "Too many connections from 127.0.0.2" in api_log
