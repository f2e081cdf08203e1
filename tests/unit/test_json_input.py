"""Untrusted JSON: numbers too large for a float are refused like NaN and Infinity."""

from __future__ import annotations

import pytest

from workers.json_input import loads_untrusted


@pytest.mark.parametrize("text", ["1e400", "-1e400", "1.5e999"])
def test_numbers_out_of_range_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        loads_untrusted('{"n": ' + text + "}")


def test_ordinary_numbers_pass() -> None:
    assert loads_untrusted('{"a": 1.5e10, "b": -2, "c": 1e-400}') == {"a": 1.5e10, "b": -2, "c": 0.0}
