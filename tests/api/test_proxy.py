"""Centrifugo-style proxies with centrifuge-python against ringcast, the
backend a real HTTP server on a loopback port (proxy_backend.py, stdlib
http.server in a thread of this process): the connect proxy's user and info
in presence (through a subscribe proxy), rpc answered by the backend (its
data, and its error with its code), the subscribe proxy refusing with its
code, the publish proxy rewriting what subscribers get, and a connect proxy
whose backend is down (error 100, the SDK keeps retrying)."""
import pytest
import requests
from centrifuge import (Client, ClientEventHandler, ClientState, ReplyError, SubscriptionEventHandler,
                        SubscriptionState)

from conftest import run_with_config, until
from proxy_backend import Backend, dead_port


def connect_route(req):
    """Who the client is, decided here: the user is not what the client
    sent but derived from it, so it can only have come from this backend."""
    login = (req.body.get("data") or {}).get("login", "nobody")
    return 200, {"result": {"user": f"user-{login}", "info": {"name": login.title()},
                            "data": {"welcome": req.body["client"]}, "meta": {"tenant": "t1"}}}


def subscribe_route(req):
    if req.body["channel"].startswith("chat:deny"):
        return 200, {"error": {"code": 4003, "message": "members only"}}
    return 200, {"result": {"info": {"role": "member"}}}


def publish_route(req):
    data = req.body["data"]
    return 200, {"result": {"data": {"text": str(data.get("text", "")).upper(), "by": req.body["user"]}}}


def rpc_route(req):
    if req.body["method"] == "fail":
        return 200, {"error": {"code": 4100, "message": "insufficient funds"}}
    return 200, {"result": {"data": {"method": req.body["method"], "got": req.body.get("data"),
                                     "user": req.body["user"], "meta": req.body.get("meta")}}}


ROUTES = {"/connect": connect_route, "/subscribe": subscribe_route, "/publish": publish_route, "/rpc": rpc_route}


def config(backend):
    return f"""
[client]
connect_proxy = "connect"
[proxy.connect]
endpoint = "{backend.url('/connect')}"
http_headers = ["X-Test-Auth"]
[proxy.subscribe]
endpoint = "{backend.url('/subscribe')}"
[proxy.publish]
endpoint = "{backend.url('/publish')}"
[proxy.rpc]
endpoint = "{backend.url('/rpc')}"
include_connection_meta = true
[rpc]
proxy = "rpc"
[namespace.chat]
presence = true
subscribe_proxy = "subscribe"
publish_proxy = "publish"
"""


@pytest.fixture
def backend():
    b = Backend(ROUTES)
    yield b
    b.stop()


class Events(ClientEventHandler):
    def __init__(self):
        self.errors, self.connected = [], []

    async def on_error(self, ctx):
        self.errors.append(ctx.error)

    async def on_connected(self, ctx):
        self.connected.append(ctx)


class SubEvents(SubscriptionEventHandler):
    def __init__(self):
        self.got, self.subscribed, self.unsubscribed, self.errors = [], [], [], []

    async def on_publication(self, ctx):
        self.got.append(ctx.pub.data)

    async def on_subscribed(self, ctx):
        self.subscribed.append(ctx)

    async def on_unsubscribed(self, ctx):
        self.unsubscribed.append((ctx.code, ctx.reason))

    async def on_error(self, ctx):
        self.errors.append(ctx.error)


def client(server, login=None, **kw):
    ev = Events()
    c = Client(server.ws_url, events=ev, data=None if login is None else {"login": login},
               min_reconnect_delay=0.05, max_reconnect_delay=0.2, proxy=None, **kw)
    c.ev = ev
    return c


async def connect(c):
    await c.connect()
    await until(lambda: c.state == ClientState.CONNECTED, f"connected (errors: {c.ev.errors})")


async def subscribe(c, channel, **kw):
    ev = SubEvents()
    sub = c.new_subscription(channel, events=ev, **kw)
    await sub.subscribe()
    await until(lambda: sub.state != SubscriptionState.SUBSCRIBING, f"{channel}: subscribe answered")
    return sub, ev


def metric(server, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    text = requests.get(f"http://{server.api_addr}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_connect_proxy_user_and_info_in_presence(tmp_path, backend):
    async def scenario(server):
        c = client(server, "alice", headers={"X-Test-Auth": "token-abc"})
        try:
            await connect(c)
            [req] = backend.calls("/connect")
            assert req.body["client"] == c.client_id, "the backend was told the connection's client id"
            assert req.body["data"] == {"login": "alice"} and req.body["name"] == "python"
            assert req.headers.get("x-test-auth") == "token-abc", "an allowed header is forwarded"
            assert c.ev.connected[0].data == {"welcome": c.client_id}, "the connect result's data"

            sub, ev = await subscribe(c, "chat:room")
            assert sub.state == SubscriptionState.SUBSCRIBED, ev.unsubscribed
            [sreq] = backend.calls("/subscribe")
            assert (sreq.body["user"], sreq.body["channel"]) == ("user-alice", "chat:room")
            presence = await sub.presence()
            assert [(p.client, p.user, p.conn_info, p.chan_info) for p in presence.clients.values()] == [
                (c.client_id, "user-alice", {"name": "Alice"}, {"role": "member"})
            ], "the connect proxy's user and info, the subscribe proxy's channel info"
        finally:
            await c.disconnect()

    run_with_config(tmp_path, config(backend), scenario)


def test_rpc_returns_the_backends_data_and_error(tmp_path, backend):
    async def scenario(server):
        c = client(server, "bob")
        try:
            await connect(c)
            r = await c.rpc("echo", {"a": [1, 2]})
            assert r.data == {"method": "echo", "got": {"a": [1, 2]}, "user": "user-bob", "meta": {"tenant": "t1"}}
            with pytest.raises(ReplyError) as e:
                await c.rpc("fail", {})
            assert (e.value.code, e.value.message) == (4100, "insufficient funds")
            assert len(backend.calls("/rpc")) == 2
            assert c.state == ClientState.CONNECTED, "an rpc error leaves the connection alone"
        finally:
            await c.disconnect()

    run_with_config(tmp_path, config(backend), scenario)


def test_subscribe_proxy_refuses_with_its_code(tmp_path, backend):
    async def scenario(server):
        c = client(server, "carol")
        try:
            await connect(c)
            sub, ev = await subscribe(c, "chat:deny-1")
            assert sub.state == SubscriptionState.UNSUBSCRIBED
            assert ev.unsubscribed == [(4003, "members only")], ev.unsubscribed
            assert ev.subscribed == []
            assert [r.body["channel"] for r in backend.calls("/subscribe")] == ["chat:deny-1"]
            # The same connection subscribes where the backend allows it.
            ok, _ = await subscribe(c, "chat:open")
            assert ok.state == SubscriptionState.SUBSCRIBED
            assert c.state == ClientState.CONNECTED
        finally:
            await c.disconnect()

    run_with_config(tmp_path, config(backend), scenario)


def test_publish_proxy_rewrites_what_subscribers_get(tmp_path, backend):
    async def scenario(server):
        reader, writer = client(server, "reader"), client(server, "writer")
        try:
            await connect(reader)
            await connect(writer)
            _, rev = await subscribe(reader, "chat:news")
            wsub, wev = await subscribe(writer, "chat:news")
            await wsub.publish({"text": "hello"})
            await until(lambda: rev.got and wev.got, "the publication at both subscribers")
            want = {"text": "HELLO", "by": "user-writer"}
            assert rev.got == [want] and wev.got == [want], (rev.got, wev.got)
            [preq] = backend.calls("/publish")
            assert (preq.body["channel"], preq.body["data"]) == ("chat:news", {"text": "hello"})
        finally:
            await reader.disconnect()
            await writer.disconnect()

    run_with_config(tmp_path, config(backend), scenario)


def test_connect_proxy_backend_down_is_error_100_and_the_sdk_retries(tmp_path):
    toml = f"""
[client]
connect_proxy = "auth"
[proxy.auth]
endpoint = "http://127.0.0.1:{dead_port()}/connect"
"""

    async def scenario(server):
        c = client(server, "dave")
        try:
            await c.connect()
            await until(lambda: len(c.ev.errors) >= 3, f"three failed attempts ({c.ev.errors})")
            codes = [getattr(e, "code", e) for e in c.ev.errors]
            assert all(isinstance(e, ReplyError) and e.code == 100 and e.temporary for e in c.ev.errors), codes
            assert c.state == ClientState.CONNECTING, "the SDK keeps trying"
            assert c.ev.connected == []
            assert metric(server, "ringcast_proxy_requests_total", proxy="auth", result="unreachable") >= 3
            assert metric(server, "ringcast_proxy_requests_total", proxy="auth", result="ok") == 0
        finally:
            await c.disconnect()

    run_with_config(tmp_path, toml, scenario)
