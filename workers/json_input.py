"""Parsing JSON that comes from outside: every way it can be bad is a ValueError with a message, never a crash."""

from __future__ import annotations

import json
import math
from typing import Any


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def loads_untrusted(data: bytes | str) -> Any:
    """`json.loads` that also refuses NaN/Infinity (written, or numbers too large such as 1e400) and turns nesting
    too deep or numbers too long into ValueError.

    Raises ValueError (json.JSONDecodeError and UnicodeDecodeError are ValueErrors too) with a readable message.
    """
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
