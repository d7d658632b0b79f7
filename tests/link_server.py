"""Real HTTP servers on loopback for the link checker's tests: one that answers in every way a
website can (redirect chains, loops, errors, HEAD refused, a huge body, slowness), and one that
accepts connections and never says a word."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HUGE_BODY_BYTES = 1024 * 1024 * 1024  # 1 GiB: far more than anyone should read to check a link


class Handler(BaseHTTPRequestHandler):
    server: LinkServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self.answer("HEAD")

    def do_GET(self) -> None:
        self.answer("GET")

    def answer(self, method: str) -> None:
        server = self.server
        path = self.path.split("?", 1)[0]
        with server.lock:
            server.requests.append((method, path, self.headers.get("User-Agent", "")))
            server.active += 1
            server.most_active = max(server.most_active, server.active)
        try:
            self.route(method, path)
        finally:
            with server.lock:
                server.active -= 1

    def route(self, method: str, path: str) -> None:
        if path == "/ok":
            return self.reply(200)
        if path == "/chain":  # two permanent hops
            return self.reply(301, location="/chain-2")
        if path == "/chain-2":
            return self.reply(308, location=f"http://{self.headers['Host']}/ok")
        if path == "/moved-for-now":
            return self.reply(302, location="/ok")
        if path == "/missing":
            return self.reply(404)
        if path == "/error":
            return self.reply(500)
        if path == "/loop-a":
            return self.reply(301, location="/loop-b")
        if path == "/loop-b":
            return self.reply(301, location="/loop-a")
        if path == "/gone-after-redirect":
            return self.reply(301, location="/missing")
        if path == "/no-head":
            return self.reply(405 if method == "HEAD" else 200)
        if path == "/head-404-get-hangs":
            if method == "GET":
                time.sleep(2)
            return self.reply(404)
        if path == "/huge":
            if method == "HEAD":
                return self.reply(405)
            return self.huge()
        if path.startswith("/slow"):
            time.sleep(self.server.slow_seconds)
            return self.reply(200)
        if path.startswith("/redirect-to/"):
            return self.reply(301, location=path.removeprefix("/redirect-to/").replace("|", "/"))
        return self.reply(404)

    def reply(self, status: int, *, location: str | None = None) -> None:
        body = b"<!doctype html><title>test</title>"
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def huge(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(HUGE_BODY_BYTES))
        self.end_headers()
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < HUGE_BODY_BYTES:
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:  # the checker hung up, as it should
            pass
        finally:
            with self.server.lock:
                self.server.huge_bytes_sent = sent
            self.close_connection = True


class LinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", slow_seconds: float = 0.2):
        super().__init__((host, 0), Handler)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, str]] = []
        self.active = 0
        self.most_active = 0
        self.slow_seconds = slow_seconds
        self.huge_bytes_sent: int | None = None
        # Polled every 20 ms, not the standard 0.5 s, so that stopping takes no time a test notices.
        self.thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    @property
    def base(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def start(self) -> LinkServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class SilentServer:
    """Accepts TCP connections (the kernel completes the handshake) and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def stop(self) -> None:
        self.sock.close()
