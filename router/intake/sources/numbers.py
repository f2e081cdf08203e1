"""Phone numbers from CRMs, normalised: `+91 98765-43210`, `098765 43210` and `9876543210` are one number."""

from __future__ import annotations

import re

import phonenumbers

from config.sources_models import NumberFormat

__all__ = ["normalise_number"]

_NOISE = re.compile(r"[\s\-().]")


def normalise_number(raw: str, *, country_code: str | None, number_format: NumberFormat) -> str:
    """The number in `number_format`; one written without a country code is in `country_code`'s country.

    `e164` gives `+919876543210`; `national` gives `9876543210` for the home country and E.164 for others;
    `as_sent` only strips spaces, dashes, dots and brackets. A number the library cannot read is returned
    stripped, for the lead's own validation to judge.
    """
    stripped = _NOISE.sub("", raw)
    if number_format == "as_sent":
        return stripped
    text = "+" + stripped[2:] if stripped.startswith("00") else stripped
    region = None
    if country_code is not None:
        region = phonenumbers.region_code_for_country_code(int(country_code.lstrip("+")))
    if not text.startswith("+") and region in (None, "ZZ"):
        return stripped
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return stripped
    if not phonenumbers.is_possible_number(number):
        return stripped
    if number_format == "national" and country_code is not None and number.country_code == int(country_code[1:]):
        return str(number.national_number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
