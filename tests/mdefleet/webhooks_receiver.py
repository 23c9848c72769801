"""A real HTTP receiver on loopback for webhook tests: scripted answers, every request recorded."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mdefleet.webhooks.signing import verify_signature


@dataclass
class Received:
    """One request as the receiver saw it: headers and the raw body bytes."""

    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event(self) -> str:
        return self.headers.get("X-Mdefleet-Event", "")

    def verifies(self, secret: str) -> bool:
        return verify_signature(secret, self.headers.get("X-Mdefleet-Signature", ""), self.body)


@dataclass
class Receiver:
    """``statuses`` answer the requests in turn (the last one repeats); ``delay`` sleeps before answering."""

    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/mdefleet"

    def events(self) -> list[str]:
        return [r.event for r in list(self.received)]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                index = len(receiver.received)
                receiver.received.append(Received(dict(self.headers.items()), body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses[min(index, len(receiver.statuses) - 1)]
                answer = json.dumps({"ok": status < 300, "n": index + 1}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the sender gave up (timeout) and closed the connection

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def dead_url() -> str:
    """An address on loopback where nothing listens (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


def receiving(**kwargs: Any) -> Iterator[Receiver]:
    """Fixture body: a started receiver, stopped afterwards."""
    receiver = Receiver(**kwargs).start()
    try:
        yield receiver
    finally:
        receiver.stop()
