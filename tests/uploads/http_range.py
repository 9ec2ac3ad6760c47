"""A local HTTP server that can be resumed from and slowed down, for curl, wget and aria2c.

`python3 -m http.server` answers every request with the whole file, so a resumed download
(`curl -C -`, `wget -c`, `aria2c -c`) could not be tested against it; and `curl
--limit-rate` averages over seconds and did not slow a few MB over loopback. So this
server honours `Range: bytes=A-` / `A-B` (206 with Content-Range, 416 past the end) and
throttles on its own side: `/slow/NAME` is paced to `rate` bytes per second, `/NAME` is
sent at full speed. It records every request (path, range asked for, bytes sent), so a
test can prove that a resume really asked for the missing tail only.

Bounded: at most MAX_CLIENTS handler threads at once (more are refused by closing the
connection), every socket has a timeout, and the threads are daemons.
"""

from __future__ import annotations

import email.utils
import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional
from urllib.parse import unquote

MAX_CLIENTS = 16
CHUNK = 16 * 1024
SOCKET_TIMEOUT = 15.0
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Served:
    path: str
    range: Optional[str]      # the Range header as the client sent it
    status: int
    start: int = 0            # first byte offset sent
    sent: int = 0             # bytes of body written so far (grows while it runs)


class _Handler(BaseHTTPRequestHandler):
    server: "RangeServer"
    timeout = SOCKET_TIMEOUT

    def log_message(self, format: str, *args: object) -> None:   # noqa: A002 - the base's name
        pass   # the request log is self.server.requests, not stderr

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        name, slow = unquote(self.path.split("?", 1)[0]), False
        if name.startswith("/slow/"):
            name, slow = name[len("/slow"):], True
        file = self.server.directory / name.lstrip("/")
        record = Served(self.path, self.headers.get("Range"), 200)
        self.server.record(record)
        if "/" in name.lstrip("/") or not file.is_file():
            record.status = 404
            self.send_error(404)
            return
        size = file.stat().st_size
        start, end = 0, size - 1
        if record.range:
            match = _RANGE.match(record.range.strip())
            if not match or (not match.group(1) and not match.group(2)):
                record.status = 416
                self._unsatisfiable(size)
                return
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:   # bytes=-N: the last N bytes
                start = max(0, size - int(match.group(2)))
            if start >= size or start > end:
                record.status = 416
                self._unsatisfiable(size)
                return
            record.status = 206
        record.start = start
        length = end - start + 1
        self.send_response(record.status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", email.utils.formatdate(file.stat().st_mtime, usegmt=True))
        if record.status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self._send(file, start, length, record, self.server.rate if slow else None)

    def _unsatisfiable(self, size: int) -> None:
        self.send_response(416)
        self.send_header("Content-Range", f"bytes */{size}")
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    def _send(self, file: Path, start: int, length: int, record: Served, rate: Optional[int]) -> None:
        began = time.monotonic()
        with open(file, "rb") as handle:
            handle.seek(start)
            while record.sent < length:
                data = handle.read(min(CHUNK, length - record.sent))
                if not data:
                    return
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError, socket.timeout):
                    return   # the client was killed: that is what these tests do
                record.sent += len(data)
                if rate:
                    ahead = record.sent / rate - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)


class RangeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, directory: Path, rate: int = 1_000_000) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.directory = directory
        self.rate = rate
        self.requests: list[Served] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, served: Served) -> None:
        with self._lock:
            self.requests.append(served)

    def served(self, path_suffix: str) -> list[Served]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(path_suffix)]

    def sent(self, path_suffix: str) -> int:
        return sum(r.sent for r in self.served(path_suffix))

    def process_request(self, request, client_address) -> None:   # type: ignore[override]
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)   # full: refuse rather than grow without bound
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:   # type: ignore[override]
        try:
            request.settimeout(SOCKET_TIMEOUT)
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def start(self) -> "RangeServer":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="range-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def publish(server: RangeServer, source: Path, name: str, mtime: Optional[float] = None) -> str:
    """Put a copy of `source` on the server as `name` (a copy, not a link: its mtime is the
    server's Last-Modified, which wget and `curl -R` give the downloaded file); its URL path."""
    target = server.directory / name
    shutil.copyfile(source, target)
    if mtime is not None:
        os.utime(target, (mtime, mtime))
    return "/" + name
