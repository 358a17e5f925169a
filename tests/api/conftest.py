"""Starts the real ringcast binary for the server-API tests."""
import json
import sys
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-api-key"


sys.path.insert(0, str(ROOT / "tests" / "support"))
from ringcast_server import RingcastServer, ringcast_bin  # noqa: E402


class Server(RingcastServer):
    """`ringcast serve` with this suite's API key and `args`."""

    def __init__(self, *args):
        super().__init__("--api-key", API_KEY, *args)


class WsClient:
    """A Centrifugo-protocol client speaking raw JSON over WebSocket."""

    def __init__(self, url):
        self.ws = ws_connect(url, open_timeout=5)
        self.pending = []
        self.next_id = 1
        self.client_id = self.call("connect", {})["connect"]["client"]

    def send(self, method, params):
        cid = self.next_id
        self.next_id += 1
        self.ws.send(json.dumps({"id": cid, method: params}))
        return cid

    def recv(self, timeout=5):
        while not self.pending:
            frame = self.ws.recv(timeout=timeout)
            self.pending.extend(json.loads(line) for line in frame.split("\n") if line)
        return self.pending.pop(0)

    def call(self, method, params):
        cid = self.send(method, params)
        deadline = time.time() + 5
        skipped = []
        while time.time() < deadline:
            msg = self.recv()
            if msg.get("id") == cid:
                self.pending = skipped + self.pending
                return msg
            skipped.append(msg)
        raise TimeoutError(method)

    def subscribe(self, channel):
        reply = self.call("subscribe", {"channel": channel})
        assert "error" not in reply, reply
        return reply

    def pushes(self, n, timeout=5):
        out = []
        while len(out) < n:
            msg = self.recv(timeout)
            if "push" in msg:
                out.append(msg["push"])
        return out

    def close(self):
        self.ws.close()


@pytest.fixture
def server():
    s = Server("--shards", "2", "--insecure", "--presence")
    yield s
    s.stop()


@pytest.fixture
def ws(server):
    clients = []

    def make():
        c = WsClient(server.ws_url)
        clients.append(c)
        return c

    yield make
    for c in clients:
        try:
            c.close()
        except Exception:
            pass
