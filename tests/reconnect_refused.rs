//! Reconnection does not retry what can never succeed, counted at loopback servers: an HTTP
//! 4xx refusal other than 408 and 429 (from the server or an HTTP proxy) and refused SOCKS5
//! credentials end the stream at the first attempt; 408, 429, 5xx, a proxy's 502 and TLS
//! certificate failures are retried up to the limit. What `connect` can tell at once, it
//! returns instead of starting a thread: a proxy in the environment that does not parse
//! (in a child process of this binary, so that no test changes its own environment) and a
//! host name too long for `socks5h://`.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;
#[path = "proxy/servers.rs"]
mod servers;

use std::io::Write;
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use nwebsocket::{Client, CloseEvent, Config, ConfigBuilder, Error, Event, RecvTimeoutError};
use servers::*;

/// Retries after at most 5 ms, three times.
const RETRIES: usize = 3;

fn reconnecting() -> ConfigBuilder {
    Config::builder()
        .proxy_from_env(false)
        .reconnect(true)
        .reconnect_delays(Duration::from_millis(1), Duration::from_millis(5))
        .reconnect_max_attempts(RETRIES as u32)
}

/// Every connection of the stream until it ends, each one's contract checked: its error
/// and its `Close`.
fn whole_stream(ws: &Client) -> Vec<(Error, CloseEvent)> {
    let mut connections = Vec::new();
    let mut events = Vec::new();
    loop {
        let event = next(ws);
        let close = match &event {
            Event::Close(close) => Some(close.clone()),
            _ => None,
        };
        events.push(event);
        if let Some(close) = close {
            check_contract(&events);
            let at = events.len() - 2;
            let Event::Error(err) = events.swap_remove(at) else {
                panic!("no error: {events:?}")
            };
            connections.push((err, close.clone()));
            events.clear();
            if close.is_final() {
                break;
            }
        }
    }
    assert!(
        matches!(ws.recv_timeout(WAIT), Err(RecvTimeoutError::Disconnected)),
        "the stream did not end after the final Close"
    );
    connections
}

/// A server that answers every upgrade request with `status`, and counts the requests.
fn answering(status: u16) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let port = tcp_server(move |mut stream| {
        if read_request(&mut stream).is_some() {
            counter.fetch_add(1, Ordering::SeqCst);
            let answer = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (format!("ws://127.0.0.1:{port}/"), count)
}

#[test]
fn a_4xx_refusal_ends_the_stream_at_the_first_attempt() {
    for status in [400, 401, 403, 404, 426] {
        let (url, count) = answering(status);
        let ws = Client::connect_with_config(&url, reconnecting().build().unwrap()).unwrap();
        let connections = whole_stream(&ws);
        assert_eq!(connections.len(), 1, "{status}: {connections:?}");
        let (err, close) = &connections[0];
        assert!(
            matches!(err, Error::Rejected { status: s, .. } if *s == status),
            "{err:?}"
        );
        assert!(close.is_final(), "{close:?}");
        assert_eq!(count.load(Ordering::SeqCst), 1, "{status}");
    }
}

#[test]
fn request_timeout_too_many_requests_and_5xx_are_retried_up_to_the_limit() {
    for status in [408, 429, 500, 503] {
        let (url, count) = answering(status);
        let ws = Client::connect_with_config(&url, reconnecting().build().unwrap()).unwrap();
        let connections = whole_stream(&ws);
        assert_eq!(connections.len(), 1 + RETRIES, "{status}: {connections:?}");
        assert_eq!(count.load(Ordering::SeqCst), 1 + RETRIES, "{status}");
    }
}

#[test]
fn an_http_proxy_refusal_ends_the_stream_but_its_502_is_retried() {
    let refusing = http_proxy(Http::Answer(b"HTTP/1.1 403 Forbidden\r\n\r\n".to_vec()));
    let config = reconnecting()
        .proxy(format!("http://127.0.0.1:{}", refusing.port))
        .build()
        .unwrap();
    let ws = Client::connect_with_config("ws://127.0.0.1:1/", config).unwrap();
    let connections = whole_stream(&ws);
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert!(matches!(
        connections[0].0,
        Error::ProxyRejected { status: 403, .. }
    ));
    assert_eq!(refusing.seen().len(), 1);

    let failing = http_proxy(Http::Answer(b"HTTP/1.1 502 Bad Gateway\r\n\r\n".to_vec()));
    let config = reconnecting()
        .proxy(format!("http://127.0.0.1:{}", failing.port))
        .build()
        .unwrap();
    let ws = Client::connect_with_config("ws://127.0.0.1:1/", config).unwrap();
    assert_eq!(whole_stream(&ws).len(), 1 + RETRIES);
    assert_eq!(failing.seen().len(), 1 + RETRIES);
}

#[test]
fn refused_socks5_credentials_end_the_stream() {
    let socks = socks5_proxy(Socks {
        credentials: Some(("robot", "right")),
        ..Socks::open()
    });
    let config = reconnecting()
        .proxy(format!("socks5://robot:wrong@127.0.0.1:{}", socks.port))
        .build()
        .unwrap();
    let ws = Client::connect_with_config("ws://127.0.0.1:1/", config).unwrap();
    let connections = whole_stream(&ws);
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert!(
        matches!(
            connections[0].0,
            Error::Proxy {
                kind: nwebsocket::ProxyErrorKind::AuthFailed,
                ..
            }
        ),
        "{connections:?}"
    );
}

#[test]
fn tls_certificate_failures_are_retried() {
    // A TLS server whose self-signed certificate the client does not trust.
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key.into())
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_read_timeout(Some(WAIT));
            let mut conn = rustls::ServerConnection::new(server_config.clone()).unwrap();
            while conn.is_handshaking() {
                if conn.complete_io(&mut stream).is_err() {
                    break;
                }
            }
        }
    });
    let config = reconnecting().build().unwrap();
    let url = format!("wss://localhost:{port}/");
    let ws = Client::connect_with_config(&url, config).unwrap();
    let connections = whole_stream(&ws);
    assert_eq!(connections.len(), 1 + RETRIES, "{connections:?}");
    for (err, _) in &connections {
        assert!(
            matches!(
                err,
                Error::Tls {
                    kind: nwebsocket::TlsErrorKind::UnknownIssuer,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    // localhost may resolve to ::1 first, where nobody listens: count only what got here.
    assert_eq!(count.load(Ordering::SeqCst), 1 + RETRIES);
}

#[test]
fn a_host_too_long_for_socks5h_fails_connect() {
    let long = vec!["a".repeat(60); 5].join(".");
    assert!(long.len() > 255);
    let config = reconnecting()
        .proxy("socks5h://127.0.0.1:1")
        .build()
        .unwrap();
    let err = Client::connect_with_config(&format!("ws://{long}/"), config).unwrap_err();
    assert!(matches!(err, Error::InvalidUrl(_)), "{err:?}");
    assert!(err.to_string().contains("SOCKS5"), "{err}");
}

/// Runs `env_child` with `name=value` as the only proxy variable; it must get `expect`
/// ("config" or "url") from `connect`.
fn child(name: &str, value: &str, url: &str, expect: &str) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["env_child", "--exact", "--nocapture", "--test-threads=1"]);
    for variable in PROXY_VARIABLES {
        command.env_remove(variable);
    }
    let output = command
        .env(name, value)
        .env("NWEBSOCKET_TEST_URL", url)
        .env("NWEBSOCKET_TEST_EXPECT", expect)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name}={value}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `connect` with reconnection on, in a child process: it must return the expected error and
/// start no thread; does nothing in a normal run.
#[test]
fn env_child() {
    let Ok(url) = std::env::var("NWEBSOCKET_TEST_URL") else {
        return;
    };
    let config = Config::builder()
        .reconnect(true)
        .reconnect_delays(Duration::from_millis(1), Duration::from_millis(5))
        .build()
        .unwrap();
    let result = Client::connect_with_config(&url, config);
    let expect = std::env::var("NWEBSOCKET_TEST_EXPECT").unwrap();
    match (expect.as_str(), result) {
        ("config", Err(Error::InvalidConfig(_))) | ("url", Err(Error::InvalidUrl(_))) => {}
        (_, Err(err)) => panic!("expected {expect}, got {err:?}"),
        (_, Ok(ws)) => panic!(
            "connect accepted it; then: {:?} ...",
            (0..3).map(|_| next(&ws)).collect::<Vec<_>>()
        ),
    }
    assert!(io_threads().is_empty(), "{:?}", io_threads());
}

#[test]
fn a_proxy_in_the_environment_that_cannot_work_fails_connect() {
    let ws = "ws://127.0.0.1:1/";
    let wss = "wss://127.0.0.1:1/";
    child("http_proxy", "ftp://proxy.test:21", ws, "config");
    child("HTTP_PROXY", "https://proxy.test:443", ws, "config");
    child("https_proxy", "socks4://127.0.0.1:1", wss, "config");
    child("all_proxy", "http://proxy.test:3128/path", ws, "config");
    child("ALL_PROXY", "http://127.0.0.1:99999", wss, "config");
    let long = vec!["a".repeat(60); 5].join(".");
    child(
        "all_proxy",
        "socks5h://127.0.0.1:1",
        &format!("ws://{long}/"),
        "url",
    );
}
