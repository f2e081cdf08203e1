"""The routing file: loading TOML and YAML, the ROUTER_AGENTS shortcut, and errors naming key and line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from config.routing import RoutingConfigError, load_routing

TOML = """\
default_pool = "general"

[agents.alice]
id = 101
weight = 3
capacity = 2
wrap_up_seconds = 30
tags = ["life"]

[agents.alice.schedule]
timezone = "Asia/Kolkata"
days = ["mon", "tue", "wed", "thu", "fri"]
hours = ["09:00-13:00", "14:00-18:00"]
holidays = [2025-12-25]

[agents.bob]
tags = ["life"]

[agents.carol]

[pools.life]
tags = ["life"]
strategy = "weighted"
sticky_seconds = 86400
when_empty = "wait"
max_wait_seconds = 120
overflow = "general"

[pools.general]
members = ["carol", "alice", "bob"]
strategy = "least_busy"
when_empty = "ryng"

[[rules]]
name = "life"
pool = "life"
when = { field = "Product", equals = "Life Insurance" }

[[rules]]
name = "big"
pool = "life"
[rules.when]
all = [{ field = "Amount", gte = 1000 }, { lead = "source", one_of = ["crm", "csv"] }]
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_without_a_file_the_agents_form_one_round_robin_pool() -> None:
    config = load_routing(path=None, agents=["a", "b", "c"])
    assert [agent.name for agent in config.agents] == ["a", "b", "c"]
    assert config.default_pool == "default"
    assert config.pool("default").strategy == "round_robin"
    assert config.members("default") == ["a", "b", "c"]


def test_a_toml_file_loads_with_agents_pools_rules_and_schedules(tmp_path: Path) -> None:
    config = load_routing(path=write(tmp_path, "routing.toml", TOML), agents=["dave"])
    alice = config.agent("alice")
    assert alice is not None and alice.id == 101 and alice.weight == 3 and alice.capacity == 2
    assert alice.schedule is not None and alice.schedule.holidays == (date(2025, 12, 25),)
    assert config.members("life") == ["alice", "bob"]          # by tag, in declaration order
    assert config.members("general") == ["carol", "alice", "bob"]
    assert config.pool("life").overflow == "general"
    assert [rule.name for rule in config.rules] == ["life", "big"]
    assert config.rules[1].when.all is not None and config.rules[1].when.all[0].gte == 1000
    assert config.agent("dave") is not None                     # ROUTER_AGENTS adds undeclared agents


def test_a_yaml_file_loads_with_lists_of_tables(tmp_path: Path) -> None:
    text = """\
default_pool: main
agents:
  - {name: a, capacity: 1}
  - {name: b, weight: 2}
pools:
  - {name: main, members: [a, b], strategy: longest_idle, when_empty: overflow, overflow: spare}
  - {name: spare, members: [b]}
"""
    config = load_routing(path=write(tmp_path, "routing.yaml", text), agents=[])
    assert config.pool("main").strategy == "longest_idle"
    assert config.members("spare") == ["b"]


def test_field_errors_name_the_key_path_and_line(tmp_path: Path) -> None:
    text = TOML.replace('weight = 3', 'weight = "heavy"').replace('"weighted"', '"weighed"')
    with pytest.raises(RoutingConfigError) as caught:
        load_routing(path=write(tmp_path, "routing.toml", text), agents=[])
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert "line 5: agents.alice.weight:" in lines[0]
    assert "line 23: pools.life.strategy:" in lines[1] and "round_robin" in lines[1]


def test_cross_reference_errors_are_reported_one_per_mistake(tmp_path: Path) -> None:
    text = TOML.replace('members = ["carol", "alice", "bob"]', 'members = ["carol", "zoe"]').replace(
        'overflow = "general"', 'overflow = "nowhere"'
    ).replace('name = "big"\npool = "life"', 'name = "big"\npool = "vip"')
    with pytest.raises(RoutingConfigError) as caught:
        load_routing(path=write(tmp_path, "routing.toml", text), agents=[])
    message = str(caught.value)
    assert "line 27: pools.life.overflow: unknown pool 'nowhere'" in message
    assert "line 30: pools.general.members: unknown agents: zoe" in message
    assert "line 41: rules.1.pool: unknown pool 'vip'" in message
    assert len(message.splitlines()) == 3


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    text = "agents:\n  - name: a\n  - name: b\n    capacity: -1\n"
    with pytest.raises(RoutingConfigError, match=r"line 4: agents\.1\.capacity: .*greater than or equal to 0"):
        load_routing(path=write(tmp_path, "r.yml", text), agents=[])


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('[agents.x.schedule]\ntimezone = "Mars/Olympus"\n', "agents.x.schedule.timezone: .*unknown time zone"),
        ('[agents.x.schedule]\nhours = ["9-5"]\n', "agents.x.schedule.hours: .*09:00-17:30"),
        ('[agents.x.schedule]\ndays = ["funday"]\n', "agents.x.schedule.days: .*mon"),
        ('[[rules]]\nname = "r"\npool = "default"\nwhen = { field = "A", regex = "(" }\n', "invalid regex"),
        ('[[rules]]\nname = "r"\npool = "default"\nwhen = { field = "A" }\n', "needs one operator"),
        ('[[rules]]\nname = "r"\npool = "default"\nwhen = { equals = "x" }\n', "exactly one of `field`"),
        ('[pools.default]\nmembers = ["x"]\noverflow = "b"\n[pools.b]\noverflow = "default"\n', "loops back"),
        ('default_pool = "nope"\n', "default_pool: 'nope' is not a declared pool"),
        ('[agents.x]\ncolour = "red"\n', r"agents\.x\.colour: Extra inputs are not permitted"),
        ('[pools.default]\nmembers = ["x"]\nwhen_empty = "overflow"\n', "needs an overflow pool"),
        ('[pools.default]\nmembers = ["x"]\nwhen_empty = "ryng"\noverflow = "b"\n[pools.b]\nmembers = ["x"]\n',
         "never used with when_empty"),
        ('[pools.default]\ntags = ["lfe"]\n', "no agent carries any of the tags lfe"),
    ],
)
def test_each_kind_of_mistake_is_caught(tmp_path: Path, snippet: str, expected: str) -> None:
    text = snippet if snippet.startswith(("[agents.x]\n", "default_pool")) else "[agents.x]\n" + snippet
    with pytest.raises(RoutingConfigError, match=expected):
        load_routing(path=write(tmp_path, "routing.toml", text), agents=[])


def test_syntax_errors_and_missing_files_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(RoutingConfigError, match="invalid TOML"):
        load_routing(path=write(tmp_path, "routing.toml", "[agents\n"), agents=[])
    with pytest.raises(RoutingConfigError, match="cannot read"):
        load_routing(path=str(tmp_path / "absent.toml"), agents=[])


def test_the_example_routing_file_is_valid() -> None:
    example = Path(__file__).parents[3] / "examples" / "routing.toml"
    config = load_routing(path=str(example), agents=[])
    assert config.members("life") == ["alice", "bob"]
    assert config.members("motor") == ["bob", "carol"]
    assert [rule.name for rule in config.rules] == ["life-insurance", "big-motor-from-ads"]


def test_a_file_read_again_is_validated_again_only_when_its_text_or_the_agents_changed(tmp_path: Path) -> None:
    path = write(tmp_path, "routing.toml", '[agents.ann]\n[agents.bea]\n')
    first = load_routing(path=path, agents=["cat"])
    assert load_routing(path=path, agents=["cat"]) is first  # same text and agents: the same frozen config
    assert [a.name for a in load_routing(path=path, agents=["dan"]).agents] == ["ann", "bea", "dan"]
    # Rewritten at once with the same size (no timestamp or size tells the two apart): the new text is read.
    Path(path).write_text('[agents.amy]\n[agents.bob]\n')
    assert [a.name for a in load_routing(path=path, agents=["cat"]).agents] == ["amy", "bob", "cat"]
    Path(path).write_text('[agents.amy]\ncolour = 1\n')
    with pytest.raises(RoutingConfigError, match="colour"):  # a mistake is never served from the last good one
        load_routing(path=path, agents=["cat"])
