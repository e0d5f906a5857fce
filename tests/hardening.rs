//! Frames in the same packet as a `101` head of any legal form, split at any offset, arrive;
//! the read pause handshake holds at queue capacity 1.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use nwebsocket::Event;

/// A server whose `101` status line is `status_line` and whose head and first frame go out
/// in two writes split at `split`, followed by a clean close.
fn head_then_frame(status_line: &'static str, split: usize) -> String {
    let port = tcp_server(move |mut stream: TcpStream| {
        stream.set_nodelay(true).unwrap();
        let Some(request) = read_request(&mut stream) else {
            return;
        };
        let accept = accept_key(&request).unwrap();
        let mut bytes = format!(
            "{status_line}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        bytes.extend(frame(true, 1, b"first"));
        bytes.extend(frame(true, 8, &1000u16.to_be_bytes()));
        let split = split.min(bytes.len());
        let _ = stream.write_all(&bytes[..split]);
        let _ = stream.flush();
        let _ = stream.write_all(&bytes[split..]);
        // The client's close reply; then the server closes TCP first, as RFC 6455 asks.
        let _ = stream.read(&mut [0u8; 64]);
    });
    format!("ws://127.0.0.1:{port}/")
}

#[test]
fn frames_behind_a_101_head_of_any_legal_form_arrive() {
    let forms = [
        "HTTP/1.1 101 Switching Protocols",
        "HTTP/1.1 101",
        "HTTP/1.1 101 ",
        "HTTP/1.1 101 OK",
        "HTTP/1.1 101 Switching  Protocols, with more words",
    ];
    for status_line in forms {
        let head_len = status_line.len() + 2 + 90;
        for split in (0..head_len + 12).step_by(1) {
            let ws = common::connect(&head_then_frame(status_line, split)).unwrap();
            let events = until_close(&ws);
            let close = check_contract(&events);
            assert!(
                matches!(events.first(), Some(Event::Open(_))),
                "{status_line:?} split at {split}: {events:?}"
            );
            let texts: Vec<_> = messages(&events)
                .iter()
                .map(|m| m.as_text().map(str::to_owned))
                .collect();
            assert_eq!(
                texts,
                [Some("first".to_owned())],
                "{status_line:?} split at {split}"
            );
            assert_eq!((close.code, close.was_clean), (1000, true));
        }
    }
}

/// At capacity 1 every message pauses reading and every take lifts the pause: the handshake
/// between the two runs once per message. A missed wake-up would stall the stream for good.
#[test]
fn the_read_pause_handshake_holds_at_capacity_one() {
    const COUNT: u32 = 20_000;
    let url = raw_ws_server(|mut stream: TcpStream| {
        let mut bytes = Vec::new();
        for i in 0..COUNT {
            bytes.extend(frame(true, 2, &i.to_be_bytes()));
        }
        bytes.extend(frame(true, 8, &1000u16.to_be_bytes()));
        let _ = stream.write_all(&bytes);
        let _ = stream.read(&mut [0u8; 64]);
    });
    for round in 0..3 {
        let config = nwebsocket::Config::builder()
            .event_queue_capacity(1)
            .build()
            .unwrap();
        let ws = common::connect_with_config(&url, config).unwrap();
        let events = until_close(&ws);
        assert_eq!(check_contract(&events).code, 1000);
        let received: Vec<u32> = messages(&events)
            .iter()
            .map(|m| u32::from_be_bytes(m.as_bytes().try_into().unwrap()))
            .collect();
        assert_eq!(received, (0..COUNT).collect::<Vec<_>>(), "round {round}");
    }
}
