//! WebSocket upgrades leave actix-http's dispatcher once answered (src/http/upgrades.rs): what a
//! client sees at that seam, over a raw socket. A refusal is answered whole and the connection
//! closed; bytes a client sends together with its upgrade request are not lost.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::common::TestServer;

const UPGRADE: &str = "GET /?v=9&encoding=json HTTP/1.1\r\nHost: localhost\r\n\
    Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";

/// A client's text frame (clients mask theirs; the mask here is fixed).
fn client_text(text: &str) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | u8::try_from(text.len()).unwrap()];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

/// Reads until the connection closes or stays quiet for `quiet`.
fn read_all(stream: &mut TcpStream, quiet: Duration) -> (Vec<u8>, bool) {
    stream.set_read_timeout(Some(quiet)).unwrap();
    let (mut bytes, mut chunk) = (Vec::new(), [0u8; 4096]);
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (bytes, true),
            Ok(read) => bytes.extend_from_slice(&chunk[..read]),
            Err(_) => return (bytes, false),
        }
    }
}

/// The payloads of the unmasked text frames a server sent, in order.
fn server_texts(mut bytes: &[u8]) -> Vec<Value> {
    let mut texts = Vec::new();
    while bytes.len() >= 2 {
        let (length, head) = match bytes[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => panic!("no frame here is that long"),
            length => (usize::from(length), 2),
        };
        if bytes[0] & 0x0f == 1 {
            texts.push(serde_json::from_slice(&bytes[head..head + length]).unwrap());
        }
        bytes = &bytes[head + length..];
    }
    texts
}

#[actix_web::test]
async fn a_refused_upgrade_is_answered_whole_and_the_connection_closed() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let (answer, closed) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        // No Sec-WebSocket-Key: the handshake is refused.
        stream
            .write_all(format!("{UPGRADE}\r\n").as_bytes())
            .unwrap();
        read_all(&mut stream, Duration::from_secs(10))
    })
    .await
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(closed, "the connection stayed open after the refusal");
}

#[actix_web::test]
async fn a_frame_sent_with_the_upgrade_request_is_read() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        // The request and a heartbeat in one write: the heartbeat reaches the server in the
        // same read as the request head, before the upgrade is answered.
        let mut sent =
            format!("{UPGRADE}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").into_bytes();
        sent.extend(client_text(r#"{"op":1,"d":null}"#));
        stream.write_all(&sent).unwrap();
        read_all(&mut stream, Duration::from_secs(3)).0
    })
    .await
    .unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&answer[..split]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let ops: Vec<_> = server_texts(&answer[split..])
        .iter()
        .map(|payload| payload["op"].clone())
        .collect();
    // HELLO, then the ACK of the heartbeat that came with the request.
    assert_eq!(ops, [10, 11]);
}
