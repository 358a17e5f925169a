"""Server-side subscriptions with centrifuge-python 0.7: the token's
`channels`, `client.server_subscriptions` and the personal channel arrive in
the connect reply (client-level on_subscribed), their publications reach the
client-level on_publication, and after a reconnect the SDK's positions
recover exactly what it missed."""
import jwt
import requests
from centrifuge import Client, ClientEventHandler

from conftest import API_KEY, run_with_config, until

SECRET = "server-side-secret"
CHANNELS = ["news:a", "all:broadcast", "personal:#alice"]
CONFIG = """
[client]
server_subscriptions = ["all:broadcast"]
subscribe_to_user_personal_channel = true
user_personal_channel_namespace = "personal"
""" + "".join(f"""
[namespace.{ns}]
history_size = 20
history_ttl = 300
force_recovery = true
""" for ns in ("news", "all", "personal"))


class Events(ClientEventHandler):
    def __init__(self):
        self.connected, self.subscribed = [], []
        self.got = {ch: [] for ch in CHANNELS}

    async def on_connected(self, ctx):
        self.connected.append(ctx.client)

    async def on_subscribed(self, ctx):
        self.subscribed.append((ctx.channel, ctx.was_recovering, ctx.recovered))

    async def on_publication(self, ctx):
        self.got[ctx.channel].append(ctx.pub.data["n"])


def api(server, method, body):
    r = requests.post(f"{server.api_url}/{method}", json=body, headers={"X-API-Key": API_KEY})
    assert r.status_code == 200 and "error" not in r.json(), r.text
    return r.json().get("result", {})


def test_server_side_subscriptions_deliver_and_recover(tmp_path):
    run_with_config(tmp_path, CONFIG, scenario, "--token-hmac-secret-key", SECRET)


async def scenario(server):
    token = jwt.encode({"sub": "alice", "channels": ["news:a"]}, SECRET, algorithm="HS256")
    ev = Events()
    client = Client(server.ws_url, events=ev, token=token, min_reconnect_delay=0.05, max_reconnect_delay=0.2)

    def publish_all(n):
        for ch in CHANNELS:
            api(server, "publish", {"channel": ch, "data": {"n": n}})

    await client.connect()
    try:
        await until(lambda: len(ev.subscribed) == 3, "three server-side subscriptions")
        assert sorted(c for c, _, _ in ev.subscribed) == sorted(CHANNELS)
        for n in range(3):
            publish_all(n)
        await until(lambda: all(len(ev.got[ch]) == 3 for ch in CHANNELS), "live publications")

        api(server, "disconnect", {"user": "alice", "client": ev.connected[0],
                                   "disconnect": {"code": 3011, "reason": "test"}})
        for n in range(3, 7):
            publish_all(n)
        await until(lambda: len(ev.connected) == 2 and len(ev.subscribed) == 6, "reconnected")
        assert all(was and rec for _, was, rec in ev.subscribed[3:]), ev.subscribed
        await until(lambda: all(len(ev.got[ch]) == 7 for ch in CHANNELS), "recovered publications")
        for ch in CHANNELS:
            assert ev.got[ch] == list(range(7)), (ch, ev.got[ch])
    finally:
        await client.disconnect()
