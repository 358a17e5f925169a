"""Tags filters with centrifuge-python (`tags_filter=Filter...`) and
publications tagged through `cent`: each subscriber gets exactly the
publications its filter passes, live and in a recovery; the protobuf
client too."""
import pytest
from cent import Client as Cent, PublishRequest
from centrifuge import Client, Filter, SubscriptionEventHandler

from conftest import API_KEY, run_with_config, until

CONFIG = """
[client]
insecure = true
[namespace.match]
history_size = 100
history_ttl = 300
force_recovery = true
allow_tags_filter = true
"""

EVENTS = [{"kind": "goal", "minute": "12"}, {"kind": "card", "minute": "30"},
          {"kind": "corner", "minute": "88"}, {"kind": "goal", "minute": "85"}, {}]


class Recorder(SubscriptionEventHandler):
    def __init__(self):
        self.got, self.subscribed = [], []

    async def on_publication(self, ctx):
        data = ctx.pub.data
        self.got.append((data if isinstance(data, dict) else __import__("json").loads(data))["n"])

    async def on_subscribed(self, ctx):
        self.subscribed.append(ctx.recovered)


@pytest.mark.parametrize("protobuf", [False, True], ids=["json", "protobuf"])
def test_filters_live_and_in_recovery(tmp_path, protobuf):
    async def scenario(server):
        channel = "match:py-" + ("pb" if protobuf else "json")
        cent = Cent(server.api_url, API_KEY)

        def publish_all(base):
            for n, tags in enumerate(EVENTS):
                cent.publish(PublishRequest(channel=channel, data={"n": base + n}, tags=tags or None))

        goal_or_late = Filter.any(Filter.eq("kind", "goal"), Filter.gt("minute", "80"))
        want = [n for n, t in enumerate(EVENTS) if t.get("kind") == "goal" or int(t.get("minute", "0")) > 80]
        client = Client(server.ws_url, use_protobuf=protobuf)
        rec = Recorder()
        sub = client.new_subscription(channel, events=rec, tags_filter=goal_or_late,
                                      min_resubscribe_delay=0.05, max_resubscribe_delay=0.2)
        await client.connect()
        await sub.subscribe()
        try:
            await until(lambda: rec.subscribed, "subscribed")
            publish_all(0)
            await until(lambda: len(rec.got) == len(want), "live, filtered")
            await client.disconnect()
            publish_all(100)
            await client.connect()
            await until(lambda: len(rec.subscribed) == 2 and len(rec.got) == 2 * len(want), "recovered, filtered")
            assert rec.subscribed[1] is True
            assert rec.got == want + [100 + n for n in want]
        finally:
            await client.disconnect()

    run_with_config(tmp_path, CONFIG, scenario)
