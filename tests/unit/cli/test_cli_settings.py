"""Which Redis a CLI command uses, and the line that names it: a run's run.env, else REDIS_URL, else the default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import get_settings
from router.cli import settings as cli_settings
from router.cli.run_files import write_run_env
from router.cli.settings import redis_source, settings_or_exit


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("REDIS_URL", "ROUTER_ROUTING_FILE", "ROUTER_RUN_DIR", "ROUTER_AGENTS"):
        monkeypatch.setenv(name, "x")  # so that the end of the test restores their absence
        monkeypatch.delenv(name)
    monkeypatch.setattr(cli_settings, "_from_run", {})
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_running_make_run_supplies_redis_and_the_routing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routing = tmp_path / "routing.toml"
    write_run_env(tmp_path / "var", {"REDIS_URL": "redis://:pw@127.0.0.1:6390/0",
                                     "ROUTER_ROUTING_FILE": str(routing)})
    settings = settings_or_exit()
    assert settings.redis_url == "redis://:pw@127.0.0.1:6390/0" and settings.router_routing_file == str(routing)
    assert redis_source(settings) == ("redis://:***@127.0.0.1:6390/0", "from make run, var/run.env")
    settings_or_exit()  # named once per command
    assert capsys.readouterr().err == "redis: redis://:***@127.0.0.1:6390/0 (from make run, var/run.env)\n"


def test_a_running_make_run_supplies_its_agents_unless_the_shell_names_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_run_env(tmp_path / "var", {"REDIS_URL": "redis://127.0.0.1:6390/0", "ROUTER_AGENTS": "alice,bob"})
    assert settings_or_exit(announce=False).agents == ["alice", "bob"]
    cli_settings._from_run.clear()
    monkeypatch.delenv("REDIS_URL")
    monkeypatch.setenv("ROUTER_AGENTS", "zed")
    get_settings.cache_clear()
    assert settings_or_exit(announce=False).agents == ["zed"]


def test_redis_url_in_the_environment_wins_over_a_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run_env(tmp_path / "var", {"REDIS_URL": "redis://127.0.0.1:6390/0"})
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:7000/2")
    settings = settings_or_exit()
    assert redis_source(settings) == ("redis://127.0.0.1:7000/2", "REDIS_URL in the environment")
    assert "7000/2 (REDIS_URL in the environment)" in capsys.readouterr().err


def test_without_a_run_or_redis_url_the_default_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_or_exit(find_run=False)
    url, where = redis_source(settings)
    assert url == "redis://127.0.0.1:6379/0" and where.startswith("default")
    assert settings_or_exit(announce=False).redis_url is None
