"""The TCP publisher protocol (docs/publisher-protocol.md) end to end: the
Python example (examples/publishers/python) against the real ringcast binary,
with a raw WebSocket subscriber checking what reaches clients, plus the
protocol's error and ordering rules on a raw socket.

    RINGCAST_BIN=target/debug/ringcast target/test-venv/bin/python -m pytest -q tests/publishers
"""
import json
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples/publishers/python/ringcast_publisher.py"
sys.path.insert(0, str(EXAMPLE.parent))

from ringcast_publisher import (AUTH, AUTH_OK, ERROR, PING, PONG, PUBLISH, PUBLISHED,  # noqa: E402
                                Publisher, PublisherError, encode_frame, encode_publish)

API_KEY = "test-publisher-key"


sys.path.insert(0, str(ROOT / "tests" / "support"))
from protocol_client import ProtocolClient  # noqa: E402
from ringcast_server import RingcastServer  # noqa: E402


class Server(RingcastServer):
    """`ringcast serve` with this suite's API key; the publisher address split
    for the Publisher class."""

    def __init__(self, *args):
        super().__init__("--api-key", API_KEY, *args)
        host, port = self.publisher_addr.rsplit(":", 1)
        self.pub_host, self.pub_port = host, int(port)

    def publisher(self, key=API_KEY):
        return Publisher(self.pub_host, self.pub_port, key, timeout=10)

    def raw(self):
        return RawConn(self.pub_host, self.pub_port)

def Subscriber(url, channel):
    """A raw-protocol subscriber whose reader thread collects `channel`'s
    publications (`wait(n, timeout)`, `epoch`)."""
    return ProtocolClient(url).collect(channel)


class RawConn:
    """A bare TCP connection to the publisher port, for the protocol's rules."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.buf = bytearray()

    def send(self, *frames):
        self.sock.sendall(b"".join(frames))

    def frame(self):
        """The next answer `(type, body)`, or None at EOF."""
        while True:
            if len(self.buf) >= 5:
                length = struct.unpack_from(">I", self.buf)[0]
                if len(self.buf) >= 4 + length:
                    ftype, body = self.buf[4], bytes(self.buf[5:4 + length])
                    del self.buf[:4 + length]
                    return ftype, body
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                assert not self.buf, f"EOF inside a frame: {bytes(self.buf)!r}"
                return None
            self.buf += chunk

    def frames(self, n):
        out = [self.frame() for _ in range(n)]
        assert None not in out, out
        return out

    def expect_error_then_close(self, code):
        f = self.frame()
        assert f is not None and f[0] == ERROR, f
        got, message = struct.unpack_from(">H", f[1])[0], f[1][2:].decode()
        assert got == code, (got, message)
        assert self.frame() is None, "the server kept the connection open"
        return message

    def auth(self, key=API_KEY):
        self.send(encode_frame(AUTH, key.encode()))
        assert self.frame() == (AUTH_OK, b"")

    def close(self):
        self.sock.close()


def published(body):
    offset, elen = struct.unpack_from(">QB", body)
    assert len(body) == 9 + elen
    return offset, body[9:].decode("ascii")


def error_code(body):
    return struct.unpack_from(">H", body)[0]


@pytest.fixture
def server():
    # --max-queue 0: the subscriber is a Python thread; a burst of 100,000
    # pushes must not get it cut as a slow consumer (that is tested elsewhere).
    s = Server("--shards", "2", "--insecure", "--max-queue", "0")
    yield s
    s.stop()


@pytest.fixture
def subscriber(server):
    subs = []

    def make(channel):
        s = Subscriber(server.ws_url, channel)
        subs.append(s)
        return s

    yield make
    for s in subs:
        s.close()


def check_in_order(pushes, n):
    assert [p["data"]["seq"] for p in pushes[:n]] == list(range(n))
    offsets = [p["offset"] for p in pushes[:n]]
    assert all(b > a for a, b in zip(offsets, offsets[1:])), "offsets not strictly increasing"
    return offsets


# ---- the examples, end to end ------------------------------------------------

def test_python_cli_publishes_100000_received_in_order(server, subscriber):
    n = 100_000
    sub = subscriber("news")
    t0 = time.time()
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), "--host", server.pub_host, "--port", str(server.pub_port),
         "--key", API_KEY, "--channel", "news", "--count", str(n), "--window", "1024"],
        capture_output=True, text=True, timeout=15)
    assert run.returncode == 0, run.stderr
    m = re.search(r"published (\d+) messages to news in .*: (\d+) msg/s, last offset (\d+) epoch (\S+)",
                  run.stdout)
    assert m, run.stdout
    assert int(m.group(1)) == n
    offsets = check_in_order(sub.wait(n, timeout=15 - (time.time() - t0)), n)
    assert offsets[-1] == int(m.group(3))
    print(run.stdout.strip())


def test_python_library_acks_in_order_match_the_pushes(server, subscriber):
    n = 100_000
    sub = subscriber("acks")
    with server.publisher() as p:
        acks = list(p.publish_many("acks", ({"seq": i} for i in range(n)), window=1024))
        assert len(acks) == n
        ack_offsets = [o for o, _ in acks]
        assert all(b > a for a, b in zip(ack_offsets, ack_offsets[1:]))
        # One stream: every ack carries the epoch the subscriber was given.
        assert {e for _, e in acks} == {sub.epoch}
        # The connection is still good after a pipelined run; a synchronous publish follows on.
        offset, epoch = p.publish("acks", {"seq": n})
        assert offset > ack_offsets[-1] and epoch == acks[0][1]
    offsets = check_in_order(sub.wait(n + 1, timeout=15), n + 1)
    assert offsets == ack_offsets + [offset]


def test_python_library_window_of_one_and_small_windows(server, subscriber):
    sub = subscriber("w")
    with server.publisher() as p:
        acks = []
        for window in (1, 2, 7):
            acks += list(p.publish_many("w", ({"seq": len(acks) + i} for i in range(50)), window=window))
        assert len(acks) == 150
    offsets = check_in_order(sub.wait(150, timeout=10), 150)
    assert offsets == [o for o, _ in acks]


def test_publishes_to_channels_on_different_shards_are_answered_in_request_order(server, subscriber):
    # Channels hash to both shards; answers still come back in request order
    # (each ack must match its own channel's push).
    channels = [f"multi{i}" for i in range(8)]
    subs = {c: subscriber(c) for c in channels}
    per = 500
    conn = server.raw()
    conn.auth()
    conn.send(*[encode_publish(channels[i % 8], {"seq": i // 8}) for i in range(per * 8)])
    answers = conn.frames(per * 8)
    conn.close()
    assert all(t == PUBLISHED for t, _ in answers)
    for k, c in enumerate(channels):
        pushes = subs[c].wait(per, timeout=10)
        offsets = check_in_order(pushes, per)
        assert offsets == [published(answers[i][1])[0] for i in range(k, per * 8, 8)]


def test_publish_to_a_channel_nobody_holds_is_acked_with_offset_0_and_no_epoch(server, subscriber):
    # No subscriber and no history: the publication reaches no one and no
    # stream is created, so there is no offset. Once someone subscribes, the
    # stream starts and offsets count from 1.
    conn = server.raw()
    conn.auth()
    conn.send(*[encode_publish("nobody", {"seq": i}) for i in range(3)])
    answers = conn.frames(3)
    assert [published(b) for _, b in answers] == [(0, "")] * 3
    sub = subscriber("nobody")
    conn.send(*[encode_publish("nobody", {"seq": i}) for i in range(2)])
    acks = [published(b) for _, b in conn.frames(2)]
    conn.close()
    assert [o for o, _ in acks] == [1, 2]
    assert acks[0][1] != "" and acks[0][1] == acks[1][1]
    assert check_in_order(sub.wait(2, timeout=10), 2) == [1, 2]


# ---- authentication ----------------------------------------------------------

def test_wrong_key_is_error_101_then_close(server):
    conn = server.raw()
    conn.send(encode_frame(AUTH, b"wrong-key"), encode_publish("news", {"x": 1}))
    assert conn.expect_error_then_close(101) == "unauthorized"
    with pytest.raises(PublisherError) as e:
        server.publisher(key="wrong-key")
    assert e.value.code == 101


@pytest.mark.parametrize("first", [encode_publish("news", {"x": 1}), encode_frame(PING)],
                         ids=["publish", "ping"])
def test_first_frame_not_auth_is_error_101_then_close(server, first):
    conn = server.raw()
    conn.send(first, encode_frame(AUTH, API_KEY.encode()))
    conn.expect_error_then_close(101)


# ---- framing errors close the connection --------------------------------------

def test_oversized_frame_is_error_107_then_close(server):
    conn = server.raw()
    conn.auth()
    # Only the header and a little of the body: the length alone is over the
    # 1 MiB default, and the server must not wait for (or buffer) the rest.
    conn.send(struct.pack(">IB", (1 << 20) + 1, PUBLISH) + b"\x00\x04news" + b"x" * 1000)
    assert conn.expect_error_then_close(107).startswith("bad frame")


def test_max_frame_setting_is_honoured():
    s = Server("--publisher-max-frame", "4096")
    try:
        conn = s.raw()
        conn.auth()
        big = json.dumps("x" * 4000).encode()  # a frame well under 4096 bytes
        conn.send(encode_publish("big", big))
        assert conn.frame()[0] == PUBLISHED
        over = json.dumps("x" * 4100).encode()
        conn.send(encode_publish("big", over))
        assert conn.expect_error_then_close(107).startswith("bad frame")
    finally:
        s.stop()


@pytest.mark.parametrize("ftype", [0x00, 0x04, 0x81, 0x7F, 0xFF])
def test_unknown_frame_type_is_error_107_then_close(server, ftype):
    conn = server.raw()
    conn.auth()
    conn.send(encode_frame(ftype, b"hello"))
    assert conn.expect_error_then_close(107).startswith("bad frame")


def test_answers_before_a_framing_error_still_arrive_in_order(server, subscriber):
    subscriber("before")  # a channel nobody subscribes to starts a new stream (epoch) per publish
    conn = server.raw()
    conn.auth()
    conn.send(encode_publish("before", {"a": 1}), encode_frame(PING), encode_publish("before", {"a": 2}),
              encode_frame(0x42, b""), encode_publish("after", {"never": True}))
    (t1, b1), (t2, _), (t3, b3) = conn.frames(3)
    assert (t1, t2, t3) == (PUBLISHED, PONG, PUBLISHED)
    (o1, e1), (o3, e3) = published(b1), published(b3)
    assert e1 == e3 and o3 > o1
    conn.expect_error_then_close(107)


def test_publish_truncated_inside_is_error_107_then_close(server):
    conn = server.raw()
    conn.auth()
    # channel_len says 200 but the body holds 4 bytes of channel.
    conn.send(encode_frame(PUBLISH, struct.pack(">H", 200) + b"news"))
    assert conn.expect_error_then_close(107).startswith("bad frame")


# ---- per-publish errors keep the connection ------------------------------------

def test_per_publish_errors_are_107_in_place_and_the_connection_continues(server, subscriber):
    sub = subscriber("ok")
    conn = server.raw()
    conn.auth()
    conn.send(
        encode_publish("ok", {"seq": 0}),
        encode_publish("", {"seq": -1}),                # empty channel name
        encode_publish("ok", b"{not json"),              # invalid JSON data
        encode_publish("ok", b""),                       # no data at all
        encode_publish("ok", b'{"a":1} {"b":2}'),        # two JSON values
        encode_publish("x" * 1000, {"seq": -1}),         # channel name too long
        encode_publish("ok", {"seq": 1}),
        encode_frame(PING),
        encode_publish("ok", {"seq": 2}),
    )
    answers = conn.frames(9)
    types = [t for t, _ in answers]
    assert types == [PUBLISHED, ERROR, ERROR, ERROR, ERROR, ERROR, PUBLISHED, PONG, PUBLISHED], answers
    assert all(error_code(b) == 107 for t, b in answers if t == ERROR)
    # Still open and serving: later publishes succeed.
    conn.send(encode_publish("ok", {"seq": 3}))
    (t, b), = conn.frames(1)
    assert t == PUBLISHED
    offsets = check_in_order(sub.wait(4, timeout=5), 4)
    assert offsets == [published(answers[i][1])[0] for i in (0, 6, 8)] + [published(b)[0]]
    conn.close()


def test_python_library_per_publish_errors(server, subscriber):
    sub = subscriber("lib")
    with server.publisher() as p:
        assert p.publish("lib", {"seq": 0})[0] >= 1
        for channel, data in (("", {"x": 1}), ("lib", b"{nope")):
            with pytest.raises(PublisherError) as e:
                p.publish(channel, data)
            assert e.value.code == 107
        assert p.publish("lib", {"seq": 1})[0] >= 1
        got = list(p.publish_many("lib", [{"seq": 2}, b"nope", {"seq": 3}], raise_errors=False))
        assert isinstance(got[1], PublisherError) and got[1].code == 107
        assert got[2][0] > got[0][0]
        p.ping()
        assert p.publish("lib", {"seq": 4})[0] > got[2][0]
    check_in_order(sub.wait(5, timeout=5), 5)


# ---- PING ----------------------------------------------------------------------

def test_ping_is_answered_with_pong_in_order(server):
    conn = server.raw()
    conn.auth()
    conn.send(encode_frame(PING))
    assert conn.frames(1) == [(PONG, b"")]
    reqs = []
    for i in range(2000):
        reqs.append(encode_frame(PING) if i % 7 == 3 else encode_publish(f"p{i % 5}", {"i": i}))
    conn.send(*reqs)
    answers = conn.frames(len(reqs))
    assert [t for t, _ in answers] == [PONG if i % 7 == 3 else PUBLISHED for i in range(2000)]
    assert all(b == b"" for t, b in answers if t == PONG)
    conn.close()
    # The library's ping() too.
    with server.publisher() as p:
        p.ping()
        p.publish("p0", 1)
        p.ping()
