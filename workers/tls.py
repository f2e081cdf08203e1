"""The TLS context of this process's HTTPS clients (Ryng, CRMs' APIs, outcome receivers).

httpx reads the whole CA bundle (certifi's, or SSL_CERT_FILE / SSL_CERT_DIR) into every client it makes. One
context serves them all instead; the worker's main process makes it before its pool forks, so the children
inherit the parsed bundle rather than each reading it again (parsing it pages in megabytes of OpenSSL per
process).
"""

from __future__ import annotations

import ssl
from functools import cache

import httpx

__all__ = ["tls_context"]


@cache
def tls_context() -> ssl.SSLContext:
    """The verifying client context httpx would make by default (environment's CA locations honoured)."""
    return httpx.create_ssl_context(trust_env=True)
