"""The pump with its Redis gone (stopped, restarting): one warning line per round, no traceback, and it goes on
pumping once Redis is back."""

from __future__ import annotations

import structlog

from tests.harness import free_port, wait_until
from workers.delivery.pump import Pump
from workers.store.connections import connect
from workers.store.embedded import start_embedded
from workers.store.keys import Keys
from workers.store.parking import Parking


def test_redis_gone_is_one_line_per_round_and_the_pump_resumes() -> None:
    port = free_port()
    server = start_embedded(port=port)
    client = connect(f"redis://127.0.0.1:{port}/0", timeout=1.0)
    keys = Keys("pump")
    parking = Parking(client, keys=keys, lease_seconds=30)
    queued: list[str] = []
    pump = Pump(parking=parking, enqueue=queued.append, expire_reservations=lambda: 0, interval=0.05)
    try:
        with structlog.testing.capture_logs() as logs:
            server.stop()
            pump.start()
            wait_until(lambda: any(e["event"] == "pump_round_failed" for e in logs), timeout=10, what="a failed round")
            server = start_embedded(port=port)
            parking.park("L1", delay_seconds=0)
            wait_until(lambda: queued == ["L1"], timeout=15, what="the parked lead pumped after Redis came back")
        failed = [entry for entry in logs if entry["event"] == "pump_round_failed"]
        assert failed and all(entry["log_level"] == "warning" and "exc_info" not in entry for entry in failed)
        assert all(entry["error"].startswith("ConnectionError: ") for entry in failed)
    finally:
        pump.stop()
        client.close()
        server.stop()
