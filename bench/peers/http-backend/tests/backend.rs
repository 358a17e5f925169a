//! The backend over a real socket: pipelined keep-alive requests answered
//! in order, a chunked body echoed, `Connection: close` honoured.

use std::sync::Arc;

use ringcast_peer_http_backend::{serve, Stats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn start() -> (std::net::SocketAddr, Arc<Stats>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    tokio::spawn(serve(listener, stats.clone()));
    (addr, stats)
}

#[tokio::test]
async fn pipelined_requests_in_order() {
    let (addr, stats) = start().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let reqs = concat!(
        "GET /ws/c7 HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /ws/c7 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "POST /connect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        "POST /ws/c7 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        "DELETE /ws/c7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\nEOF",
    );
    s.write_all(reqs.as_bytes()).await.unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).await.unwrap();
    let bodies: Vec<&str> = got
        .split("HTTP/1.1 200 OK\r\n")
        .skip(1)
        .map(|r| r.split_once("\r\n\r\n").unwrap().1)
        .collect();
    assert_eq!(
        bodies,
        ["ok", "hello", r#"{"result":{"user":"u0"}}"#, "hi", "ok"],
        "{got}"
    );
    assert!(got.contains("Connection: close\r\n"), "{got}");
    assert_eq!(
        stats.line(),
        "connections 1 get 1 delete 1 connect 1 post 2 other 0"
    );
}

#[tokio::test]
async fn other_methods_and_garbage() {
    let (addr, _) = start().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"PUT /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n\x01bad\r\n\r\n")
        .await
        .unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).await.unwrap();
    assert!(got.starts_with("HTTP/1.1 405 "), "{got}");
    assert!(got.contains("HTTP/1.1 400 "), "{got}");
}
