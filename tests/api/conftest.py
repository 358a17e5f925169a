"""Starts the real ringcast binary for the server-API tests."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-api-key"


sys.path.insert(0, str(ROOT / "tests" / "support"))
from protocol_client import ProtocolClient  # noqa: E402
from ringcast_server import RingcastServer, ringcast_bin  # noqa: E402


class Server(RingcastServer):
    """`ringcast serve` with this suite's API key and `args`."""

    def __init__(self, *args):
        super().__init__("--api-key", API_KEY, *args)


# The protocol client of every Python suite.
WsClient = ProtocolClient


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
