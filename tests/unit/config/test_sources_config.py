"""`[[sources]]` in the routing file: checked with one line per mistake, like the rest of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.routing import RoutingConfigError, load_routing
from config.sources_models import SourceAuth


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "routing.toml"
    path.write_text(text)
    return str(path)


def test_a_source_with_name_preset_and_auth_is_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSQ_TOKEN", "t0ken")
    config = load_routing(path=write(tmp_path, """
[[sources]]
name = "lsq"
preset = "leadsquared"
auth = { scheme = "token", header = "x-api-key", secret_env = "LSQ_TOKEN" }

[[sources]]
name = "open"
auth = "none"
"""), agents=["alice"])
    assert [source.name for source in config.sources] == ["lsq", "open"]
    assert isinstance(config.sources[0].auth, SourceAuth) and config.sources[0].auth.secret() == "t0ken"
    assert config.sources[1].preset == "generic" and config.sources[1].auth == "none"


def test_every_mistake_is_one_line_naming_key_and_line(tmp_path: Path) -> None:
    text = """[[agents]]
name = "alice"

[[sources]]
name = "lsq"
preset = "leadsquared"

[[sources]]
name = "hs"
preset = "hubspot"
auth = { scheme = "hubspot", secret_env = "NOT_SET_ANYWHERE_42" }
agent = { field = "properties.hubspot_owner_id.value", map = { "17" = "zed" } }

[[sources]]
name = "hs"
preset = "marketo"
auth = { scheme = "token" , secret_env = "X" }

[[sources]]
name = "bad-path"
auth = "none"
phone = ["data.phones[?"]
country_code = "91a"
"""
    with pytest.raises(RoutingConfigError) as caught:
        load_routing(path=write(tmp_path, text), agents=[])
    lines = str(caught.value).splitlines()
    assert any("line 4: sources.0.auth: Field required" in line for line in lines), lines
    assert any("sources.2.preset" in line and "line 16" in line for line in lines), lines
    assert any("sources.2.auth" in line and "exactly one of header or query" in line for line in lines), lines
    assert any("sources.3.phone" in line and "JMESPath" in line for line in lines), lines
    assert any("sources.3.country_code" in line for line in lines), lines


def test_cross_checks_name_unknown_agents_pools_duplicates_and_unset_secrets(tmp_path: Path) -> None:
    text = """[[sources]]
name = "hs"
preset = "hubspot"
auth = { scheme = "hubspot", secret_env = "NOT_SET_ANYWHERE_42" }
agent = { field = "owner", map = { "17" = "zed", "18" = "alice" } }
pool = { value = "vip" }

[[sources]]
name = "hs"
auth = "none"
"""
    with pytest.raises(RoutingConfigError) as caught:
        load_routing(path=write(tmp_path, text), agents=["alice"])
    lines = str(caught.value).splitlines()
    assert any("line 5: sources.0.agent: unknown agents: zed" in line for line in lines), lines
    assert any("line 6: sources.0.pool: unknown pools: vip" in line for line in lines), lines
    assert any("sources.0.auth.secret_env: environment variable NOT_SET_ANYWHERE_42 is not set" in line
               for line in lines), lines
    assert any("line 9: sources.1.name: source 'hs' is declared twice" in line for line in lines), lines
    assert len(lines) == 4


def test_the_example_sources_are_a_valid_routing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.harness import ROOT

    for name in ("LSQ_WEBHOOK_TOKEN", "LSQ_OUTCOME_SECRET", "HUBSPOT_CLIENT_SECRET", "ZOHO_WEBHOOK_TOKEN",
                 "PIPEDRIVE_WEBHOOK_PASSWORD", "WEBSITE_WEBHOOK_SECRET", "HUBSPOT_TOKEN", "META_APP_SECRET",
                 "META_VERIFY_TOKEN", "META_PAGE_TOKEN"):
        monkeypatch.setenv(name, "x")
    text = (ROOT / "examples" / "routing.toml").read_text() + "\n" + (ROOT / "examples" / "sources.toml").read_text()
    config = load_routing(path=write(tmp_path, text), agents=[])
    assert [source.preset for source in config.sources] == [
        "leadsquared", "hubspot", "zoho", "salesforce", "pipedrive", "generic", "hubspot", "generic"
    ]
    assert [source.name for source in config.sources if source.fetch is not None] == ["hubspot-app", "meta"]
