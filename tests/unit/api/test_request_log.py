"""Paths fit for logs: the callback secret is masked however the path spells it."""

from __future__ import annotations

import pytest

from router.api.request_log import mask_path

SECRET = "s3cr3t-Callback_Segment"


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/ryng/{SECRET}/connect",
        f"//v1/ryng/{SECRET}/terminal",
        f"/v1//ryng//{SECRET}/connect",
        f"/V1/RYNG/{SECRET}",
        f"/v1/ryng/{SECRET}",
        f"/anything/{SECRET}/else",
        f"/v1/leads/{SECRET}",
        f"/v1/ryng/x{SECRET}y/connect",
    ],
)
def test_the_secret_never_survives(path: str) -> None:
    masked = mask_path(path, [SECRET])
    assert SECRET not in masked
    assert "***" in masked


def test_the_segment_after_ryng_is_masked_even_without_a_configured_secret() -> None:
    assert mask_path("//v1/ryng/unknown-secret/connect") == "//v1/ryng/***/connect"
    assert mask_path("/v1/Ryng/other") == "/v1/Ryng/***"


def test_other_paths_are_kept() -> None:
    assert mask_path("/v1/leads/XT243", [SECRET]) == "/v1/leads/XT243"
    assert mask_path("/healthz", ["", SECRET]) == "/healthz"
