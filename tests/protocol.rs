//! What the client does with the server's control frames and protocol violations: the
//! auto-pong echoes the ping's payload, and each violation fails the connection with the
//! matching close code, an `Error`, then `Close { code: 1006 }`.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::*;
use nwebsocket::{Config, Error, Event};

/// Reads one masked client frame: (fin+rsv1+opcode byte, unmasked payload).
fn read_client_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let frame = common::deflate::read_frame(stream)?;
    let head = (u8::from(frame.fin) << 7) | (u8::from(frame.rsv1) << 6) | frame.opcode;
    Some((head, frame.payload))
}

/// A raw server that sends `bytes` after the handshake and reports every frame the client
/// sends back, until the client closes TCP.
fn misbehaving(bytes: Vec<u8>) -> (String, flume::Receiver<(u8, Vec<u8>)>) {
    let (tx, rx) = flume::unbounded();
    let url = raw_ws_server(move |mut stream: TcpStream| {
        stream.write_all(&bytes).unwrap();
        // Until the client's close frame, then close TCP as a server should.
        while let Some(frame) = read_client_frame(&mut stream) {
            let is_close = frame.0 & 0x0f == 0x8;
            let _ = tx.send(frame);
            if is_close {
                break;
            }
        }
    });
    (url, rx)
}

/// The close code of the first close frame the client sent.
fn client_close_code(rx: &flume::Receiver<(u8, Vec<u8>)>) -> u16 {
    loop {
        let (head, payload) = rx.recv_timeout(WAIT).expect("client sent no close frame");
        if head & 0x0f == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

fn fails_with(bytes: Vec<u8>, config: Config, expected_code: u16) -> Vec<Event> {
    let (url, rx) = misbehaving(bytes);
    let ws = common::connect_with_config(&url, config).unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false), "{events:?}");
    assert_eq!(client_close_code(&rx), expected_code);
    assert!(ws.wait_closed(WAIT));
    events
}

#[test]
fn auto_pong_echoes_the_exact_payload_promptly() {
    let payload = b"\x00ping\xffpayload".to_vec();
    let (url, rx) = misbehaving(frame(true, 0x9, &payload));
    let ws = common::connect(&url).unwrap();
    let (head, got) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(head, 0x8a, "not a final pong");
    assert_eq!(got, payload);
    expect_open(&ws);
}

#[test]
fn invalid_utf8_text_fails_with_1007() {
    let events = fails_with(frame(true, 0x1, b"ok \xff\xfe"), Config::default(), 1007);
    assert!(matches!(error_of(&events), Some(Error::Protocol(_))));
}

#[test]
fn masked_server_frame_fails_with_1002() {
    let mut bytes = frame(true, 0x2, b"");
    bytes[1] |= 0x80;
    bytes.extend_from_slice(&[1, 2, 3, 4]);
    fails_with(bytes, Config::default(), 1002);
}

#[test]
fn oversized_message_fails_with_1009() {
    let config = Config::builder()
        .max_message_size(1024)
        .max_frame_size(1024)
        .build()
        .unwrap();
    let events = fails_with(frame(true, 0x2, &[0u8; 2000]), config, 1009);
    assert!(matches!(error_of(&events), Some(Error::Protocol(_))));
}

#[test]
fn oversized_fragmented_message_fails_with_1009() {
    let config = Config::builder()
        .max_message_size(1500)
        .max_frame_size(1024)
        .build()
        .unwrap();
    let mut bytes = frame(false, 0x2, &[0u8; 1000]);
    bytes.extend(frame(true, 0x0, &[0u8; 1000]));
    fails_with(bytes, config, 1009);
}

#[test]
fn messages_before_a_violation_are_delivered() {
    let mut bytes = frame(true, 0x1, b"first");
    bytes.extend(frame(true, 0x2, b"second"));
    bytes.extend(frame(true, 0x3, b"reserved opcode"));
    let events = fails_with(bytes, Config::default(), 1002);
    let messages = messages(&events);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].as_text(), Some("first"));
    assert_eq!(messages[1].as_bytes(), b"second");
}

#[test]
fn invalid_close_code_from_the_server_does_not_panic() {
    // 1005 must never be on the wire.
    let (url, rx) = misbehaving(frame(true, 0x8, &1005u16.to_be_bytes()));
    let ws = common::connect(&url).unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false));
    assert!(matches!(error_of(&events), Some(Error::Protocol(_))));
    // The client answers with a protocol error, never with 1005, 1006 or 1015.
    let code = client_close_code(&rx);
    assert_eq!(code, 1002);
}

#[test]
fn frames_in_the_same_packet_as_the_101_response_are_delivered() {
    let port = tcp_server(|mut stream: TcpStream| {
        let request = read_request(&mut stream).unwrap();
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .to_owned();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut bytes = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        bytes.extend(frame(true, 0x1, b"right behind the head"));
        bytes.extend(frame(true, 0x2, &[5u8; 10_000]));
        // One write: the client's first read gets the head and both frames.
        stream.write_all(&bytes).unwrap();
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    });
    let ws = common::connect(&format!("ws://127.0.0.1:{port}/")).unwrap();
    expect_open(&ws);
    let first = next(&ws);
    assert!(matches!(&first, Event::Message(m) if m.as_text() == Some("right behind the head")));
    assert!(matches!(next(&ws), Event::Message(m) if m.as_bytes() == [5u8; 10_000]));
}

/// A raw server that sends a close frame with `payload` (after `before`, if any) and then
/// reports the client's close frame and closes TCP.
fn closing_with(payload: Vec<u8>) -> (String, flume::Receiver<(u8, Vec<u8>)>) {
    misbehaving(frame(true, 0x8, &payload))
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

#[test]
fn a_server_closing_with_1002_and_any_reason_closes_cleanly() {
    // tungstenite replaces an invalid code with 1002 "Protocol violation"; a server that sends
    // exactly that must still be taken at its word.
    for reason in ["Protocol violation", "bad frame", ""] {
        let (url, rx) = closing_with(close_payload(1002, reason));
        let ws = common::connect(&url).unwrap();
        let events = until_close(&ws);
        let close = check_contract(&events);
        assert_eq!(
            (close.code, close.reason.as_str(), close.was_clean),
            (1002, reason, true),
            "{events:?}"
        );
        // The client echoes the server's code, as RFC 6455 §5.5.1 suggests.
        assert_eq!(client_close_code(&rx), 1002);
    }
}

#[test]
fn each_close_code_is_judged_as_the_server_sent_it() {
    for code in [1000, 1001, 1003, 1007, 1011, 1013, 3000, 4999] {
        let (url, _rx) = closing_with(close_payload(code, "why"));
        let ws = common::connect(&url).unwrap();
        let events = until_close(&ws);
        let close = check_contract(&events);
        assert_eq!((close.code, close.was_clean), (code, true), "{events:?}");
    }
    for code in [
        0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2999, 5000, 65535,
    ] {
        let (url, rx) = closing_with(close_payload(code, "why"));
        let ws = common::connect(&url).unwrap();
        let events = until_close(&ws);
        let close = check_contract(&events);
        assert_eq!(
            (close.code, close.was_clean),
            (1006, false),
            "{code}: {events:?}"
        );
        assert!(
            matches!(error_of(&events), Some(Error::Protocol(_))),
            "{code}"
        );
        assert_eq!(client_close_code(&rx), 1002, "{code}");
    }
}

#[test]
fn an_invalid_close_code_in_the_reply_to_our_close_fails_the_connection() {
    // The server waits for the client's close frame and answers it with 1005, which no
    // endpoint may send; tungstenite lets a reply through unchecked.
    let url = raw_ws_server(|mut stream: TcpStream| {
        while let Some((head, _)) = read_client_frame(&mut stream) {
            if head & 0x0f == 0x8 {
                let _ = stream.write_all(&frame(true, 0x8, &close_payload(1005, "")));
                break;
            }
        }
    });
    let ws = common::connect(&url).unwrap();
    expect_open(&ws);
    ws.close().unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false), "{events:?}");
    assert!(matches!(error_of(&events), Some(Error::Protocol(_))));
}

#[test]
fn an_invalid_utf8_prefix_fails_before_the_message_ends() {
    // The last fragment never comes: the client must not wait for it.
    let mut bytes = frame(false, 0x1, "héllo ".as_bytes());
    bytes.extend(frame(false, 0x0, b"w\xce"));
    bytes.extend(frame(false, 0x0, b"\xba fine, then \xff"));
    fails_with(bytes, Config::default(), 1007);
}

/// The header of an unmasked frame with a 16-bit length, whose payload may then come in part.
fn header_16(first_byte: u8, length: u16) -> Vec<u8> {
    let mut header = vec![first_byte, 126];
    header.extend_from_slice(&length.to_be_bytes());
    header
}

#[test]
fn invalid_utf8_fails_before_its_frame_is_whole() {
    // One text frame of 1000 bytes, of which only the first 16 ever come, with an invalid byte
    // after a character cut by nothing: the client must not wait for the other 984.
    let mut bytes = header_16(0x81, 1000);
    bytes.extend_from_slice(b"h\xc3\xa9llo w\xce\xba fine \xff");
    fails_with(bytes, Config::default(), 1007);
}

#[test]
fn invalid_utf8_fails_before_a_continuation_frame_is_whole() {
    // The first fragment ends inside a character; the continuation, whose rest never comes,
    // starts with a byte that cannot complete it.
    let mut bytes = frame(false, 0x1, b"ok \xe2\x82");
    bytes.extend(header_16(0x80, 1000));
    bytes.extend_from_slice(b"A and more");
    fails_with(bytes, Config::default(), 1007);
}

#[test]
fn valid_text_arriving_a_byte_at_a_time_is_delivered_whole() {
    let text = "h\u{e9}llo \u{3ba}\u{3cc}\u{3c3}\u{3bc}\u{3b5} \u{1f600}".repeat(40);
    let length = u16::try_from(text.len()).unwrap();
    let expected = text.clone();
    let url = raw_ws_server(move |mut stream: TcpStream| {
        // Each byte in a segment of its own (no Nagle delay), so that many reads see a
        // character cut short.
        stream.set_nodelay(true).unwrap();
        stream.write_all(&header_16(0x81, length)).unwrap();
        for byte in text.as_bytes() {
            stream.write_all(&[*byte]).unwrap();
        }
        // Answer the client's close frame.
        while let Some((head, payload)) = read_client_frame(&mut stream) {
            if head & 0x0f == 0x8 {
                stream.write_all(&frame(true, 0x8, &payload)).unwrap();
                break;
            }
        }
    });
    let ws = common::connect(&url).unwrap();
    expect_open(&ws);
    match next(&ws) {
        Event::Message(message) => assert_eq!(message.as_text(), Some(expected.as_str())),
        other => panic!("expected the text, got {other:?}"),
    }
    ws.close().unwrap();
    let close = check_contract(&until_close(&ws));
    assert!(close.was_clean, "{close:?}");
}

#[test]
fn a_frame_over_the_limit_fails_on_its_header() {
    // Only the header of a 10 MB frame comes: the limit is checked before its payload.
    let mut bytes = vec![0x82, 127];
    bytes.extend_from_slice(&(10u64 << 20).to_be_bytes());
    let config = Config::builder()
        .max_message_size(1 << 20)
        .max_frame_size(1 << 20)
        .build()
        .unwrap();
    fails_with(bytes, config, 1009);
}

#[test]
fn fragmentation_and_control_frame_rules_fail_with_1002() {
    let long_ping = frame(true, 0x9, &[0u8; 126]);
    let cases = [
        ("a continuation with no message", frame(true, 0x0, b"x")),
        (
            "a new message inside a fragmented one",
            [frame(false, 0x1, b"a"), frame(true, 0x1, b"b")].concat(),
        ),
        ("a fragmented ping", frame(false, 0x9, b"x")),
        ("a ping over 125 bytes", long_ping),
        ("a reserved opcode", frame(true, 0x3, b"")),
        ("a reserved control opcode", frame(true, 0xb, b"")),
        ("RSV2", {
            let mut f = frame(true, 0x1, b"x");
            f[0] |= 0x20;
            f
        }),
        ("RSV1 with nothing agreed", {
            let mut f = frame(true, 0x1, b"x");
            f[0] |= 0x40;
            f
        }),
        ("a one-byte close frame", frame(true, 0x8, &[3])),
    ];
    for (what, bytes) in cases {
        let (url, rx) = misbehaving(bytes);
        let ws = common::connect(&url).unwrap();
        let events = until_close(&ws);
        let close = check_contract(&events);
        assert!(!close.was_clean, "{what}: {events:?}");
        assert_eq!(client_close_code(&rx), 1002, "{what}");
    }
}

#[test]
fn a_close_reason_that_is_not_utf8_fails_with_1007() {
    fails_with(
        frame(true, 0x8, &close_payload_bytes(1000, b"bye \xff")),
        Config::default(),
        1007,
    );
}

fn close_payload_bytes(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

#[test]
fn pings_between_fragments_are_answered_and_the_message_is_whole() {
    let mut bytes = frame(false, 0x1, b"one ");
    bytes.extend(frame(true, 0x9, b"p1"));
    bytes.extend(frame(false, 0x0, b"two "));
    bytes.extend(frame(true, 0xA, b"unsolicited pong"));
    bytes.extend(frame(true, 0x9, b"p2"));
    bytes.extend(frame(true, 0x0, b"three"));
    let (url, rx) = misbehaving(bytes);
    let ws = common::connect(&url).unwrap();
    expect_open(&ws);
    match next(&ws) {
        Event::Message(message) => assert_eq!(message.as_text(), Some("one two three")),
        other => panic!("{other:?}"),
    }
    for want in [&b"p1"[..], b"p2"] {
        let (head, payload) = rx.recv_timeout(WAIT).unwrap();
        assert_eq!((head, &payload[..]), (0x8a, want));
    }
    ws.close().unwrap();
}
