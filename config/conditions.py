"""A condition on a lead (routing rules) or on a CRM payload (a source's filter): a tree of field tests."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["OPERATORS", "Condition"]

OPERATORS = ("equals", "one_of", "regex", "exists", "gt", "gte", "lt", "lte")


class Condition(BaseModel):
    """A rule condition: `all`/`any` of conditions, or one test on a lead field or lead attribute.

    A leaf names `field` (a lead field) or `lead` (`source`, `number` or `lead_id`) and one operator.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: tuple[Condition, ...] | None = None
    any: tuple[Condition, ...] | None = None
    field: str | None = None
    lead: Literal["source", "number", "lead_id"] | None = None
    equals: str | int | float | bool | None = None
    one_of: tuple[str | int | float, ...] | None = None
    regex: str | None = None
    exists: bool | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    @model_validator(mode="after")
    def _shape(self) -> Condition:
        groups = [name for name in ("all", "any") if getattr(self, name) is not None]
        subjects = [name for name in ("field", "lead") if getattr(self, name) is not None]
        ops = [name for name in OPERATORS if getattr(self, name) is not None]
        if groups:
            if len(groups) > 1 or subjects or ops:
                raise ValueError("a condition with `all` or `any` may hold nothing else")
            return self
        if len(subjects) != 1:
            raise ValueError("a condition names exactly one of `field` or `lead` (or is `all`/`any`)")
        numeric = {"gt", "gte", "lt", "lte"}
        if not ops or (len(ops) > 1 and not set(ops) <= numeric):
            raise ValueError(f"a condition needs one operator of {', '.join(OPERATORS)} (gt/lt may pair)")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.regex!r}: {exc}") from exc
        return self
