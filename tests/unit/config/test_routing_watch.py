"""RoutingWatch: a changed routing file is adopted, an invalid one logged per mistake and refused."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from config.routing import RoutingConfig, RoutingConfigError
from config.routing_watch import RoutingWatch

FIRST = """
[[pools]]
name = "default"
members = ["alice", "bob"]
"""
SECOND = FIRST + """
[[pools]]
name = "life"
members = ["bob"]
strategy = "weighted"
"""
INVALID = SECOND + """
[[pools]]
name = "bad"
strategy = "fastest"

[[agents]]
name = "zed"
weight = 0
"""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    info = path.stat()  # make sure the stamp moves even on a coarse-mtime file system
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))


@pytest.fixture
def routing_file(tmp_path: Path) -> Path:
    path = tmp_path / "routing.toml"
    write(path, FIRST)
    return path


def watch_of(path: Path, clock: Clock) -> RoutingWatch:
    return RoutingWatch(path=str(path), agents=["alice", "bob"], interval=2.0, clock=clock)


def pools(config: RoutingConfig) -> list[str]:
    return [pool.name for pool in config.pools]


def test_a_changed_file_is_adopted_after_the_interval(routing_file: Path) -> None:
    clock, adopted = Clock(), list[RoutingConfig]()
    watch = watch_of(routing_file, clock)
    assert pools(watch.config) == ["default"]
    clock.now += 5
    assert watch.check(adopted.append) is False  # unchanged: nothing to do
    write(routing_file, SECOND)
    clock.now += 1
    assert watch.check(adopted.append) is False  # looked at less than 2 s ago
    assert adopted == []
    clock.now += 1.5
    with capture_logs() as logs:
        assert watch.check(adopted.append) is True
    assert [pools(config) for config in adopted] == [["default", "life"]]
    assert pools(watch.config) == ["default", "life"] and watch.reloads == 1
    assert [entry["event"] for entry in logs] == ["routing_reloaded"]
    clock.now += 3
    assert watch.check(adopted.append) is False and len(adopted) == 1


def test_an_invalid_file_is_logged_once_per_mistake_and_the_old_config_stays(routing_file: Path) -> None:
    clock, adopted = Clock(), list[RoutingConfig]()
    watch = watch_of(routing_file, clock)
    write(routing_file, INVALID)
    with capture_logs() as logs:
        assert watch.check(adopted.append, force=True) is False
        clock.now += 3
        assert watch.check(adopted.append) is False  # the same bad file is not reported again
    assert adopted == [] and pools(watch.config) == ["default"]
    mistakes = [entry["mistake"] for entry in logs if entry["event"] == "routing_reload_rejected"]
    assert len(mistakes) == 2
    assert "line 13: pools.2.strategy: Input should be" in mistakes[1]
    assert "line 17: agents.0.weight: Input should be greater than or equal to 1" in mistakes[0]
    assert [entry["event"] for entry in logs][-1] == "routing_kept"
    assert watch.last_error == "\n".join(mistakes)

    write(routing_file, SECOND)  # fixed: adopted at the next look
    clock.now += 3
    assert watch.check(adopted.append) is True
    assert pools(watch.config) == ["default", "life"] and watch.last_error is None


def test_a_failed_adoption_is_tried_again(routing_file: Path) -> None:
    clock, adopted = Clock(), list[RoutingConfig]()
    watch = watch_of(routing_file, clock)
    write(routing_file, SECOND)

    def broken(config: RoutingConfig) -> None:
        raise ConnectionError("redis away")

    with capture_logs() as logs:
        assert watch.check(broken, force=True) is False
    assert logs[-1]["event"] == "routing_reload_failed"
    assert pools(watch.config) == ["default"]
    assert watch.check(adopted.append, force=True) is True and len(adopted) == 1


def test_a_missing_file_keeps_the_config_and_no_file_means_nothing_to_follow(routing_file: Path) -> None:
    clock = Clock()
    watch = watch_of(routing_file, clock)
    routing_file.unlink()
    with capture_logs() as logs:
        assert watch.check(lambda config: None, force=True) is False
    assert "cannot read" in logs[0]["mistake"] and pools(watch.config) == ["default"]
    shortcut = RoutingWatch(path=None, agents=["alice"])
    assert shortcut.check(lambda config: None, force=True) is False
    assert shortcut.config.members("default") == ["alice"]


def test_start_up_refuses_an_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "routing.toml"
    write(path, INVALID)
    with pytest.raises(RoutingConfigError, match=r"line 13: pools\.2\.strategy"):
        RoutingWatch(path=str(path), agents=[])


def test_follow_adopts_changes_in_the_background(routing_file: Path) -> None:
    watch = RoutingWatch(path=str(routing_file), agents=["alice", "bob"], interval=0.02)
    adopted: list[RoutingConfig] = []

    async def scenario() -> None:
        task = asyncio.create_task(watch.follow(adopted.append))
        await asyncio.sleep(0.05)
        write(routing_file, SECOND)
        for _ in range(100):
            if adopted:
                break
            await asyncio.sleep(0.02)
        task.cancel()

    asyncio.run(scenario())
    assert [pools(config) for config in adopted] == [["default", "life"]]
