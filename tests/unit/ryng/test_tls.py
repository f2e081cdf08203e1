"""Ryng over HTTPS with the one shared TLS context: certificates are verified, and the environment's CA file
(SSL_CERT_FILE) is honoured, as httpx does by default. A real TLS server on localhost with a self-signed
certificate made by `openssl`."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.ryng.ok_server import RyngOk
from workers.ryng.client import CampaignRequest, Outcome, RyngClient
from workers.tls import tls_context


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def https_url(certificate: tuple[Path, Path]) -> Iterator[str]:
    cert, key = certificate
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RyngOk)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}/rest-api/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _fresh_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    tls_context.cache_clear()
    yield
    tls_context.cache_clear()


def _post(url: str) -> Outcome:
    request = CampaignRequest(lead_id="L-1", name="crm-L-1", number="+919800000001", agent="asha",
                              agent_id=None)
    with RyngClient(base_url=url, token="tok-123", timeout=5) as client:
        return client.create_campaign(request).outcome


def test_an_untrusted_certificate_is_refused_and_nothing_is_posted(https_url: str) -> None:
    assert _post(https_url) is Outcome.RETRY  # the handshake fails: never sent, so safe to resend later


def test_the_ca_file_the_environment_names_is_trusted(
    https_url: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    assert _post(https_url) is Outcome.ACCEPTED


def test_every_client_of_the_process_shares_one_context() -> None:
    assert tls_context() is tls_context()
    assert tls_context().verify_mode is ssl.CERT_REQUIRED and tls_context().check_hostname
