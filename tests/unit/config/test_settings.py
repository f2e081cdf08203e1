"""Settings from the environment: defaults, derived values, one-line errors naming the setting, secrecy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings, SettingsError, get_settings, load_settings, parse_field_map

PREFIXES = ("RYNG_", "ROUTER_", "REDIS_", "CELERY_", "SANDBOX_", "LOG_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No inherited settings and no `.env` file: each test states what it sets."""
    for name in list(os.environ):
        if name.upper().startswith(PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def bad(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    return str(caught.value)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.ryng_rate_limit_per_min == 60
    assert settings.ryng_timeout_seconds == 10.0
    assert settings.ryng_body_format == "json" and settings.ryng_lead_id_field == 8
    assert settings.router_key_prefix == "lr"
    assert settings.router_max_attempts == 8 and settings.router_max_deliveries == 6
    assert settings.router_backoff_base_seconds == 2.0 and settings.router_backoff_max_seconds == 300.0
    assert settings.router_lease_seconds == 60.0 and settings.celery_visibility_timeout == 3600
    assert settings.ryng_url is None and settings.uses_sandbox
    assert settings.agents == [] and settings.field_map == {}
    assert settings.redis_url is None and settings.router_admin_token is None


def test_subdomain_gives_the_ryng_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RYNG_SUBDOMAIN", "acme")
    monkeypatch.setenv("RYNG_ACCESS_TOKEN", "tok")
    settings = load_settings()
    assert settings.ryng_url == "https://acme.ryng.in/rest-api/v1"
    assert not settings.uses_sandbox


def test_base_url_wins_and_loses_its_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RYNG_SUBDOMAIN", "acme")
    monkeypatch.setenv("RYNG_BASE_URL", "https://tenant.ryng.xyz/rest-api/v1/")
    assert load_settings().ryng_url == "https://tenant.ryng.xyz/rest-api/v1"


def test_empty_token_means_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RYNG_ACCESS_TOKEN", "")
    assert load_settings().uses_sandbox


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ROUTER_AGENTS=ann, bob ,,cat\nRYNG_RATE_LIMIT_PER_MIN=30\n")
    settings = load_settings()
    assert settings.agents == ["ann", "bob", "cat"] and settings.ryng_rate_limit_per_min == 30


def test_the_env_example_copied_to_env_gives_the_defaults(tmp_path: Path) -> None:
    """`cp .env.example .env` must work: its empty values mean "not set", not "set to nothing"."""
    example = Path(__file__).parents[3] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    settings = load_settings()
    assert settings.router_routing_file is None and settings.redis_url is None
    assert settings.router_callback_secret is None and settings.router_admin_token is None
    assert settings.uses_sandbox and settings.agents == ["alice", "bob"]
    assert settings.ryng_rate_limit_per_min == 60 and settings.ryng_campaign_name_template == "{lead_id}"


def test_get_settings_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_MAX_ATTEMPTS", "3")
    first = get_settings()
    monkeypatch.setenv("ROUTER_MAX_ATTEMPTS", "4")
    assert get_settings() is first and first.router_max_attempts == 3
    get_settings.cache_clear()
    assert get_settings().router_max_attempts == 4


@pytest.mark.parametrize(("name", "value"), [
    ("RYNG_RATE_LIMIT_PER_MIN", "0"),
    ("RYNG_RATE_LIMIT_PER_MIN", "sixty"),
    ("RYNG_TIMEOUT_SECONDS", "-1"),
    ("RYNG_BODY_FORMAT", "xml"),
    ("RYNG_LEAD_ID_FIELD", "9"),
    ("RYNG_SUBDOMAIN", "acme.ryng.in"),
    ("RYNG_BASE_URL", "acme.ryng.in/rest-api/v1"),
    ("ROUTER_KEY_PREFIX", "has space"),
    ("ROUTER_AGENTS", "alice,bad name"),
    ("ROUTER_PORT", "70000"),
    ("REDIS_URL", "localhost:6379"),
    ("RYNG_CAMPAIGN_NAME_TEMPLATE", "{lead_id}-{campaign}"),
    ("RYNG_FIELD_MAP", "Product:9"),
    ("LOG_LEVEL", "LOUD"),
])
def test_a_bad_value_gives_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    message = bad(monkeypatch, **{name: value})
    assert "\n" not in message
    assert message.startswith("invalid setting ")
    assert name in message
    assert message.count(":") >= 1 and len(message) < 400


def test_every_bad_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    message = bad(monkeypatch, RYNG_RATE_LIMIT_PER_MIN="0", ROUTER_PORT="x")
    assert "RYNG_RATE_LIMIT_PER_MIN" in message and "ROUTER_PORT" in message and "\n" not in message


def test_incoherent_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = bad(monkeypatch, ROUTER_BACKOFF_BASE_SECONDS="10", ROUTER_BACKOFF_MAX_SECONDS="5")
    assert "ROUTER_BACKOFF_MAX_SECONDS" in message and "\n" not in message
    get_settings.cache_clear()
    monkeypatch.delenv("ROUTER_BACKOFF_BASE_SECONDS")
    monkeypatch.delenv("ROUTER_BACKOFF_MAX_SECONDS")
    message = bad(monkeypatch, RYNG_FIELD_MAP="Product:8")
    assert "RYNG_LEAD_ID_FIELD" in message


def test_field_map_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_field_map("") == {}
    assert parse_field_map("Name:1, Product:4 ,") == {"Name": 1, "Product": 4}
    assert parse_field_map("Policy:Type:3") == {"Policy:Type": 3}
    for wrong in ("Name", "Name:", ":3", "Name:0", "Name:x", "A:1,B:1", "A:1,A:2"):
        with pytest.raises(ValueError, match=r"FieldName:N|repeats"):
            parse_field_map(wrong)
    monkeypatch.setenv("RYNG_FIELD_MAP", "Name:1,Product:4")
    monkeypatch.setenv("RYNG_LEAD_ID_FIELD", "7")
    settings = load_settings()
    assert settings.field_map == {"Name": 1, "Product": 4} and settings.ryng_lead_id_field == 7


SECRETS = {
    "RYNG_ACCESS_TOKEN": "tok-8f7e6d5c4b3a",
    "ROUTER_CALLBACK_SECRET": "cb-1a2b3c4d5e6f",
    "ROUTER_ADMIN_TOKEN": "adm-0f9e8d7c6b5a",
    "ROUTER_WEBHOOK_SECRETS": "wh-9a8b7c6d5e4f",
}


def test_secrets_stay_out_of_repr_and_str(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    shown = repr(settings) + str(settings) + repr(settings.model_dump())
    for value in SECRETS.values():
        assert value not in shown
    token = settings.ryng_access_token
    assert token is not None and token.get_secret_value() == SECRETS["RYNG_ACCESS_TOKEN"]


def test_secrets_stay_out_of_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RYNG_ACCESS_TOKEN", SECRETS["RYNG_ACCESS_TOKEN"])
    message = bad(monkeypatch, RYNG_RATE_LIMIT_PER_MIN="0")
    assert SECRETS["RYNG_ACCESS_TOKEN"] not in message


def test_settings_can_be_built_directly() -> None:
    settings = Settings(ryng_subdomain="acme", router_agents="a,b")
    assert settings.ryng_url == "https://acme.ryng.in/rest-api/v1" and settings.agents == ["a", "b"]
