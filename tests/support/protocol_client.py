"""The Python tests' one client of the Centrifugo JSON protocol over a raw
WebSocket (for what the SDKs hide: exact replies, pushes, close codes).
Server pings (`{}`) are answered wherever lines are read.

    c = ProtocolClient(url)            # connects (`connect` command)
    c.call("presence", {...})          # a command, its reply
    c.subscribe("news"); c.pushes(3)   # pull pushes in order
    c.collect("news"); c.wait(100, 5)  # or: a reader thread collects pubs
    c.closed()                         # the server's close: (code, reason)
"""
import json
import threading
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from waits import wait_until


class ProtocolClient:
    def __init__(self, url, connect=None):
        self.ws = ws_connect(url, open_timeout=5, max_size=None)
        self.pending = []
        self.next_id = 1
        self.publications = []
        self.reader_error = None
        self._reader = None
        self.client_id = self.call("connect", connect or {})["connect"]["client"]

    def send(self, method, params):
        cid = self.next_id
        self.next_id += 1
        self.ws.send(json.dumps({"id": cid, method: params}))
        return cid

    def _lines(self, timeout):
        frame = self.ws.recv(timeout=timeout)
        for line in frame.split("\n"):
            if not line:
                continue
            msg = json.loads(line)
            if msg == {}:
                self.ws.send("{}")
            else:
                yield msg

    def recv(self, timeout=5):
        """The next reply or push (pings answered and skipped)."""
        while not self.pending:
            self.pending.extend(self._lines(timeout))
        return self.pending.pop(0)

    def call(self, method, params, timeout=5):
        """Sends a command; returns its reply. What arrives meanwhile stays
        queued for `recv` / `pushes`, in order."""
        cid = self.send(method, params)
        deadline = time.monotonic() + timeout
        skipped = []
        while time.monotonic() < deadline:
            msg = self.recv(timeout)
            if msg.get("id") == cid:
                self.pending = skipped + self.pending
                return msg
            skipped.append(msg)
        raise TimeoutError(method)

    def closed(self, timeout=5):
        """Reads (keeping what arrives for `recv` / `pushes`) until the server
        closes the connection; returns its close frame's (code, reason), or
        (None, "") when it closed without one. Fails if the connection is
        still open after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.pending.extend(self._lines(left))
        except ConnectionClosed as e:
            return (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, "")
        except TimeoutError:
            raise AssertionError(f"the server did not close the connection within {timeout} s "
                                 f"(got {self.pending!r})") from None

    def subscribe(self, channel):
        reply = self.call("subscribe", {"channel": channel})
        assert "error" not in reply, reply
        return reply

    def pushes(self, n, timeout=5):
        """The next `n` pushes, in order (replies skipped)."""
        out = []
        while len(out) < n:
            msg = self.recv(timeout)
            if "push" in msg:
                out.append(msg["push"])
        return out

    def collect(self, channel):
        """Subscribes to `channel` and starts a reader thread that collects its
        publications into `publications` (for `wait`). Only `wait` and
        `close` may be used afterwards."""
        reply = self.subscribe(channel)
        self.epoch = reply["subscribe"].get("epoch")

        def take(msg):
            push = msg.get("push")
            if push and push.get("channel") == channel and "pub" in push:
                self.publications.append(push["pub"])

        for msg in self.pending:
            take(msg)
        self.pending = []

        def run():
            try:
                while True:
                    for msg in self._lines(None):
                        take(msg)
            except Exception as e:  # closed at the end of the test, or cut by the server
                self.reader_error = e

        self._reader = threading.Thread(target=run, daemon=True)
        self._reader.start()
        return self

    def wait(self, n, timeout):
        """At least `n` collected publications within `timeout` seconds."""
        wait_until(lambda: len(self.publications) >= n or not self._reader.is_alive(),
                   lambda: f"{n} publications (got {len(self.publications)})", timeout, every=0.01)
        assert len(self.publications) >= n, \
            f"got {len(self.publications)} of {n} publications (reader: {self.reader_error!r})"
        return self.publications

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
