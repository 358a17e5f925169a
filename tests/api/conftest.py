"""Starts the real ringcast binary for the server-API tests."""
import asyncio
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-api-key"


sys.path.insert(0, str(ROOT / "tests" / "support"))
from protocol_client import ProtocolClient  # noqa: E402
from ringcast_server import RingcastServer, ringcast_bin  # noqa: E402
from waits import wait_until  # noqa: E402,F401  (for the tests)


class Server(RingcastServer):
    """`ringcast serve` with this suite's API key and `args`."""

    def __init__(self, *args):
        super().__init__("--api-key", API_KEY, *args)


# The protocol client of every Python suite.
WsClient = ProtocolClient


async def until(cond, what, timeout=10.0):
    """Polls `cond()` (in an asyncio test) until true, or fails naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def api_disconnect(server, client_id, code=3011):
    """Disconnects client `client_id` through the server API with `code`
    (3011: the SDKs reconnect)."""
    import requests
    r = requests.post(server.api_url + "/disconnect",
                      json={"user": "", "client": client_id, "disconnect": {"code": code, "reason": "test"}},
                      headers={"X-API-Key": API_KEY})
    assert r.status_code == 200, r.text


def run_with_config(tmp_path, toml, scenario, *args):
    """Runs the asyncio `scenario(server)` against `ringcast serve` with the
    config file `toml` and `args`, stopping the server after."""
    conf = tmp_path / "ringcast.toml"
    conf.write_text(toml)
    server = Server("--shards", "2", "--config", str(conf), *args)
    try:
        asyncio.run(scenario(server))
    finally:
        server.stop()


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
