//! Automatic reconnection: one event stream across connections, growing jittered delays,
//! `Retry-After`, the attempt limit, `close()` during the backoff, no reconnection after the
//! user's own close, sends queued while down (or refused), and the callback adapter.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::restartable::RestartableServer;
use common::*;
use nwebsocket::{
    Client, CloseEvent, Config, ConfigBuilder, Error, Event, OfflineSends, ReadyState,
};

fn reconnecting() -> ConfigBuilder {
    Config::builder()
        .reconnect(true)
        .reconnect_delays(Duration::from_millis(20), Duration::from_millis(160))
}

/// Takes events up to and including the next `Close`; checks that connection's contract.
fn one_connection(ws: &Client) -> (Vec<Event>, CloseEvent) {
    let mut events = Vec::new();
    loop {
        let event = next(ws);
        let done = matches!(event, Event::Close(_));
        events.push(event);
        if done {
            let close = check_contract(&events);
            return (events, close);
        }
    }
}

fn echo_of(ws: &Client, text: &str) {
    ws.send_text(text).unwrap();
    match next(ws) {
        Event::Message(m) => assert_eq!(m.as_text(), Some(text)),
        other => panic!("expected {text:?}, got {other:?}"),
    }
}

#[test]
fn the_server_goes_away_and_comes_back() {
    let server = RestartableServer::start();
    let config = reconnecting().build().unwrap();
    let ws = common::connect_with_config(&server.url(), config).unwrap();
    expect_open(&ws);
    echo_of(&ws, "first life");

    let addr = server.stop();
    // The lost connection, then failed attempts with growing delay ceilings.
    let (_, lost) = one_connection(&ws);
    assert!(!lost.was_clean);
    assert_eq!(lost.attempt, 1);
    assert_eq!(ws.ready_state(), ReadyState::Connecting);
    for attempt in 2..=5 {
        let (events, close) = one_connection(&ws);
        assert!(
            matches!(error_of(&events), Some(Error::Connect(_))),
            "{events:?}"
        );
        assert_eq!(close.attempt, attempt);
        let ceiling = Duration::from_millis(20 << (attempt - 1)).min(Duration::from_millis(160));
        let delay = close.reconnect.expect("another attempt follows");
        assert!(delay <= ceiling, "attempt {attempt}: {delay:?}");
    }
    // Back up: the next attempt opens, and the connection works again.
    let _server = RestartableServer::start_on(addr);
    loop {
        match next(&ws) {
            Event::Open(_) => break,
            Event::Error(_) | Event::Close(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ws.ready_state(), ReadyState::Open);
    echo_of(&ws, "second life");
    ws.close().unwrap();
    let (_, close) = one_connection(&ws);
    assert!(close.was_clean && close.is_final());
    assert!(matches!(
        ws.recv_timeout(WAIT),
        Err(nwebsocket::RecvTimeoutError::Disconnected)
    ));
}

#[test]
fn sends_made_while_down_arrive_in_order_after_the_reconnect() {
    let server = RestartableServer::start();
    let config = reconnecting().build().unwrap();
    let ws = common::connect_with_config(&server.url(), config).unwrap();
    expect_open(&ws);
    let addr = server.stop();
    let (_, lost) = one_connection(&ws);
    assert!(lost.reconnect.is_some());
    for i in 0..100 {
        ws.send_text(format!("queued {i}")).unwrap();
    }
    assert!(ws.buffered_amount() > 0);
    let _server = RestartableServer::start_on(addr);
    let mut received = Vec::new();
    while received.len() < 100 {
        if let Event::Message(m) = next(&ws) {
            received.push(m.as_text().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (0..100).map(|i| format!("queued {i}")).collect();
    assert_eq!(received, expected);
    assert_eq!(ws.buffered_amount(), 0);
}

#[test]
fn the_offline_queue_has_a_limit() {
    let port = closed_port();
    let config = reconnecting()
        .offline_sends(OfflineSends::Queue { max_bytes: 10 })
        .build()
        .unwrap();
    let ws = common::connect_with_config(&format!("ws://127.0.0.1:{port}/"), config).unwrap();
    ws.send_text("0123456789").unwrap();
    assert!(matches!(ws.send_text("x"), Err(Error::QueueFull(10))));
    ws.close().unwrap();
}

#[test]
fn fail_fast_refuses_every_send_while_down() {
    let server = RestartableServer::start();
    let config = reconnecting()
        .offline_sends(OfflineSends::Fail)
        .build()
        .unwrap();
    let ws = common::connect_with_config(&server.url(), config).unwrap();
    expect_open(&ws);
    let addr = server.stop();
    one_connection(&ws);
    for _ in 0..10 {
        assert!(matches!(ws.send_text("lost?"), Err(Error::NotOpen)));
        assert!(matches!(ws.ping(Vec::new()), Err(Error::NotOpen)));
    }
    assert_eq!(ws.buffered_amount(), 0);
    let _server = RestartableServer::start_on(addr);
    while !matches!(next(&ws), Event::Open(_)) {}
    echo_of(&ws, "open again");
}

#[test]
fn the_attempt_limit_ends_the_stream() {
    let port = closed_port();
    let config = reconnecting().reconnect_max_attempts(3).build().unwrap();
    let ws = common::connect_with_config(&format!("ws://127.0.0.1:{port}/"), config).unwrap();
    // The first attempt and three more, each refused.
    for attempt in 1..=4u32 {
        let (events, close) = one_connection(&ws);
        assert!(matches!(error_of(&events), Some(Error::Connect(_))));
        if attempt <= 3 {
            assert_eq!(close.attempt, attempt);
        } else {
            assert!(close.is_final(), "{close:?}");
            assert_eq!(close.attempt, 0);
        }
    }
    assert!(matches!(
        ws.recv_timeout(WAIT),
        Err(nwebsocket::RecvTimeoutError::Disconnected)
    ));
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    assert!(ws.wait_closed(WAIT));
}

#[test]
fn close_during_the_backoff_ends_at_once() {
    let port = closed_port();
    let config = Config::builder()
        .reconnect(true)
        .reconnect_delays(Duration::from_secs(30), Duration::from_secs(60))
        .build()
        .unwrap();
    let ws = common::connect_with_config(&format!("ws://127.0.0.1:{port}/"), config).unwrap();
    let (_, close) = one_connection(&ws);
    assert!(close.reconnect.is_some());
    assert_eq!(ws.ready_state(), ReadyState::Connecting);
    let started = Instant::now();
    ws.close().unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert!(close.is_final() && !close.was_clean);
    assert!(matches!(error_of(&events), Some(Error::Aborted)));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(ws.wait_closed(WAIT));
}

#[test]
fn no_reconnect_after_the_users_own_close() {
    let server = RestartableServer::start();
    let config = reconnecting()
        .reconnect_on_clean_close(true)
        .build()
        .unwrap();
    let ws = common::connect_with_config(&server.url(), config).unwrap();
    expect_open(&ws);
    ws.close().unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert!(close.was_clean && close.is_final(), "{close:?}");
    assert!(server.accepted.recv_timeout(WAIT).is_ok());
    assert!(server.accepted.is_empty(), "a second connection was made");
}

#[test]
fn a_clean_close_by_the_server_reconnects_only_when_asked() {
    let accepted = Arc::new(Mutex::new(0));
    let count = accepted.clone();
    let url = ws_server(move |mut ws| {
        *count.lock().unwrap() += 1;
        let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
            code: 1012u16.into(),
            reason: "restarting".into(),
        }));
        while ws.read().is_ok() {}
    });
    // Not asked: the server's clean close is the end.
    let ws = common::connect_with_config(&url, reconnecting().build().unwrap()).unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.is_final()), (1012, true));
    // Asked for 1012: it reconnects, until the limit.
    let config = reconnecting()
        .reconnect_on_close_code(1012)
        .reconnect_max_attempts(2)
        .build()
        .unwrap();
    let ws = common::connect_with_config(&url, config).unwrap();
    let mut closes = Vec::new();
    for event in ws.events().take(100) {
        if let Event::Close(close) = event {
            closes.push(close);
        }
    }
    assert_eq!(closes.len(), 3, "{closes:?}");
    assert!(closes.iter().all(|c| c.code == 1012 && c.was_clean));
    assert!(closes[..2].iter().all(|c| c.reconnect.is_some()));
    assert!(closes[2].is_final());
}

#[test]
fn retry_after_on_503_is_honoured() {
    let port = tcp_server(|mut stream: TcpStream| {
        if read_request(&mut stream).is_some() {
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n",
            );
        }
    });
    let ws = common::connect_with_config(
        &format!("ws://127.0.0.1:{port}/"),
        reconnecting().build().unwrap(),
    )
    .unwrap();
    let (events, close) = one_connection(&ws);
    assert!(matches!(
        error_of(&events),
        Some(Error::Rejected { status: 503, .. })
    ));
    assert!(
        close.reconnect.unwrap() >= Duration::from_secs(2),
        "{close:?}"
    );
    ws.close().unwrap();
}

#[test]
fn callbacks_see_every_connection_and_run_returns_after_the_last() {
    let port = closed_port();
    let config = reconnecting().reconnect_max_attempts(2).build().unwrap();
    let client = common::connect_with_config(&format!("ws://127.0.0.1:{port}/"), config).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut ws = nwebsocket::callback::WebSocket::new(client);
    let errors = seen.clone();
    ws.on_error(move |_, _| errors.lock().unwrap().push("error".to_owned()));
    let closes = seen.clone();
    ws.on_close(move |_, close| {
        closes
            .lock()
            .unwrap()
            .push(format!("close {}", close.reconnect.is_some()));
    });
    ws.run();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "error",
            "close true",
            "error",
            "close true",
            "error",
            "close false"
        ]
    );
}
