//! The close handshake from both sides, close validation, sends after close, ready-state
//! transitions, and what dropping the handle does.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::net::TcpStream;

use common::*;
use nwebsocket::{Error, Event, ReadyState, TimeoutKind};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

/// A server that reports every message and the close frame it gets, answers the close, and
/// reports the end of the connection (the client closed TCP) as a `Frame` message.
fn recording_server() -> (String, flume::Receiver<tungstenite::Message>) {
    let (tx, rx) = flume::unbounded();
    let url = ws_server(move |mut ws| {
        while let Ok(msg) = ws.read() {
            let _ = tx.send(msg);
        }
        let end = tungstenite::protocol::frame::Frame::pong(Vec::new());
        let _ = tx.send(tungstenite::Message::Frame(end));
    });
    (url, rx)
}

fn next_close_frame(rx: &flume::Receiver<tungstenite::Message>) -> Option<CloseFrame> {
    loop {
        match rx.recv_timeout(WAIT).expect("server saw no close frame") {
            tungstenite::Message::Close(frame) => return frame,
            tungstenite::Message::Frame(_) => panic!("connection ended without a close frame"),
            _ => continue,
        }
    }
}

#[test]
fn client_close_with_code_and_reason() {
    let (url, rx) = recording_server();
    let ws = common::connect(&url).unwrap();
    expect_open(&ws);
    ws.close_with(4001, "bye now").unwrap();
    assert_eq!(ws.ready_state(), ReadyState::Closing);
    let frame = next_close_frame(&rx).unwrap();
    assert_eq!(u16::from(frame.code), 4001);
    assert_eq!(frame.reason.as_str(), "bye now");
    let close = check_contract(&until_close(&ws));
    assert_eq!(
        (close.code, close.reason.as_str(), close.was_clean),
        (4001, "bye now", true)
    );
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    assert!(ws.wait_closed(WAIT));
}

#[test]
fn server_close_with_code_and_reason() {
    let url = ws_server(|mut ws| {
        ws.close(Some(CloseFrame {
            code: CloseCode::from(4321),
            reason: "server says bye".into(),
        }))
        .unwrap();
        // Drive the handshake until the client's reply arrives.
        while ws.read().is_ok() {}
    });
    let ws = common::connect(&url).unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!(
        (close.code, close.reason.as_str(), close.was_clean),
        (4321, "server says bye", true)
    );
}

#[test]
fn server_close_without_code_reports_1005() {
    let url = ws_server(|mut ws| {
        ws.close(None).unwrap();
        while ws.read().is_ok() {}
    });
    let ws = common::connect(&url).unwrap();
    let close = check_contract(&until_close(&ws));
    assert_eq!((close.code, close.was_clean), (1005, true));
}

#[test]
fn invalid_close_arguments_are_refused_and_nothing_is_sent() {
    let (url, rx) = recording_server();
    let ws = common::connect(&url).unwrap();
    expect_open(&ws);
    for code in [0, 999, 1001, 1005, 1006, 1015, 2999, 5000] {
        assert!(matches!(ws.close_with(code, ""), Err(Error::InvalidCloseCode(c)) if c == code));
    }
    let long = "x".repeat(124);
    assert!(matches!(
        ws.close_with(1000, &long),
        Err(Error::CloseReasonTooLong(124))
    ));
    // 123 bytes of multi-byte UTF-8 is fine; 124 is not.
    assert!(matches!(
        ws.close_with(1000, &"é".repeat(62)),
        Err(Error::CloseReasonTooLong(124))
    ));
    assert_eq!(ws.ready_state(), ReadyState::Open);
    // The connection is untouched: a message still goes through, and no close frame went out.
    ws.send_text("still open").unwrap();
    match rx.recv_timeout(WAIT).unwrap() {
        tungstenite::Message::Text(t) => assert_eq!(t.as_str(), "still open"),
        other => panic!("server got {other:?}"),
    }
    ws.close_with(1000, &"é".repeat(61)).unwrap();
    assert!(check_contract(&until_close(&ws)).was_clean);
}

#[test]
fn close_twice_is_harmless_and_sends_after_close_fail() {
    let ws = common::connect(&echo_server()).unwrap();
    expect_open(&ws);
    ws.close().unwrap();
    ws.close().unwrap();
    ws.close_with(3000, "again").unwrap();
    assert!(matches!(ws.send_text("late"), Err(Error::Closed)));
    assert!(matches!(ws.ping(vec![1]), Err(Error::Closed)));
    let sender = ws.sender();
    assert!(matches!(sender.send_binary(vec![1u8]), Err(Error::Closed)));
    let close = check_contract(&until_close(&ws));
    assert_eq!(close.code, 1000);
    assert!(matches!(ws.send_text("after end"), Err(Error::Closed)));
}

#[test]
fn sends_queued_before_close_are_written_before_the_close_frame() {
    let (url, rx) = recording_server();
    let ws = common::connect(&url).unwrap();
    for i in 0..500 {
        ws.send_text(i.to_string()).unwrap();
    }
    expect_open(&ws);
    for i in 500..1000 {
        ws.send_text(i.to_string()).unwrap();
    }
    ws.close().unwrap();
    for i in 0..1000 {
        match rx.recv_timeout(WAIT).unwrap() {
            tungstenite::Message::Text(t) => assert_eq!(t.as_str(), i.to_string()),
            other => panic!("message {i}: server got {other:?}"),
        }
    }
    assert!(next_close_frame(&rx).is_some());
    assert!(check_contract(&until_close(&ws)).was_clean);
}

#[test]
fn ready_state_follows_the_events_taken() {
    let ws = common::connect(&echo_server()).unwrap();
    assert_eq!(ws.ready_state(), ReadyState::Connecting);
    expect_open(&ws);
    assert_eq!(ws.ready_state(), ReadyState::Open);
    ws.close().unwrap();
    assert_eq!(ws.ready_state(), ReadyState::Closing);
    until_close(&ws);
    assert_eq!(ws.ready_state(), ReadyState::Closed);
}

#[test]
fn dropping_the_client_sends_going_away_and_closes_the_socket() {
    let (url, rx) = recording_server();
    let ws = common::connect(&url).unwrap();
    expect_open(&ws);
    ws.send_text("last words").unwrap();
    drop(ws);
    match rx.recv_timeout(WAIT).unwrap() {
        tungstenite::Message::Text(t) => assert_eq!(t.as_str(), "last words"),
        other => panic!("server got {other:?}"),
    }
    let frame = next_close_frame(&rx).unwrap();
    assert_eq!(frame.code, CloseCode::Away);
    // The server's read loop ends only once the client has closed TCP.
    assert!(matches!(
        rx.recv_timeout(WAIT).unwrap(),
        tungstenite::Message::Frame(_)
    ));
}

#[test]
fn dropping_the_events_iterator_does_not_close() {
    let ws = common::connect(&echo_server()).unwrap();
    {
        let mut events = ws.events();
        assert!(matches!(events.next(), Some(Event::Open(_))));
    }
    ws.send_text("still here").unwrap();
    assert!(matches!(next(&ws), Event::Message(m) if m.as_text() == Some("still here")));
    assert_eq!(ws.ready_state(), ReadyState::Open);
}

#[test]
fn a_send_handle_keeps_the_connection_after_the_client_is_dropped() {
    let (url, rx) = recording_server();
    let ws = common::connect(&url).unwrap();
    expect_open(&ws);
    let sender = ws.sender();
    drop(ws);
    sender.send_text("from the handle").unwrap();
    match rx.recv_timeout(WAIT).unwrap() {
        tungstenite::Message::Text(t) => assert_eq!(t.as_str(), "from the handle"),
        other => panic!("server got {other:?}"),
    }
    drop(sender);
    assert_eq!(next_close_frame(&rx).unwrap().code, CloseCode::Away);
}

#[test]
fn server_dropping_tcp_without_close_frame_is_an_error_then_1006() {
    let url = raw_ws_server(|stream: TcpStream| drop(stream));
    let ws = common::connect(&url).unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false));
    match error_of(&events) {
        Some(Error::Io(err)) => assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
    assert!(ws.wait_closed(WAIT));
}

#[test]
fn close_timeout_when_the_server_never_answers() {
    let url = raw_ws_server(|stream: TcpStream| {
        // Read and ignore everything, never answer the close.
        let mut stream = stream;
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    });
    let config = nwebsocket::Config::builder()
        .close_timeout(std::time::Duration::from_millis(200))
        .build()
        .unwrap();
    let ws = common::connect_with_config(&url, config).unwrap();
    expect_open(&ws);
    ws.close().unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false));
    assert!(matches!(
        error_of(&events),
        Some(Error::Timeout {
            kind: TimeoutKind::Close,
            ..
        })
    ));
}
