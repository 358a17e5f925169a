"""The Centrifugo v5 server API, driven by the `cent` client library, reaching
real WebSocket clients."""
import json
import os
import re
import subprocess

import pytest
import requests
from cent import (BatchRequest, BroadcastRequest, ChannelsRequest, Client, DisconnectRequest,
                  InfoRequest, PresenceRequest, PresenceStatsRequest, PublishRequest)
from cent.dto import Disconnect
from cent.exceptions import CentApiResponseError, CentUnauthorizedError

from conftest import API_KEY, Server, WsClient, ringcast_bin, wait_until


def test_publish_reaches_subscribers_on_both_shards(server, ws):
    subs = [ws() for _ in range(8)]
    for s in subs:
        s.subscribe("news")
    cent = Client(server.api_url, API_KEY)
    last = 0
    for i in range(20):
        r = cent.publish(PublishRequest(channel="news", data={"n": i}))
        assert r.offset > last and r.epoch
        last = r.offset
    for s in subs:
        got = s.pushes(20)
        assert [p["pub"]["data"]["n"] for p in got] == list(range(20))
        offsets = [p["pub"]["offset"] for p in got]
        assert offsets == sorted(offsets) and len(set(offsets)) == 20


def test_broadcast_presence_and_batch(server, ws):
    a, b = ws(), ws()
    for ch in ("c1", "c2", "c3"):
        a.subscribe(ch)
    b.subscribe("c2")
    cent = Client(server.api_url, API_KEY)
    r = cent.broadcast(BroadcastRequest(channels=["c1", "c2", "c3"], data={"hello": "all"}))
    assert len(r.responses) == 3 and all(x.result.offset >= 1 for x in r.responses)
    assert sorted(p["channel"] for p in a.pushes(3)) == ["c1", "c2", "c3"]
    assert b.pushes(1)[0]["pub"]["data"] == {"hello": "all"}

    pres = cent.presence(PresenceRequest(channel="c2"))
    assert set(pres.presence) == {a.client_id, b.client_id}
    assert cent.presence_stats(PresenceStatsRequest(channel="c2")).num_clients == 2

    batch = cent.batch(BatchRequest(requests=[
        PublishRequest(channel="c1", data={"batch": 1}),
        PublishRequest(channel="c3", data={"batch": 2}),
        PresenceStatsRequest(channel="c1"),
    ]))
    assert batch.replies[0].offset >= 1 and batch.replies[2].num_clients == 1
    got = a.pushes(2)
    assert [p["pub"]["data"]["batch"] for p in got] == [1, 2]

    chans = cent.channels(ChannelsRequest(pattern="c*"))
    assert chans.channels["c2"].num_clients == 2
    info = cent.info(InfoRequest())
    assert info.nodes[0].num_clients == 2 and info.nodes[0].num_channels == 3


def test_disconnect_closes_the_client_with_its_code(server, ws):
    victim, bystander = ws(), ws()
    cent = Client(server.api_url, API_KEY)
    cent.disconnect(DisconnectRequest(user="", client=victim.client_id,
                                      disconnect=Disconnect(code=4001, reason="kicked")))
    assert victim.closed() == (4001, "kicked")
    assert "ping" in bystander.call("ping", {})


def test_wrong_or_missing_key_is_401_and_nothing_happens(server, ws):
    sub = ws()
    sub.subscribe("guarded")
    with pytest.raises(CentUnauthorizedError):
        Client(server.api_url, "wrong-key").publish(PublishRequest(channel="guarded", data={}))
    r = requests.post(server.api_url + "/publish", json={"channel": "guarded", "data": {}})
    assert r.status_code == 401
    r = requests.post(server.api_url + "/publish", json={"channel": "guarded", "data": {"ok": 1}},
                      headers={"Authorization": f"apikey {API_KEY}"})
    assert r.status_code == 200 and r.json()["result"]["offset"] == 1
    assert sub.pushes(1)[0]["pub"]["data"] == {"ok": 1}


def test_errors_in_body_and_in_transport_mode(server):
    h = {"X-API-Key": API_KEY}
    r = requests.post(server.api_url + "/publish", data="not json", headers=h)
    assert r.status_code == 200 and r.json()["error"]["code"] == 107
    r = requests.post(server.api_url + "/nonsense", json={}, headers=h)
    assert r.json()["error"] == {"code": 104, "message": "method not found"}
    r = requests.post(server.api_url + "/publish", data="not json",
                      headers={**h, "X-Centrifugo-Error-Mode": "transport"})
    assert r.status_code == 400 and r.json() == {"code": 107, "message": "bad request"}
    with pytest.raises(CentApiResponseError):
        Client(server.api_url, API_KEY).publish(PublishRequest(channel="", data={}))
    # The pre-v5 single endpoint.
    r = requests.post(server.api_url, json={"method": "publish", "params": {"channel": "x", "data": 1}},
                      headers=h)
    # Nobody subscribed, no history: no stream, so no offset (as Centrifugo).
    assert r.json() == {"result": {}}


def test_keepalive_and_pipelining(server, ws):
    import socket
    sub = ws()
    sub.subscribe("pipe")
    host, port = server.api_addr.rsplit(":", 1)
    body = json.dumps({"channel": "pipe", "data": {"v": 1}})
    req = (f"POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
           f"Content-Length: {len(body)}\r\n\r\n{body}")
    with socket.create_connection((host, int(port))) as s:
        s.sendall((req * 50).encode())
        data = b""
        s.settimeout(5)
        while data.count(b"HTTP/1.1 200") < 50:
            chunk = s.recv(65536)
            assert chunk, "connection closed early"
            data += chunk
    offsets = [json.loads(part.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0])["result"]["offset"]
               for part in data.split(b"HTTP/1.1 200 OK")[1:]]
    assert offsets == list(range(1, 51))
    assert [p["pub"]["offset"] for p in sub.pushes(50)] == list(range(1, 51))


def metric(server, name):
    text = requests.get(f"http://{server.api_addr}/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total, text


def test_metrics_move_as_clients_come_and_go_and_health(server, ws):
    base, text = metric(server, "ringcast_connections")
    assert "ringcast_shard_driver{shard=\"0\"" in text and "ringcast_fd_limit" in text
    clients = [ws() for _ in range(5)]
    for c in clients:
        c.subscribe("m")
    assert metric(server, "ringcast_connections")[0] == base + 5
    assert metric(server, "ringcast_subscriptions")[0] == 5
    Client(server.api_url, API_KEY).publish(PublishRequest(channel="m", data={}))
    for c in clients:
        c.pushes(1)
    assert metric(server, "ringcast_deliveries_total")[0] >= 5
    for c in clients[:3]:
        c.close()
    wait_until(lambda: metric(server, "ringcast_connections")[0] == base + 2,
               lambda: f"ringcast_connections back to {base + 2} (is {metric(server, 'ringcast_connections')[0]})")
    assert metric(server, "ringcast_connections_closed_total")[0] >= 3
    r = requests.get(f"http://{server.api_addr}/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_metrics_pass_promtool(server, ws):
    """/metrics is valid Prometheus text exposition, lint included
    (`promtool check metrics`, from Debian's prometheus package)."""
    c = ws()
    c.subscribe("lint")
    Client(server.api_url, API_KEY).publish(PublishRequest(channel="lint", data={}))
    c.pushes(1)
    text = requests.get(f"http://{server.api_addr}/metrics").text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


LATENCY = "ringcast_delivery_latency_seconds"


def delivery_latency(server):
    """The server's delivery-latency histogram: (buckets [(le, cumulative)],
    sum, count), from /metrics."""
    text = requests.get(f"http://{server.api_addr}/metrics").text
    buckets = [(float(le), int(n)) for le, n in
               re.findall(rf'^{LATENCY}_bucket{{le="([^"]+)"}} (\d+)$', text, re.M)]
    total = float(re.search(rf"^{LATENCY}_sum (\S+)$", text, re.M).group(1))
    count = int(re.search(rf"^{LATENCY}_count (\d+)$", text, re.M).group(1))
    return buckets, total, count


def test_delivery_latency_histogram_counts_each_delivery_once(server, ws):
    """Each publication delivered to a subscriber's socket adds exactly one
    observation (publication accepted by its owner -> frame handed to the
    kernel); replies, the publisher's acknowledgements and clients of other
    channels add none. Subscribers on both shards, owners on both."""
    subs = [ws() for _ in range(6)]
    for i, s in enumerate(subs):
        s.subscribe(f"timed-{i % 2}")
    other = ws()
    other.subscribe("untimed")
    publisher = ws()
    _, sum0, count0 = delivery_latency(server)
    cent = Client(server.api_url, API_KEY)
    for n in range(10):
        cent.publish(PublishRequest(channel="timed-0", data={"n": n}))
        # The client protocol's publish too (its reply is not a delivery).
        publisher.call("publish", {"channel": "timed-1", "data": {"n": n}})
    for s in subs:
        assert [p["pub"]["data"]["n"] for p in s.pushes(10)] == list(range(10))
    expected = count0 + 6 * 10

    def counted():
        h = delivery_latency(server)
        return h if h[2] >= expected else None

    buckets, total, count = wait_until(counted, f"{expected} deliveries counted (from {count0})")
    assert count == expected, (count0, count)
    # Every delivery took more than nothing and (on a test host) under a
    # second each.
    assert 0 < total - sum0 < 60 * 1.0, (sum0, total)
    les = [le for le, _ in buckets]
    assert les[0] == 0.00001 and les[-2] == 1.0 and les[-1] == float("inf")
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    assert buckets[-1][1] == count
    # Nothing more without publications (pings aside, which are replies).
    assert delivery_latency(server)[2] == expected


def test_delivery_latency_counts_sse_deliveries_too():
    """An SSE subscriber's deliveries leave through the same send path and
    are counted like a WebSocket subscriber's."""
    s = Server("--shards", "1", "--insecure", "--sse")
    try:
        body = b'{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"sse-timed"}}'
        r = requests.post(f"http://{s.ws_addr}/connection/sse", data=body, stream=True, timeout=10)
        assert r.status_code == 200
        lines = r.iter_lines()

        def next_event():
            for line in lines:
                if line.startswith(b"data: "):
                    return json.loads(line[6:])
            raise AssertionError("stream ended")

        assert next_event()["id"] == 1
        assert next_event()["id"] == 2
        _, _, count0 = delivery_latency(s)
        cent = Client(s.api_url, API_KEY)
        for n in range(3):
            cent.publish(PublishRequest(channel="sse-timed", data={"n": n}))
            assert next_event()["push"]["pub"]["data"] == {"n": n}
        wait_until(lambda: delivery_latency(s)[2] >= count0 + 3, f"{count0 + 3} deliveries counted")
        assert delivery_latency(s)[2] == count0 + 3
        r.close()
    finally:
        s.stop()


def test_api_on_the_client_port_with_the_key_only():
    """`--api-on-client-port`: the server API on the client port too, as in
    Centrifugo's default layout (apps call http://host:8000/api/publish); the
    key is required there, and nothing else of the internal port is served
    there."""
    s = Server("--shards", "2", "--insecure", "--api-on-client-port")
    try:
        sub = WsClient(s.ws_url)
        sub.subscribe("front")
        client_api = f"http://{s.ws_addr}/api"
        r = Client(client_api, API_KEY).publish(PublishRequest(channel="front", data={"n": 1}))
        assert r.offset == 1
        assert sub.pushes(1)[0]["pub"]["data"] == {"n": 1}
        # Several requests on one keep-alive connection, the legacy endpoint too.
        with requests.Session() as http:
            h = {"Authorization": f"apikey {API_KEY}"}
            for n in (2, 3):
                r = http.post(client_api + "/publish", json={"channel": "front", "data": {"n": n}}, headers=h)
                assert r.status_code == 200 and r.json()["result"]["offset"] == n, r.text
            r = http.post(client_api, json={"method": "publish", "params": {"channel": "front", "data": {"n": 4}}},
                          headers=h)
            assert r.status_code == 200, r.text
        assert [p["pub"]["data"]["n"] for p in sub.pushes(3)] == [2, 3, 4]
        # Without the key, or with a wrong one: 401, nothing published.
        with pytest.raises(CentUnauthorizedError):
            Client(client_api, "wrong").publish(PublishRequest(channel="front", data={"n": 5}))
        r = requests.post(client_api + "/publish", json={"channel": "front", "data": {"n": 6}})
        assert r.status_code == 401, r.text
        r = requests.post(s.api_url + "/publish", json={"channel": "front", "data": {"n": 7}},
                          headers={"X-API-Key": API_KEY})
        assert r.status_code == 200, r.text
        assert [p["pub"]["data"]["n"] for p in sub.pushes(1)] == [7]
        # Only POST /api...: a GET (of the API or /metrics) is refused as a
        # WebSocket handshake that is not one (426), a POST elsewhere 405, and
        # WebSocket clients are served as before.
        assert requests.get(f"http://{s.ws_addr}/metrics").status_code == 426
        assert requests.get(client_api + "/publish").status_code == 426
        assert requests.post(f"http://{s.ws_addr}/metrics").status_code == 405
        other = WsClient(s.ws_url)
        other.close()
    finally:
        s.stop()


def test_api_on_the_client_port_is_off_by_default_and_needs_a_key(server, tmp_path):
    r = requests.post(f"http://{server.ws_addr}/api/publish", json={"channel": "x", "data": {}},
                      headers={"X-API-Key": API_KEY})
    assert r.status_code == 405, r.text
    conf = tmp_path / "ringcast.toml"
    conf.write_text("[api]\non_client_port = true\n")
    r = subprocess.run([ringcast_bin(), "config", "check", str(conf)], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if not k.startswith("RINGCAST_")})
    assert r.returncode != 0 and "api.on_client_port" in r.stderr, r.stderr


def test_publication_tags_reach_subscribers_and_history(tmp_path):
    """`tags` of publish and broadcast travel with the publication: in the
    push, in history and in a delta subscriber's pushes; a tag that is not
    a string is a bad request."""
    conf = tmp_path / "ringcast.toml"
    conf.write_text("[channel]\nhistory_size = 10\nhistory_ttl = 60\n"
                    "allowed_delta_types = [\"fossil\"]\ndelta_publish = true\n")
    server = Server("--shards", "2", "--insecure", "--config", str(conf))
    plain = delta = None
    try:
        plain = WsClient(server.ws_url)
        plain.subscribe("tagged")
        delta = WsClient(server.ws_url)
        assert delta.call("subscribe", {"channel": "tagged", "delta": "fossil"})["subscribe"]["delta"]
        cent = Client(server.api_url, API_KEY)
        cent.publish(PublishRequest(channel="tagged", data={"n": 1}, tags={"kind": "goal", "team": "a"}))
        cent.broadcast(BroadcastRequest(channels=["tagged"], data={"n": 2}, tags={"kind": "card"}))
        cent.publish(PublishRequest(channel="tagged", data={"n": 3}))
        got = [p["pub"] for p in plain.pushes(3)]
        assert [(p["data"]["n"], p.get("tags")) for p in got] == [
            (1, {"kind": "goal", "team": "a"}), (2, {"kind": "card"}), (3, None)]
        assert [p.get("tags") for p in (x["pub"] for x in delta.pushes(3))] == [
            {"kind": "goal", "team": "a"}, {"kind": "card"}, None]
        hist = requests.post(server.api_url + "/history", json={"channel": "tagged", "limit": -1},
                             headers={"X-API-Key": API_KEY}).json()["result"]["publications"]
        assert [p.get("tags") for p in hist] == [{"kind": "goal", "team": "a"}, {"kind": "card"}, None]
        r = requests.post(server.api_url + "/publish",
                          json={"channel": "tagged", "data": {}, "tags": {"n": 1}},
                          headers={"X-API-Key": API_KEY})
        assert r.json()["error"]["code"] == 107
    finally:
        for c in (plain, delta):
            if c:
                c.close()
        server.stop()
