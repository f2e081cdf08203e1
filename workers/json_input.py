"""Parsing JSON that comes from outside: every way it can be bad is a ValueError with a message, never a crash."""

from __future__ import annotations

import json
from typing import Any


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON value")


def loads_untrusted(data: bytes | str) -> Any:
    """`json.loads` that also refuses NaN/Infinity and turns nesting too deep or numbers too long into ValueError.

    Raises ValueError (json.JSONDecodeError and UnicodeDecodeError are ValueErrors too) with a readable message.
    """
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
