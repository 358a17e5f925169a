mod common;

use std::io::Write;

use common::*;

#[test]
fn echo_returns_text_as_text_and_binary_as_binary() {
    let server = Server::start("echo", &["--shards", "1"]);
    let (mut s, _) = ws_connect(server.addr, "/anything");
    s.write_all(&client_frame(true, 1, b"hello")).unwrap();
    assert_eq!(read_frame(&mut s).unwrap(), (true, 1, b"hello".to_vec()));
    let big = vec![7u8; 100_000];
    s.write_all(&client_frame(true, 2, &big)).unwrap();
    assert_eq!(read_frame(&mut s).unwrap(), (true, 2, big));
    s.write_all(&client_frame(true, 8, &1000u16.to_be_bytes()))
        .unwrap();
    assert_eq!(expect_close(&mut s), 1000);
}
