//! End-to-end tests: a real server on an ephemeral port, tokio-tungstenite clients.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ringcast_peer_tokio_ws::{serve, Config};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

async fn start(config: Config) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, config));
    format!("ws://{addr}")
}

async fn open(url: &str) -> Client {
    connect_async(url).await.unwrap().0
}

async fn send(ws: &mut Client, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// Next text frame, skipping control frames.
async fn next_text(ws: &mut Client) -> String {
    loop {
        let msg = timeout(WAIT, ws.next())
            .await
            .expect("timed out")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = msg {
            return text.to_string();
        }
    }
}

/// Next text frame, split into its `\n`-separated JSON values.
async fn next_values(ws: &mut Client) -> Vec<Value> {
    let text = next_text(ws).await;
    text.split('\n')
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Opens /connection/websocket and completes `connect`.
async fn connected(base: &str) -> Client {
    let mut ws = open(&format!("{base}/connection/websocket")).await;
    send(&mut ws, r#"{"id":1,"connect":{"name":"test"}}"#).await;
    let reply = next_values(&mut ws).await;
    assert_eq!(reply[0]["id"], 1);
    ws
}

#[tokio::test]
async fn echo_returns_text_as_text_and_binary_as_binary() {
    let base = start(Config::default()).await;
    for path in ["/echo", "/anything/else"] {
        let mut ws = open(&format!("{base}{path}")).await;
        ws.send(Message::text("hello")).await.unwrap();
        ws.send(Message::binary(vec![0u8, 1, 2, 255]))
            .await
            .unwrap();
        let first = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(first, Message::text("hello"));
        let second = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(second, Message::binary(vec![0u8, 1, 2, 255]));
        ws.close(None).await.unwrap();
    }
}

#[tokio::test]
async fn two_subscribers_get_all_publications_in_order() {
    let base = start(Config::default()).await;
    let mut subscribers = Vec::new();
    for _ in 0..2 {
        let mut ws = connected(&base).await;
        send(&mut ws, r#"{"id":2,"subscribe":{"channel":"news"}}"#).await;
        assert_eq!(
            next_values(&mut ws).await,
            vec![json!({"id":2,"subscribe":{}})]
        );
        subscribers.push(ws);
    }

    let mut publisher = connected(&base).await;
    for i in 1..=100u32 {
        let cmd =
            json!({"id": i + 1, "publish": {"channel": "news", "data": {"n": i, "s": "x\ny"}}});
        send(&mut publisher, &cmd.to_string()).await;
    }
    let mut acks = Vec::new();
    while acks.len() < 100 {
        acks.extend(next_values(&mut publisher).await);
    }
    for (i, ack) in acks.iter().enumerate() {
        assert_eq!(*ack, json!({"id": i + 2, "publish": {}}));
    }

    for ws in &mut subscribers {
        let mut pushes = Vec::new();
        while pushes.len() < 100 {
            pushes.extend(next_values(ws).await);
        }
        for (i, push) in pushes.iter().enumerate() {
            let n = i as u64 + 1;
            let want = json!({"push": {"channel": "news", "pub": {"data": {"n": n, "s": "x\ny"}, "offset": n}}});
            assert_eq!(*push, want);
        }
    }
}

#[tokio::test]
async fn protocol_replies() {
    let base = start(Config::default()).await;
    let mut ws = open(&format!("{base}/connection/websocket")).await;
    send(&mut ws, r#"{"id":1,"connect":{}}"#).await;
    let connect = &next_values(&mut ws).await[0];
    assert_eq!(connect["id"], 1);
    assert_eq!(connect["connect"]["version"], "peer");
    assert_eq!(connect["connect"]["ping"], 25);
    assert_eq!(connect["connect"]["pong"], true);
    assert_eq!(connect["connect"]["client"].as_str().unwrap().len(), 36);

    // Several commands in one frame: replies come back batched, in order; `{}` is a pong.
    let frame = [
        r#"{"id":2,"subscribe":{"channel":"a"}}"#,
        "{}",
        r#"{"id":3,"subscribe":{"channel":"a"}}"#,
        r#"{"id":4,"rpc":{"method":"x"}}"#,
        r#"{"id":5,"publish":{"channel":"a","data":[1,"two",null]}}"#,
    ]
    .join("\n");
    send(&mut ws, &frame).await;
    let mut values = Vec::new();
    while values.len() < 5 {
        values.extend(next_values(&mut ws).await);
    }
    // The push for id 5 is queued while the frame is processed, ahead of the batch.
    assert_eq!(
        values,
        vec![
            json!({"push": {"channel": "a", "pub": {"data": [1, "two", null], "offset": 1}}}),
            json!({"id": 2, "subscribe": {}}),
            json!({"id": 3, "error": {"code": 105, "message": "already subscribed"}}),
            json!({"id": 4, "error": {"code": 107, "message": "bad request"}}),
            json!({"id": 5, "publish": {}}),
        ]
    );

    // After unsubscribing, publications to the channel no longer arrive.
    send(&mut ws, r#"{"id":6,"unsubscribe":{"channel":"a"}}"#).await;
    assert_eq!(
        next_values(&mut ws).await,
        vec![json!({"id":6,"unsubscribe":{}})]
    );
    send(&mut ws, r#"{"id":7,"publish":{"channel":"a","data":1}}"#).await;
    assert_eq!(
        next_values(&mut ws).await,
        vec![json!({"id":7,"publish":{}})]
    );

    // Malformed JSON closes the connection with Centrifugo's "bad request" code.
    send(&mut ws, "not json").await;
    loop {
        match timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 3501);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn server_sends_pings() {
    let base = start(Config {
        ping_interval: Duration::from_millis(100),
    })
    .await;
    let mut ws = connected(&base).await;
    assert_eq!(next_text(&mut ws).await, "{}");
    assert_eq!(next_text(&mut ws).await, "{}");
}

#[tokio::test]
async fn binary_serves_and_exits_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_peer-tokio-ws"))
        .args(["--port", "0", "--threads", "2", "--ping-interval", "0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_owned();
    assert!(port.parse::<u16>().is_ok(), "no port in {line:?}");

    let mut ws = open(&format!("ws://127.0.0.1:{port}/echo")).await;
    ws.send(Message::text("ping?")).await.unwrap();
    let back = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(back, Message::text("ping?"));

    // Shut down with a connection still open.
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not exit on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
