//! The `before_each_connect` hook: a fresh token (in the URL and a header) for every attempt
//! against a server that accepts each token once; a slow hook that cannot hold up `close()`
//! or outlast the connect timeout; bad answers, errors and panics that end reconnecting.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use nwebsocket::{Client, Config, ConfigBuilder, ConnectRequest, Error, Event, TimeoutKind};

/// What the one-time-token server saw: accepted tokens in order, and how many it refused.
#[derive(Default)]
struct Seen {
    accepted: Vec<String>,
    refused: usize,
}

/// A server that accepts each token once. The token must come both as `?token=` and as the
/// only `Authorization: Bearer` header; a reused or mismatched one gets 401. Each accepted
/// connection is closed at once by the server with 1012 (service restart).
fn one_time_token_server() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let used = Arc::new(Mutex::new(HashSet::new()));
    let log = seen.clone();
    let port = tcp_server(move |mut stream| {
        let Some(request) = read_request(&mut stream) else {
            return;
        };
        let in_url = request
            .lines()
            .next()
            .and_then(|line| line.split("token=").nth(1))
            .and_then(|rest| rest.split([' ', '&']).next())
            .map(str::to_owned);
        let bearers: Vec<&str> = request
            .lines()
            .filter_map(|line| line.split_once(':'))
            .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            .map(|(_, value)| value.trim())
            .collect();
        let fresh = match (&in_url, bearers.as_slice()) {
            (Some(token), [bearer]) if *bearer == format!("Bearer {token}") => {
                used.lock().unwrap().insert(token.clone())
            }
            _ => false,
        };
        if !fresh {
            log.lock().unwrap().refused += 1;
            let _ = stream.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        log.lock().unwrap().accepted.push(in_url.unwrap());
        let accept = accept_key(&request).unwrap();
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        stream.write_all(response.as_bytes()).unwrap();
        stream
            .write_all(&frame(true, 0x8, &1012u16.to_be_bytes()))
            .unwrap();
        // Wait for the client's close reply (or its end), then close TCP first, as a server does.
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let _ = stream.read(&mut [0; 64]);
    });
    (format!("ws://127.0.0.1:{port}/feed"), seen)
}

fn reconnecting() -> ConfigBuilder {
    Config::builder()
        .reconnect(true)
        .reconnect_on_close_code(1012)
        .reconnect_delays(Duration::from_millis(10), Duration::from_millis(20))
}

/// Events up to and including the next `Close`.
fn one_connection(ws: &Client) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let event = next(ws);
        let done = matches!(event, Event::Close(_));
        events.push(event);
        if done {
            check_contract(&events);
            return events;
        }
    }
}

fn close_of(events: &[Event]) -> &nwebsocket::CloseEvent {
    match events.last() {
        Some(Event::Close(close)) => close,
        other => panic!("no Close at the end: {other:?}"),
    }
}

#[test]
fn replaying_the_first_token_is_refused_by_the_server() {
    // The server really refuses a reused token: without the hook, the reconnect fails.
    let (url, seen) = one_time_token_server();
    let config = reconnecting()
        .header("Authorization", "Bearer t0")
        .reconnect_max_attempts(1)
        .build()
        .unwrap();
    let ws = common::connect_with_config(&format!("{url}?token=t0"), config).unwrap();
    let first = one_connection(&ws);
    assert!(matches!(first[0], Event::Open(_)), "{first:?}");
    let second = until_close(&ws);
    assert!(
        matches!(error_of(&second), Some(Error::Rejected { status: 401, .. })),
        "{second:?}"
    );
    assert_eq!(seen.lock().unwrap().refused, 1);
}

#[test]
fn every_reconnect_gets_a_fresh_token_until_the_hook_says_no() {
    let (url, seen) = one_time_token_server();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let made = calls.clone();
    let config = reconnecting()
        // A stale configured header: the hook's replaces it.
        .header("Authorization", "Bearer stale")
        .before_each_connect(move |attempt| {
            let mut calls = made.lock().unwrap();
            calls.push(attempt);
            let n = calls.len() - 1;
            if n == 4 {
                return Err("out of tokens".into());
            }
            Ok(ConnectRequest::new()
                .url(format!("{url}?token=t{n}"))
                .header("Authorization", format!("Bearer t{n}")))
        })
        .build()
        .unwrap();
    // The URL given here is never used: the hook's replaces it.
    let ws = common::connect_with_config("ws://127.0.0.1:9/unused", config).unwrap();
    for n in 0..4 {
        let events = one_connection(&ws);
        assert!(matches!(events[0], Event::Open(_)), "{n}: {events:?}");
        let close = close_of(&events);
        assert_eq!((close.code, close.was_clean), (1012, true), "{n}");
        assert!(close.reconnect.is_some(), "{n}");
    }
    let last = until_close(&ws);
    let Some(Error::ConnectHook(source)) = error_of(&last) else {
        panic!("{last:?}")
    };
    assert_eq!(source.to_string(), "out of tokens");
    let close = close_of(&last);
    assert_eq!((close.code, close.reconnect), (1006, None));

    let seen = seen.lock().unwrap();
    assert_eq!(seen.accepted, ["t0", "t1", "t2", "t3"]);
    assert_eq!(seen.refused, 0);
    assert_eq!(*calls.lock().unwrap(), [0, 1, 2, 3, 4]);
}

#[test]
fn a_slow_hook_does_not_hold_up_close() {
    let (started_tx, started) = flume::bounded(1);
    let (release, released) = flume::bounded::<()>(1);
    let config = reconnecting()
        .before_each_connect(move |_| {
            let _ = started_tx.send(());
            let _ = released.recv_timeout(Duration::from_secs(30));
            Ok(ConnectRequest::new())
        })
        .build()
        .unwrap();
    let ws = common::connect_with_config(&echo_server(), config).unwrap();
    started.recv_timeout(WAIT).unwrap();
    let closing = Instant::now();
    ws.close().unwrap();
    let events = until_close(&ws);
    let took = closing.elapsed();
    assert!(
        matches!(error_of(&events), Some(Error::Aborted)),
        "{events:?}"
    );
    assert_eq!(close_of(&events).reconnect, None);
    assert!(took < Duration::from_secs(1), "close took {took:?}");
    drop(release);
}

#[test]
fn a_hook_that_outlasts_the_connect_timeout_fails_the_attempt() {
    let (release, released) = flume::bounded::<()>(1);
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let config = Config::builder()
        .connect_timeout(Duration::from_millis(200))
        .before_each_connect(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = released.recv_timeout(Duration::from_secs(30));
            Ok(ConnectRequest::new())
        })
        .build()
        .unwrap();
    let started = Instant::now();
    let ws = common::connect_with_config(&echo_server(), config).unwrap();
    let events = until_close(&ws);
    let took = started.elapsed();
    let Some(Error::Timeout { kind, during }) = error_of(&events) else {
        panic!("{events:?}")
    };
    assert_eq!(*kind, TimeoutKind::Connect);
    assert_eq!(*during, "in the before_each_connect hook");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    drop(release);
}

/// Connects with reconnection on and a hook that answers `answer`; returns the error that
/// ended the stream, after checking that no reconnect was announced.
fn ended_by(
    answer: impl Fn() -> Result<ConnectRequest, Box<dyn std::error::Error + Send + Sync>>
    + Send
    + Sync
    + 'static,
) -> Error {
    let config = reconnecting()
        .before_each_connect(move |_| answer())
        .build()
        .unwrap();
    let ws = common::connect_with_config(&echo_server(), config).unwrap();
    let mut events = until_close(&ws);
    assert_eq!(close_of(&events).reconnect, None, "{events:?}");
    let Some(Event::Error(error)) = events.drain(..).find(|e| matches!(e, Event::Error(_))) else {
        panic!("no error")
    };
    error
}

#[test]
fn bad_answers_and_panics_end_the_stream() {
    use std::error::Error as _;
    let source = |error: &Error| {
        assert!(matches!(error, Error::ConnectHook(_)), "{error:?}");
        error.source().unwrap().to_string()
    };
    let bad_url = ended_by(|| Ok(ConnectRequest::new().url("http://127.0.0.1:1/?token=secret")));
    let why = source(&bad_url);
    assert!(
        why.starts_with("invalid URL: the scheme must be ws or wss"),
        "{why}"
    );
    assert!(!why.contains("secret"), "{why}");

    let reserved = ended_by(|| Ok(ConnectRequest::new().header("Sec-WebSocket-Key", "x")));
    assert!(source(&reserved).contains("set by the handshake itself"));

    let bad_value = ended_by(|| Ok(ConnectRequest::new().header("Authorization", "a\nb")));
    assert!(source(&bad_value).contains("invalid value"));

    let panicked = ended_by(|| panic!("the token store is down"));
    assert_eq!(source(&panicked), "it panicked: the token store is down");
}
