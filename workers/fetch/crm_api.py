"""Reading one record from a CRM's API: the URL of a source's fetch, its token, and what the answer means.

A 2xx with a JSON object is the record. A 408, 425, 429, 5xx, a timeout or a connection error may pass: read
again later. Any other answer (a 404: no such record; a 401/403: a wrong token) will not change by itself.
The token is sent in a header or the query and never written anywhere: reasons name the URL's path only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
from pydantic import SecretStr

from config.fetch_models import FetchConfig
from config.sources_models import SourceConfig
from router.intake.sources.mapping import lookup

__all__ = ["CrmApi", "Reading", "record_url"]

_RETRYABLE = frozenset({408, 425, 429})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_MAX_RECORD_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class Reading:
    """What one read gave: the record, or a failure that may pass (`retry`) or will not (`refused`)."""

    kind: Literal["record", "retry", "refused"]
    record: dict[str, Any] | None = None
    reason: str = ""


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + path


def record_url(source: SourceConfig, crm_id: str) -> str:
    """The first read's URL: `fetch.url`, else the API's path on `fetch.base_url` (or the API's own address)."""
    fetch = _fetch(source)
    template = fetch.url
    if template is None:
        api = fetch.defaults(source.preset)
        if api is None:  # the routing file's checks refuse such a source
            raise ValueError(f"source {source.name!r}: its fetch names no API and no url")
        template = _join(fetch.base_url or api.base_url, api.path)
    return template.replace("{id}", quote(crm_id, safe=""))


def _then_url(source: SourceConfig, first: dict[str, Any]) -> tuple[str | None, str | None]:
    """The second read's URL over the first record, or (None, why not) when a placeholder has no value."""
    fetch = _fetch(source)
    api = fetch.defaults(source.preset)
    template = fetch.then_url or (
        _join(fetch.base_url or api.base_url, api.then_path) if api is not None and api.then_path else None
    )
    if template is None:
        return None, None
    missing: list[str] = []

    def value(match: re.Match[str]) -> str:
        found = lookup(first, match.group(1).strip())
        if found is None or isinstance(found, dict | list) or str(found) == "":
            missing.append(match.group(1).strip())
            return ""
        return quote(str(found), safe="")

    url = _PLACEHOLDER.sub(value, template)
    if missing:
        return None, f"the record has no {', '.join(repr(m) for m in missing)} to read further"
    return url, None


def _fetch(source: SourceConfig) -> FetchConfig:
    if source.fetch is None:
        raise ValueError(f"source {source.name!r} declares no fetch")
    return source.fetch


class CrmApi:
    """GETs records over one httpx client (its transport replaceable in tests)."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def close(self) -> None:
        self._client.close()

    def read(self, source: SourceConfig, crm_id: str, *, token: SecretStr) -> Reading:
        """The record of `crm_id`, following the fetch's second read when it has one (Pipedrive's person)."""
        first = self._get(source, record_url(source, crm_id), token)
        if first.kind != "record" or first.record is None:
            return first
        url, missing = _then_url(source, first.record)
        if missing is not None:
            return Reading("refused", reason=missing)
        return first if url is None else self._get(source, url, token)

    def _get(self, source: SourceConfig, url: str, token: SecretStr) -> Reading:
        fetch = _fetch(source)
        api = fetch.defaults(source.preset)
        place = fetch.token_in or (api.token_in if api is not None else "bearer")
        name = fetch.token_name or (api.token_name if api is not None and place == api.token_in else "Authorization")
        secret = token.get_secret_value()
        headers = {"accept": "application/json", "user-agent": "lead-router"}
        params: dict[str, str] = {}
        if place == "bearer":
            headers["authorization"] = f"Bearer {secret}"
        elif place == "header":
            headers[name] = secret
        else:
            params[name] = secret
        where = urlsplit(url).path  # never the query: a token may be in it
        target = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
        try:
            answer = self._client.get(target, headers=headers, timeout=fetch.timeout_seconds)
        except httpx.HTTPError as exc:
            return Reading("retry", reason=f"GET {where}: {type(exc).__name__}")
        text = answer.text[:200].replace(secret, "***")
        if answer.is_success:
            if len(answer.content) > _MAX_RECORD_BYTES:
                return Reading("refused", reason=f"GET {where}: the record is larger than {_MAX_RECORD_BYTES} bytes")
            try:
                record = answer.json()
            except ValueError:
                return Reading("refused", reason=f"GET {where}: the CRM answered {answer.status_code} without JSON")
            if not isinstance(record, dict):
                return Reading("refused", reason=f"GET {where}: the record is a JSON {type(record).__name__}")
            return Reading("record", record=record)
        reason = f"GET {where}: the CRM answered {answer.status_code}: {text}"
        if answer.status_code in _RETRYABLE or answer.status_code >= 500:
            return Reading("retry", reason=reason)
        return Reading("refused", reason=reason)
