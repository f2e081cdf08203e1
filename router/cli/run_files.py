"""The files `lead-router run` keeps in its state directory (`var/` by default, ROUTER_RUN_DIR).

- `secrets.env` (mode 0600): the Flower password, admin token and callback secret, generated on the first run and
  kept, so they stay the same from one run to the next.
- `run.env`: the REDIS_URL (and routing file) of the run in progress, with its process id; written once Redis is
  up, removed on a clean stop. Operator commands read it when REDIS_URL is not set, so they find the run's Redis.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

__all__ = ["RUN_ENV", "SECRETS_ENV", "read_run_env", "remove_run_env", "run_secrets", "write_run_env"]

SECRETS_ENV = "secrets.env"
RUN_ENV = "run.env"
_PID = "LEAD_ROUTER_RUN_PID"

#: The secrets a run keeps, and how each is generated.
_GENERATED = {"FLOWER_PASSWORD": 12, "ROUTER_ADMIN_TOKEN": 24, "ROUTER_CALLBACK_SECRET": 24}

def _parse(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            values[name.strip()] = value.strip()
    return values


def _write_private(path: Path, values: Mapping[str, str], *, header: str) -> None:
    """Write KEY=value lines to a file only its owner may read (0600), replacing it in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(f"# {header}\n" + "".join(f"{name}={value}\n" for name, value in values.items()))
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def run_secrets(run_dir: Path) -> tuple[dict[str, str], bool]:
    """The run's secrets from `secrets.env`, generating (and saving) the missing ones; True when any was new."""
    path = run_dir / SECRETS_ENV
    kept = _parse(path.read_text()) if path.exists() else {}
    values = {name: kept.get(name) or secrets.token_urlsafe(size) for name, size in _GENERATED.items()}
    created = any(not kept.get(name) for name in _GENERATED)
    if created or path.stat().st_mode & 0o777 != 0o600:
        _write_private(path, values, header="lead-router run: generated once, kept between runs (delete to renew)")
    return values, created


def write_run_env(run_dir: Path, values: Mapping[str, str]) -> Path:
    """Record where the run's Redis is, for operator commands in other terminals."""
    path = run_dir / RUN_ENV
    _write_private(path, {**values, _PID: str(os.getpid())},
                   header="lead-router run in progress: removed when it stops")
    return path


def read_run_env(run_dir: Path) -> dict[str, str] | None:
    """The values of a run in progress, or None (no file, or its process is gone: a run that was killed)."""
    path = run_dir / RUN_ENV
    try:
        values = _parse(path.read_text())
    except OSError:
        return None
    if not _alive(values.pop(_PID, "")):
        return None
    return values


def remove_run_env(run_dir: Path) -> None:
    (run_dir / RUN_ENV).unlink(missing_ok=True)


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
