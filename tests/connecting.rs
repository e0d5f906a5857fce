//! Connection attempts: refused, rejected, redirected, timed out, aborted; the request target,
//! headers and subprotocols; IPv6 literals.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use nwebsocket::{Client, Config, Error, Event, ReadyState, TimeoutKind};

/// A raw server that answers the upgrade request with `response` and reports the request.
fn answering(response: &'static str) -> (String, flume::Receiver<String>) {
    let (tx, rx) = flume::unbounded();
    let port = tcp_server(move |mut stream: TcpStream| {
        if let Some(request) = read_request(&mut stream) {
            let _ = tx.send(request);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (format!("ws://127.0.0.1:{port}/"), rx)
}

#[test]
fn connection_refused_is_error_then_close_1006() {
    let ws = Client::connect(&format!("ws://127.0.0.1:{}/", closed_port())).unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false));
    let Some(Error::Connect(source)) = error_of(&events) else {
        panic!("{events:?}")
    };
    // The cause names the address and keeps the I/O error.
    let text = source.to_string();
    assert!(
        text.contains("127.0.0.1") && text.contains("refused"),
        "{text}"
    );
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    assert!(ws.wait_closed(WAIT));
}

#[test]
fn rejected_handshake_keeps_status_and_body() {
    let (url, _) = answering(
        "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nno socket",
    );
    let ws = Client::connect(&url).unwrap();
    let events = until_close(&ws);
    assert!(!check_contract(&events).was_clean);
    match error_of(&events) {
        Some(Error::Rejected { status, body, .. }) => {
            assert_eq!(*status, 404);
            assert_eq!(&body[..], b"no socket");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn redirects_are_not_followed() {
    let (url, requests) = answering(
        "HTTP/1.1 301 Moved Permanently\r\nLocation: ws://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n",
    );
    let ws = Client::connect(&url).unwrap();
    let events = until_close(&ws);
    assert!(matches!(
        error_of(&events),
        Some(Error::Rejected { status: 301, .. })
    ));
    requests.recv_timeout(WAIT).unwrap();
    assert!(requests.try_recv().is_err(), "a second request was made");
}

#[test]
fn request_target_keeps_the_query_and_sends_headers_and_protocols() {
    let (tx, rx) = flume::unbounded();
    let port = tcp_server(move |mut stream: TcpStream| {
        let request = accept_handshake_with_protocol(&mut stream, "v2.chat");
        let _ = tx.send(request);
        std::thread::park();
    });
    let config = Config::builder()
        .header("Authorization", "Bearer t0ken")
        .protocol("v1.chat")
        .protocol("v2.chat")
        .build()
        .unwrap();
    let url = format!("ws://127.0.0.1:{port}/feed?token=abc&x=1");
    let ws = Client::connect_with_config(&url, config).unwrap();
    let request = rx.recv_timeout(WAIT).unwrap();
    assert!(
        request.starts_with("GET /feed?token=abc&x=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
        "{request}"
    );
    assert!(
        request
            .to_lowercase()
            .contains("authorization: bearer t0ken\r\n"),
        "{request}"
    );
    assert!(
        request
            .to_lowercase()
            .contains("sec-websocket-protocol: v1.chat, v2.chat\r\n")
    );
    match next(&ws) {
        Event::Open(open) => {
            assert_eq!(open.protocol.as_deref(), Some("v2.chat"));
            assert_eq!(open.headers["x-test"], "yes");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ws.protocol(), "v2.chat");
    assert_eq!(ws.url(), url);
}

fn accept_handshake_with_protocol(stream: &mut TcpStream, protocol: &str) -> String {
    let request = read_request(stream).unwrap();
    let key = request
        .lines()
        .find_map(|l| {
            l.to_lowercase()
                .strip_prefix("sec-websocket-key:")
                .map(|k| k.trim().to_owned())
        })
        .unwrap();
    // The key's case matters for the accept hash: take it from the original line.
    let key_start = request.to_lowercase().find(&key).unwrap();
    let key = &request[key_start..key_start + key.len()];
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {protocol}\r\nX-Test: yes\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).unwrap();
    request
}

#[test]
fn ipv6_literal_connects() {
    let listener = match TcpListener::bind("[::1]:0") {
        Ok(listener) => listener,
        Err(err) => panic!("this machine has no IPv6 loopback ({err}); the test needs one"),
    };
    let port = listener.local_addr().unwrap().port();
    spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        echo(tungstenite::accept(stream).unwrap());
    });
    let ws = Client::connect(&format!("ws://[::1]:{port}/v6")).unwrap();
    expect_open(&ws);
    ws.send_text("over v6").unwrap();
    assert!(matches!(next(&ws), Event::Message(m) if m.as_text() == Some("over v6")));
}

#[test]
fn handshake_that_never_answers_times_out() {
    let port = tcp_server(|stream: TcpStream| {
        let mut stream = stream;
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    });
    let config = Config::builder()
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let ws = Client::connect_with_config(&format!("ws://127.0.0.1:{port}/"), config).unwrap();
    let events = until_close(&ws);
    assert!(!check_contract(&events).was_clean);
    assert!(
        matches!(
            error_of(&events),
            Some(Error::Timeout {
                kind: TimeoutKind::Connect,
                ..
            })
        ),
        "{events:?}"
    );
}

#[test]
fn close_while_connecting_aborts_with_one_close() {
    let (accepted_tx, accepted_rx) = flume::bounded(1);
    let port = tcp_server(move |stream: TcpStream| {
        let _ = accepted_tx.send(());
        let mut stream = stream;
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    });
    let ws = Client::connect(&format!("ws://127.0.0.1:{port}/")).unwrap();
    accepted_rx.recv_timeout(WAIT).unwrap();
    ws.close().unwrap();
    assert_eq!(ws.ready_state(), ReadyState::Closing);
    ws.close().unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false));
    assert!(matches!(error_of(&events), Some(Error::Aborted)));
    assert!(!events.iter().any(|e| matches!(e, Event::Open(_))));
    assert!(ws.wait_closed(WAIT));
}

#[test]
fn close_right_after_connect_aborts_too() {
    let ws = Client::connect(&echo_server()).unwrap();
    ws.close().unwrap();
    let close = check_contract(&until_close(&ws));
    // Either the attempt was aborted, or it had opened and closed cleanly already.
    assert!(
        close.code == 1006 || (close.code == 1000 && close.was_clean),
        "{close:?}"
    );
}

#[test]
fn localhost_resolves() {
    let url = echo_server().replace("127.0.0.1", "localhost");
    let ws = Client::connect(&url).unwrap();
    expect_open(&ws);
}

#[test]
fn many_connects_to_a_name_share_a_few_resolver_threads() {
    // 200 clients resolving `localhost` at once: the lookups run on a small shared pool, not
    // on a thread each.
    let url = echo_server().replace("127.0.0.1", "localhost");
    let resolver_threads = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim() == "nwebsocket-dns")
            .count()
    };
    let clients: Vec<Client> = (0..200).map(|_| Client::connect(&url).unwrap()).collect();
    let mut most = resolver_threads();
    for ws in &clients {
        most = most.max(resolver_threads());
        expect_open(ws);
    }
    assert!(most <= 8, "{most} resolver threads at once");
    for ws in &clients {
        ws.close().unwrap();
    }
    for ws in &clients {
        assert!(check_contract(&until_close(ws)).was_clean);
    }
}

#[test]
fn dropping_while_connecting_closes_the_socket() {
    let (accepted_tx, accepted_rx) = flume::bounded(1);
    let (eof_tx, eof_rx) = flume::bounded(1);
    let port = tcp_server(move |stream: TcpStream| {
        let _ = accepted_tx.send(());
        let mut stream = stream;
        // Returns when the client closes TCP.
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
        let _ = eof_tx.send(());
    });
    let ws = Client::connect(&format!("ws://127.0.0.1:{port}/")).unwrap();
    // Drop while the handshake waits for an answer that never comes.
    accepted_rx.recv_timeout(WAIT).unwrap();
    drop(ws);
    eof_rx
        .recv_timeout(WAIT)
        .expect("the client never closed its socket");
}
