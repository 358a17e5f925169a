"""centrifuge-python's `get_state` (Centrifugo 6 stream state recovery)
against ringcast, with the real SDK over a real socket: called once on a
fresh subscribe, not after a recovery that worked, called again after a
position the window no longer covers (error 112, from the
`reject_unrecovered` subscribe flag), and offset 0 with an empty epoch
recovers every publication of the current stream still in the window."""
import requests
from centrifuge import Client, StreamPosition, SubscriptionEventHandler

from conftest import API_KEY, api_disconnect as disconnect, run_with_config, until


def publish(server, channel, n):
    r = requests.post(server.api_url + "/publish", json={"channel": channel, "data": {"n": n}},
                      headers={"X-API-Key": API_KEY})
    assert r.status_code == 200 and "result" in r.json(), r.text


def top(server, channel):
    r = requests.post(server.api_url + "/history", json={"channel": channel, "limit": 0},
                      headers={"X-API-Key": API_KEY}).json()["result"]
    return StreamPosition(offset=r.get("offset", 0), epoch=r["epoch"])




class Recorder(SubscriptionEventHandler):
    def __init__(self):
        self.got, self.subscribed, self.errors = [], [], []

    async def on_publication(self, ctx):
        self.got.append(ctx.pub.data["n"])

    async def on_subscribed(self, ctx):
        self.subscribed.append((ctx.was_recovering, ctx.recovered))

    async def on_error(self, ctx):
        self.errors.append(ctx.code)


CONFIG = "[namespace.state]\nhistory_size = 5\nhistory_ttl = 300\nforce_recovery = true\n"


def test_get_state_once_then_recovery_then_112_and_again(tmp_path):
    run_with_config(tmp_path, CONFIG, scenario, "--insecure")


async def scenario(server):
    channel = "state:py"
    for n in range(3):
        publish(server, channel, n)
    client = Client(server.ws_url)
    states = []

    async def get_state(ch):
        pos = top(server, ch)  # the position first, then the app's data
        states.append(pos.offset)
        return pos

    rec = Recorder()
    sub = client.new_subscription(channel, events=rec, get_state=get_state, min_resubscribe_delay=0.05,
                                  max_resubscribe_delay=0.2)
    await client.connect()
    await sub.subscribe()
    try:
        await until(lambda: len(rec.subscribed) == 1, "first subscribe")
        assert states == [3] and rec.got == []
        publish(server, channel, 3)
        await until(lambda: rec.got == [3], "live publication")

        # Inside the window: recovered, get_state not called again.
        disconnect(server, client.client_id)
        publish(server, channel, 4)
        publish(server, channel, 5)
        await until(lambda: len(rec.subscribed) == 2 and len(rec.got) == 3, "recovery")
        assert rec.got == [3, 4, 5] and rec.subscribed[1] == (True, True) and states == [3]

        # Past the window: 112, get_state again, no recovered:false.
        disconnect(server, client.client_id)
        for n in range(6, 14):
            publish(server, channel, n)
        await until(lambda: len(rec.subscribed) == 3, "subscribe after get_state again")
        assert states == [3, 14], states
        assert (True, False) not in rec.subscribed, rec.subscribed
        assert rec.got == [3, 4, 5]
        publish(server, channel, 14)
        await until(lambda: rec.got == [3, 4, 5, 14], "live after the reload")
    finally:
        await client.disconnect()


def test_get_state_from_scratch_recovers_the_window(tmp_path):
    run_with_config(tmp_path, CONFIG, from_scratch, "--insecure")


async def from_scratch(server):
    channel = "state:zero"
    for n in range(3):
        publish(server, channel, n)
    client = Client(server.ws_url)

    async def get_state(ch):
        return StreamPosition(offset=0, epoch="")

    rec = Recorder()
    sub = client.new_subscription(channel, events=rec, get_state=get_state)
    await client.connect()
    await sub.subscribe()
    try:
        await until(lambda: len(rec.got) == 3 and rec.subscribed, "recovered from scratch")
        assert rec.got == [0, 1, 2] and rec.subscribed == [(True, True)]
    finally:
        await client.disconnect()
