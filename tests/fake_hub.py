"""A stand-in for the Hugging Face Hub on 127.0.0.1, for downloading CLIP weights without the internet.

It answers what ``huggingface_hub.hf_hub_download`` asks (``HEAD`` and ``GET`` of
``/<repo>/resolve/<revision>/<file>`` with the commit, ETag and length headers the real hub sends, and
404 with ``X-Error-Code: EntryNotFound`` for a file a repository lacks), so the real download code runs
against it end to end with ``HF_ENDPOINT`` pointing here. ``bytes_per_second`` slows the body down so a
test can cancel a download in the middle; ``fail_after`` drops the connection after that many bytes.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Handler(http.server.BaseHTTPRequestHandler):
    files: Mapping[str, Mapping[str, bytes]] = {}
    bytes_per_second: float | None = None
    fail_after: int | None = None
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
            self.wfile.write(body[start : start + step])
            self.wfile.flush()
            if self.bytes_per_second:
                time.sleep(step / self.bytes_per_second)


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a connection dropped on purpose (fail_after) or by a cancelled client


@contextmanager
def fake_hub(
    files: Mapping[str, Mapping[str, bytes]],
    *,
    bytes_per_second: float | None = None,
    fail_after: int | None = None,
) -> Iterator[tuple[str, list[str]]]:
    """Serve ``files`` (``{"org/name": {"file.bin": b"..."}}``); yields the endpoint and the request log."""
    requests: list[str] = []
    handler = type(
        "Handler",
        (_Handler,),
        {
            "files": files,
            "bytes_per_second": bytes_per_second,
            "fail_after": fail_after,
            "requests": requests,
        },
    )
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
