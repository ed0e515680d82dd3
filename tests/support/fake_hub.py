"""A stand-in for the Hugging Face Hub on 127.0.0.1, for downloading CLIP weights without the internet.

It answers what ``huggingface_hub.hf_hub_download`` asks (``HEAD`` and ``GET`` of
``/<repo>/resolve/<revision>/<file>`` with the commit, ETag and length headers the real hub sends, and
404 with ``X-Error-Code: EntryNotFound`` for a file a repository lacks), so the real download code runs
against it end to end with ``HF_ENDPOINT`` pointing here. ``fail_after`` drops the connection after that
many bytes; ``stall_after`` sends that many bytes and then nothing more until the client hangs up or the
hub stops, so a test that cancels a download cancels it in the middle, however slow the machine.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

COMMIT = "0123456789abcdef0123456789abcdef01234567"
STALL_LIMIT_S = 120.0
"""The longest a stalled body holds its connection open (a test that forgot to cancel still ends)."""


class _Handler(http.server.BaseHTTPRequestHandler):
    files: Mapping[str, Mapping[str, bytes]] = {}
    fail_after: int | None = None
    stall_after: int | None = None
    stopping: threading.Event
    requests: list[str]

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _lookup(self) -> bytes | None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return None
        repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
        return self.files.get(repo, {}).get(filename)

    def _headers(self, body: bytes | None) -> None:
        self.requests.append(f"{self.command} {self.path}")
        if body is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()

    def do_HEAD(self) -> None:
        self._headers(self._lookup())

    def do_GET(self) -> None:
        body = self._lookup()
        self._headers(body)
        if body is None:
            return
        step = 64 * 1024
        for start in range(0, len(body), step):
            if self.fail_after is not None and start >= self.fail_after:
                self.connection.close()
                return
            if self.stall_after is not None and start >= self.stall_after:
                self.stopping.wait(STALL_LIMIT_S)
                self.connection.close()
                return
            self.wfile.write(body[start : start + step])
            self.wfile.flush()


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a connection dropped on purpose (fail_after) or by a cancelled client


@contextmanager
def fake_hub(
    files: Mapping[str, Mapping[str, bytes]],
    *,
    fail_after: int | None = None,
    stall_after: int | None = None,
) -> Iterator[tuple[str, list[str]]]:
    """Serve ``files`` (``{"org/name": {"file.bin": b"..."}}``); yields the endpoint and the request log."""
    requests: list[str] = []
    stopping = threading.Event()
    handler = type(
        "Handler",
        (_Handler,),
        {
            "files": files,
            "fail_after": fail_after,
            "stall_after": stall_after,
            "stopping": stopping,
            "requests": requests,
        },
    )
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()
