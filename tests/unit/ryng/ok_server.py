"""A local HTTP handler that answers every POST as Ryng accepts a campaign, and remembers the request lines it
was sent (as a forward proxy sees absolute URLs, a server sees paths)."""

from __future__ import annotations

import http.server
import json
from typing import Any, ClassVar

OK_BODY = {"error": False, "message": "Processing Campaign...", "data": {}}


class RyngOk(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        RyngOk.seen.append(self.path)
        body = json.dumps(OK_BODY).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass
