"""Fossil delta compression with centrifuge-python (`delta=DeltaType.FOSSIL`),
JSON and protobuf: the SDK decodes every publication, live and across a
recovery, and really applies deltas to do it; a raw client's delta pushes
apply with the SDK's own fossil decoder (an independent implementation of
the format)."""
import asyncio
import json

import pytest
import requests
from centrifuge import Client, DeltaType, SubscriptionEventHandler, codecs
from centrifuge.fossil import apply_delta

from conftest import API_KEY, api_disconnect as disconnect, WsClient, run_with_config, until

CONFIG = """
[client]
insecure = true
[namespace.board]
history_size = 100
history_ttl = 300
force_recovery = true
allowed_delta_types = ["fossil"]
delta_publish = true
"""


def board(n):
    """About 1 KB of which each publication changes a few bytes (and text
    with multi-byte characters that deltas must not cut)."""
    return {"n": n, "clock": f"12:{n % 60:02d}",
            "players": [{"name": f"plåyer ☃ {i}", "pts": i * 10 + (n if i == n % 20 else 0)}
                        for i in range(20)]}


def publish(server, channel, n):
    r = requests.post(server.api_url + "/publish", json={"channel": channel, "data": board(n)},
                      headers={"X-API-Key": API_KEY})
    assert r.status_code == 200 and "result" in r.json(), r.text




class Recorder(SubscriptionEventHandler):
    def __init__(self, protobuf):
        self.protobuf = protobuf
        self.got, self.subscribed = [], []

    async def on_publication(self, ctx):
        data = ctx.pub.data
        self.got.append(json.loads(data) if self.protobuf else data)

    async def on_subscribed(self, ctx):
        self.subscribed.append((ctx.was_recovering, ctx.recovered))


@pytest.mark.parametrize("protobuf", [False, True], ids=["json", "protobuf"])
def test_sdk_decodes_deltas_live_and_across_recovery(tmp_path, monkeypatch, protobuf):
    applied = []

    def counting(source, delta):
        applied.append(len(delta))
        return apply_delta(source, delta)

    monkeypatch.setattr(codecs, "apply_delta", counting)

    async def scenario(server):
        channel = "board:py-" + ("pb" if protobuf else "json")
        client = Client(server.ws_url, use_protobuf=protobuf)
        rec = Recorder(protobuf)
        sub = client.new_subscription(channel, events=rec, delta=DeltaType.FOSSIL,
                                      min_resubscribe_delay=0.05, max_resubscribe_delay=0.2)
        await client.connect()
        await sub.subscribe()
        try:
            await until(lambda: len(rec.subscribed) == 1, "subscribed")
            for n in range(10):
                publish(server, channel, n)
            await until(lambda: len(rec.got) == 10, "live publications")
            assert len(applied) == 9, "every publication after the first is a delta"

            disconnect(server, client.client_id)
            for n in range(10, 15):
                publish(server, channel, n)
            await until(lambda: len(rec.subscribed) == 2 and len(rec.got) == 15, "recovery")
            assert rec.subscribed[1] == (True, True)
            for n in range(15, 18):
                publish(server, channel, n)
            await until(lambda: len(rec.got) == 18, "live after recovery")
            assert rec.got == [board(n) for n in range(18)]
            # The recovered run starts in full, then deltas; live ones after it too.
            assert len(applied) == 9 + 4 + 3, applied
            assert max(applied) < len(json.dumps(board(0))) / 4, applied
        finally:
            await client.disconnect()

    run_with_config(tmp_path, CONFIG, scenario)


def test_raw_delta_pushes_apply_with_the_sdk_decoder(tmp_path):
    async def scenario(server):
        c = WsClient(server.ws_url)
        try:
            reply = c.call("subscribe", {"channel": "board:raw", "delta": "fossil"})
            assert reply["subscribe"].get("delta") is True, reply
            for n in range(6):
                await asyncio.to_thread(publish, server, "board:raw", n)
            pubs = [p["pub"] for p in c.pushes(6)]
            assert [p["delta"] for p in pubs] == [False] + [True] * 5
            base = b""
            for n, p in enumerate(pubs):
                text = p["data"].encode()
                base = apply_delta(base, text) if p["delta"] else text
                assert json.loads(base) == board(n)
                assert p["offset"] == n + 1
        finally:
            c.close()

    run_with_config(tmp_path, CONFIG, scenario)
