"""An application backend for the proxy tests: a real HTTP server (stdlib
`ThreadingHTTPServer`, HTTP/1.1 keep-alive) on a free loopback port, speaking
Centrifugo's proxy protocol. What it answers is decided by `routes` (path →
handler), which a test may change at any time; every request is recorded.

A handler gets a `Request` (path, headers with lowercase names, body parsed
as JSON or the raw text) and returns `(status, body)`: a dict/list body is
sent as JSON, a str as text."""
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    path: str
    method: str
    headers: dict
    body: object
    raw: str = field(repr=False, default="")


class Backend:
    def __init__(self, routes=None):
        self.routes = dict(routes or {})
        self.requests = []
        self._lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as ringcast pools

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n).decode("utf-8", "replace")
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
                req = Request(self.path, "POST", {k.lower(): v for k, v in self.headers.items()}, body, raw)
                with backend._lock:
                    backend.requests.append(req)
                route = backend.routes.get(self.path)
                status, answer = route(req) if route else (404, "no route")
                if isinstance(answer, (dict, list)):
                    payload, ctype = json.dumps(answer).encode(), "application/json"
                else:
                    payload, ctype = str(answer).encode(), "text/plain"
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def calls(self, path):
        """Requests to `path` so far."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


def dead_port():
    """A loopback port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
