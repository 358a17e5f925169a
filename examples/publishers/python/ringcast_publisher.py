#!/usr/bin/env python3
"""A dependency-free client for ringcast's TCP publisher protocol.

The protocol (docs/publisher-protocol.md) in one paragraph: one persistent TCP
connection, every message a frame ``u32 BE length | u8 type | body`` where the
length counts the type byte and the body. The first frame is AUTH (the API
key); then PUBLISH frames (``u16 BE channel_len | channel | JSON data``) and
PING frames, each answered -- in request order -- with PUBLISHED
(``u64 BE offset | u8 epoch_len | epoch``), PONG, or ERROR
(``u16 BE code | message``). A per-publish ERROR leaves the connection open;
an ERROR for a bad AUTH or a bad frame is followed by the server closing it.

Library::

    from ringcast_publisher import Publisher, PublisherError

    with Publisher("127.0.0.1", 9001, "KEY") as p:
        offset, epoch = p.publish("news", {"hello": "world"})     # one round trip
        for offset, epoch in p.publish_many("news", ({"seq": i} for i in range(100000))):
            ...                                                    # pipelined, in order

CLI::

    python3 ringcast_publisher.py --host 127.0.0.1 --port 9001 --key KEY \\
        --channel news --count 100000 [--window 1024]

Only the standard library is used (socket, struct, json, select).
"""

import argparse
import json
import select
import socket
import struct
import sys
import time

__all__ = ["Publisher", "PublisherError", "encode_frame", "encode_publish",
           "AUTH", "PUBLISH", "PING", "AUTH_OK", "PUBLISHED", "PONG", "ERROR"]

# Client -> server frame types.
AUTH = 0x01
PUBLISH = 0x02
PING = 0x03
# Server -> client frame types.
AUTH_OK = 0x81
PUBLISHED = 0x82
PONG = 0x83
ERROR = 0xE0

# Centrifugo's codes, as the server uses them.
UNAUTHORIZED = 101
BAD_REQUEST = 107

_HEADER = struct.Struct(">IB")  # length (type byte + body), type
_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")
_MAX_SERVER_FRAME = 1 << 20     # answers are tiny; anything bigger is garbage
_BATCH_BYTES = 256 * 1024       # publish_many: encode up to this much before a send
_READ_BYTES = 256 * 1024


class PublisherError(Exception):
    """An ERROR frame from the server (``code``, ``message``), or a local
    protocol/connection failure (``code`` 0)."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def encode_frame(ftype, body=b""):
    """One frame: u32 BE length (type byte + body), u8 type, body."""
    return _HEADER.pack(1 + len(body), ftype) + body


def _encode_data(data):
    # ``bytes`` are sent as they are: already-encoded JSON (and a way to send
    # deliberately invalid data); anything else is serialised with json.
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def encode_publish(channel, data):
    """A PUBLISH frame: u16 BE channel length, channel, JSON data."""
    ch = channel.encode() if isinstance(channel, str) else bytes(channel)
    if len(ch) > 0xFFFF:
        raise ValueError("channel name longer than 65535 bytes")
    return encode_frame(PUBLISH, _U16.pack(len(ch)) + ch + _encode_data(data))


def _decode_published(body):
    if len(body) < 9 or len(body) != 9 + body[8]:
        raise PublisherError(0, f"malformed PUBLISHED frame ({len(body)} bytes)")
    return _U64.unpack_from(body)[0], body[9:].decode("ascii")


def _decode_error(body):
    if len(body) < 2:
        raise PublisherError(0, f"malformed ERROR frame ({len(body)} bytes)")
    return PublisherError(_U16.unpack_from(body)[0], body[2:].decode("utf-8", "replace"))


class Publisher:
    """One authenticated publisher connection. Not thread-safe: use one per
    thread (or guard it), as answers are matched to requests by counting."""

    def __init__(self, host="127.0.0.1", port=9001, api_key="", timeout=10.0):
        self.timeout = timeout
        self._rbuf = bytearray()
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._sock.sendall(encode_frame(AUTH, api_key.encode()))
            ftype, body = self._read_frame()
            if ftype == ERROR:
                raise _decode_error(body)
            if ftype != AUTH_OK:
                raise PublisherError(0, f"expected AUTH_OK, got frame type 0x{ftype:02x}")
        except BaseException:
            self.close()
            raise

    # -- connection --------------------------------------------------------

    def close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    @property
    def closed(self):
        return self._sock is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _live(self):
        if self._sock is None:
            raise PublisherError(0, "connection closed")
        return self._sock

    # -- reading frames ----------------------------------------------------

    def _take_frame(self):
        """The next complete frame buffered in ``_rbuf``, or None."""
        buf = self._rbuf
        if len(buf) < 5:
            return None
        length, ftype = _HEADER.unpack_from(buf)
        if length < 1 or length > _MAX_SERVER_FRAME:
            self.close()
            raise PublisherError(0, f"bad frame length from server: {length}")
        if len(buf) < 4 + length:
            return None
        body = bytes(buf[5:4 + length])
        del buf[:4 + length]
        return ftype, body

    def _fill(self, sock):
        chunk = sock.recv(_READ_BYTES)
        if not chunk:
            self.close()
            raise PublisherError(0, "connection closed by server")
        self._rbuf += chunk

    def _read_frame(self):
        sock = self._live()
        while True:
            frame = self._take_frame()
            if frame is not None:
                return frame
            try:
                self._fill(sock)
            except OSError as e:
                self.close()
                raise PublisherError(0, f"connection lost: {e}") from e

    def _answer(self, ftype, body, expected):
        """Interpret one answer; returns the ack, or a PublisherError for a
        per-request ERROR."""
        if ftype == expected:
            return _decode_published(body) if ftype == PUBLISHED else None
        if ftype == ERROR:
            return _decode_error(body)
        self.close()
        raise PublisherError(0, f"unexpected frame type 0x{ftype:02x} (expected 0x{expected:02x})")

    # -- requests ------------------------------------------------------------

    def _roundtrip(self, frame, expected):
        sock = self._live()
        try:
            sock.sendall(frame)
        except OSError as e:
            self.close()
            raise PublisherError(0, f"connection lost: {e}") from e
        res = self._answer(*self._read_frame(), expected)
        if isinstance(res, PublisherError):
            raise res
        return res

    def publish(self, channel, data):
        """Publish one message and wait for its ack: ``(offset, epoch)``.
        ``data`` is any JSON-serialisable value, or ``bytes`` of encoded JSON.
        Raises PublisherError (e.g. code 107 for a bad channel or data; the
        connection stays usable for those)."""
        return self._roundtrip(encode_publish(channel, data), PUBLISHED)

    def ping(self):
        """PING, wait for the PONG (it comes back in order with the acks)."""
        self._roundtrip(encode_frame(PING), PONG)

    def publish_many(self, channel, items, window=1024, raise_errors=True):
        """Publish every item of ``items`` to ``channel``, pipelined: up to
        ``window`` publishes in flight, written in batches, acks read as they
        arrive. Yields one ``(offset, epoch)`` per item, in order.

        A per-publish ERROR raises PublisherError (``raise_errors=True``) or is
        yielded in that item's place (``raise_errors=False``). Leaving the
        generator early (an exception, ``break``, ``close()``) with publishes
        still in flight closes the connection, since their answers could no
        longer be matched; a generator run to the end leaves it usable."""
        if window < 1:
            raise ValueError("window must be >= 1")
        sock = self._live()
        items = iter(items)
        out = bytearray()   # encoded, not yet sent
        inflight = 0        # sent or encoded, not yet answered
        exhausted = False
        done = False
        sock.setblocking(False)
        try:
            while True:
                while not exhausted and inflight < window and len(out) < _BATCH_BYTES:
                    try:
                        data = next(items)
                    except StopIteration:
                        exhausted = True
                        break
                    out += encode_publish(channel, data)
                    inflight += 1
                if inflight == 0:
                    done = True
                    return
                # Answers already buffered first (so a window of 1 never blocks
                # on a read while an answer is waiting).
                while inflight:
                    frame = self._take_frame()
                    if frame is None:
                        break
                    res = self._answer(*frame, PUBLISHED)
                    inflight -= 1
                    if isinstance(res, PublisherError) and raise_errors:
                        raise res
                    yield res
                if inflight == 0 or (not exhausted and inflight < window and len(out) < _BATCH_BYTES):
                    continue
                readable, writable, _ = select.select(
                    [sock], [sock] if out else [], [], self.timeout)
                if not readable and not writable:
                    raise PublisherError(0, f"no answer for {self.timeout} s")
                try:
                    if writable:
                        n = sock.send(out)
                        del out[:n]
                    if readable:
                        self._fill(sock)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as e:
                    # The server may have written an ERROR before closing (a
                    # reset while we were still writing): report it if so.
                    frame = self._take_frame_quiet()
                    if frame and frame[0] == ERROR:
                        raise _decode_error(frame[1]) from e
                    raise PublisherError(0, f"connection lost: {e}") from e
        finally:
            if self._sock is not None:
                if done:
                    self._sock.settimeout(self.timeout)
                else:
                    self.close()

    def _take_frame_quiet(self):
        try:
            return self._take_frame()
        except PublisherError:
            return None


def main(argv=None):
    ap = argparse.ArgumentParser(description="Publish {\"seq\": i} messages over ringcast's TCP publisher protocol.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9001)
    ap.add_argument("--key", required=True, help="the server API key (--api-key)")
    ap.add_argument("--channel", default="news")
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--window", type=int, default=1024, help="publishes in flight (default 1024)")
    args = ap.parse_args(argv)

    try:
        with Publisher(args.host, args.port, args.key) as p:
            t0 = time.perf_counter()
            n, last = 0, (None, None)
            for ack in p.publish_many(args.channel, ({"seq": i} for i in range(args.count)),
                                      window=args.window):
                n += 1
                last = ack
            dt = time.perf_counter() - t0
    except PublisherError as e:
        print(f"error {e.code}: {e.message}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: cannot connect to {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    rate = n / dt if dt > 0 else float("inf")
    print(f"published {n} messages to {args.channel} in {dt:.3f} s: {rate:.0f} msg/s, "
          f"last offset {last[0]} epoch {last[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
