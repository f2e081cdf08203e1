"""The script folder and its loader: one file per script, each documenting its KEYS and ARGV, none naming a key."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
import redis

from workers.lua import FRAGMENTS, SCRIPTS, STRATEGIES, load_script, script_source

ROOT = Path(__file__).resolve().parents[3]
FOLDER = resources.files("workers.lua")


def lua_files() -> set[str]:
    return {entry.name for entry in FOLDER.iterdir() if entry.name.endswith(".lua")}


def test_every_file_is_a_named_script_a_strategy_or_a_fragment() -> None:
    expected = {f"{name}.lua" for name in SCRIPTS} | {f"strategy_{name}.lua" for name in STRATEGIES}
    expected |= {f"{name}.lua" for name in FRAGMENTS}
    assert lua_files() == expected


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_says_what_its_keys_and_argv_hold(name: str) -> None:
    lines = FOLDER.joinpath(f"{name}.lua").read_text(encoding="utf-8").splitlines()
    header = "\n".join(line for line in lines if line.startswith("--"))
    code = "\n".join(line for line in lines if not line.startswith("--"))
    assert lines[0].startswith("-- ") and re.search(r"^-- .*KEYS\[1\]", header, re.MULTILINE), name
    if "ARGV" in code:
        assert re.search(r"^-- .*ARGV\[1", header, re.MULTILINE), name
    assert "Returns" in header, name


@pytest.mark.parametrize("filename", sorted(lua_files()))
def test_no_script_builds_a_key_name(filename: str) -> None:
    """Key names come in KEYS, built by `Keys`: no script joins text to make one, or reads a prefix."""
    code = "\n".join(line for line in FOLDER.joinpath(filename).read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("--"))
    assert not re.search(r"\.\.\s*'[^']*:", code), filename
    assert not re.search(r"'[^']*:'\s*\.\.", code), filename
    assert "prefix" not in code.lower(), filename


def test_pick_takes_exactly_one_strategy_and_nothing_else_does() -> None:
    for strategy in STRATEGIES:
        text = script_source("pick", strategy=strategy)
        assert "--@STRATEGY@" not in text and "local function choose" in text
    with pytest.raises(ValueError, match="needs"):
        script_source("pick")
    with pytest.raises(ValueError, match="takes no"):
        script_source("lead_accept", strategy="round_robin")


def test_load_script_binds_the_source_without_a_round_trip() -> None:
    client = redis.Redis(port=1)  # nothing listens there: registering must not connect
    script = load_script(client, "lead_unlock")
    assert script.script == script_source("lead_unlock") and len(script.sha) == 40


def test_no_python_module_carries_a_script_or_calls_eval() -> None:
    offenders = []
    for path in [*ROOT.joinpath("workers").rglob("*.py"), *ROOT.joinpath("router").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        if "redis.call(" in text or re.search(r"\.eval(sha)?\(|register_script\(", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == ["workers/lua/__init__.py"]
