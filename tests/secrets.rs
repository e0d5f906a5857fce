//! No secret reaches a log record, a `Debug` string or an error message. A capturing logger
//! at trace level (this binary's own, since the logger is process-wide) runs around
//! connections with secrets in the URL's user-info and query, in `Authorization`, `Cookie`
//! and `X-Api-Key` headers and in proxy credentials: over `ws://` and `wss://`, directly and
//! through HTTP and SOCKS5 proxies, succeeding and failing. Every record, the `Debug` of every
//! event, client, config and builder, and every error's message, `Debug` and source chain are
//! searched for each secret. Passwords with an unescaped `/`, `?` or `#` are never quoted,
//! also when they come from `http_proxy` (in a child process of this binary, so that no test
//! changes its own environment).
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;
#[path = "proxy/servers.rs"]
mod servers;

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::*;
use nwebsocket::callback::WebSocket;
use nwebsocket::{Config, ConfigBuilder, Error, Event};
use servers::*;

const URL_USER: &str = "urluser-K2";
const URL_PASSWORD: &str = "urlpass-Q7x";
const QUERY_TOKEN: &str = "querytok-M4v";
const BEARER: &str = "bearer-Hx81";
const COOKIE: &str = "cookie-Lp05";
const API_KEY: &str = "apikey-Rw3";
const PROXY_USER: &str = "proxyuser-J8";
const PROXY_PASSWORD: &str = "proxypass-Tb6";
const SET_COOKIE: &str = "setcookie-Vn2";

/// Every secret, and the forms it takes on the wire (`Basic` base64 of `user:password`).
fn secrets() -> Vec<String> {
    let mut all: Vec<String> = [
        URL_USER,
        URL_PASSWORD,
        QUERY_TOKEN,
        BEARER,
        COOKIE,
        API_KEY,
        PROXY_USER,
        PROXY_PASSWORD,
        SET_COOKIE,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    all.push(base64(format!("{URL_USER}:{URL_PASSWORD}").as_bytes()));
    all.push(base64(format!("{PROXY_USER}:{PROXY_PASSWORD}").as_bytes()));
    all
}

/// Fails if `text` holds a secret or a part of one (the halves before and after a `-`).
fn assert_clean(what: &str, text: &str) {
    for secret in secrets() {
        assert!(!text.contains(&secret), "{what} holds {secret:?}: {text}");
    }
    for secret in [URL_PASSWORD, PROXY_PASSWORD, QUERY_TOKEN, BEARER] {
        let (head, tail) = secret.split_once('-').unwrap();
        assert!(
            !text.contains(&format!("{head}-")) && !text.contains(&format!("-{tail}")),
            "{what} holds part of {secret:?}: {text}"
        );
    }
}

/// An error's message, `Debug` and whole source chain, checked.
fn assert_error_clean(err: &Error) {
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(" / {cause} {cause:?}"));
        source = cause.source();
    }
    assert_clean("an error", &text);
}

/// A URL with user-info and a query token, to `authority`.
fn secret_url(scheme: &str, authority: &str) -> String {
    format!("{scheme}://{URL_USER}:{URL_PASSWORD}@{authority}/feed?token={QUERY_TOKEN}&x=1")
}

/// A builder with secret headers, ignoring the environment.
fn secret_config() -> ConfigBuilder {
    capture_logs();
    Config::builder()
        .proxy_from_env(false)
        .header("Authorization", format!("Bearer {BEARER}"))
        .header("Cookie", format!("session={COOKIE}"))
        .header("X-Api-Key", API_KEY)
}

/// Connects, checks an echo, closes; checks the `Debug` of the config, the client and every
/// event on the way.
fn round_trip(url: &str, config: Config) {
    assert_clean("Config's Debug", &format!("{config:?}"));
    let ws = common::connect_with_config(url, config).unwrap();
    assert_clean("Client's Debug", &format!("{ws:?}"));
    expect_open(&ws);
    assert_clean("Client's Debug when open", &format!("{ws:?}"));
    ws.send_text("hello").unwrap();
    let echo = next(&ws);
    assert!(matches!(&echo, Event::Message(_)), "{echo:?}");
    ws.close().unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert!(close.was_clean, "{events:?}");
    assert_clean("the events", &format!("{events:?}"));
}

/// Connects and expects one `Error`, then `Close`; checks them, and returns the error.
fn fails(url: &str, config: Config) -> Error {
    let ws = common::connect_with_config(url, config).unwrap();
    let mut events = until_close(&ws);
    check_contract(&events);
    assert_clean("the events", &format!("{events:?}"));
    assert_clean("Client's Debug", &format!("{ws:?}"));
    let at = events.len() - 2;
    let Event::Error(err) = events.swap_remove(at) else {
        panic!("expected an Error: {events:?}")
    };
    assert_error_clean(&err);
    err
}

/// A server that records each upgrade request head and echoes.
fn recording_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let log = heads.clone();
    let port = tcp_server(move |mut stream| {
        if let Some(head) = accept_handshake(&mut stream) {
            log.lock().unwrap().push(head);
            let ws = tungstenite::WebSocket::from_raw_socket(
                stream,
                tungstenite::protocol::Role::Server,
                None,
            );
            echo(ws);
        }
    });
    (format!("127.0.0.1:{port}"), heads)
}

/// Checks that the logger caught trace records, tungstenite's request among them, and that
/// none holds a secret.
fn assert_logs_clean() {
    let records = log_records();
    assert!(
        records.iter().any(|r| r.contains("Request:")),
        "no trace record of the upgrade request: {records:?}"
    );
    for record in &records {
        assert_clean("a log record", record);
    }
}

#[test]
fn ws_with_secrets_everywhere_logs_none_yet_sends_them_all() {
    let (authority, heads) = recording_server();
    round_trip(
        &secret_url("ws", &authority),
        secret_config().build().unwrap(),
    );
    assert_logs_clean();
    // They did go out, once each, to the server.
    let head = heads.lock().unwrap()[0].clone();
    assert!(
        head.starts_with(&format!("GET /feed?token={QUERY_TOKEN}&x=1 HTTP/1.1\r\n")),
        "{head}"
    );
    assert_eq!(header(&head, "host").unwrap(), authority);
    assert_eq!(
        header(&head, "authorization").unwrap(),
        format!("Bearer {BEARER}")
    );
    assert_eq!(head.matches("uthorization").count(), 1, "{head}");
    assert_eq!(
        header(&head, "cookie").unwrap(),
        format!("session={COOKIE}")
    );
    assert_eq!(header(&head, "x-api-key").unwrap(), API_KEY);
    // Without a configured Authorization the user-info is sent, as Basic.
    let (authority, heads) = recording_server();
    let config = Config::builder().proxy_from_env(false).build().unwrap();
    round_trip(&secret_url("ws", &authority), config);
    assert_logs_clean();
    let head = heads.lock().unwrap()[0].clone();
    let basic = base64(format!("{URL_USER}:{URL_PASSWORD}").as_bytes());
    assert_eq!(
        header(&head, "authorization").unwrap(),
        format!("Basic {basic}")
    );
}

#[test]
fn wss_directly_and_through_each_proxy_logs_no_secret() {
    let (port, der) = tls_echo_server();
    let url = secret_url("wss", &format!("localhost:{port}"));
    let tls = || secret_config().root_certificate(der.clone());
    round_trip(&url, tls().build().unwrap());

    let http = http_proxy(Http::Tunnel {
        credentials: Some((PROXY_USER, PROXY_PASSWORD)),
        wrong_status: 407,
        extra: Vec::new(),
    });
    let http_at = format!(
        "http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{}",
        http.port
    );
    round_trip(&url, tls().proxy(&http_at).build().unwrap());
    let (authority, _) = recording_server();
    round_trip(
        &secret_url("ws", &authority),
        secret_config().proxy(&http_at).build().unwrap(),
    );
    // The proxy saw its own credentials but none of the server's: those are inside TLS.
    let seen = http.seen();
    assert!(
        header(&seen[0], "proxy-authorization").is_some(),
        "{seen:?}"
    );
    assert!(!seen[0].contains(BEARER) && !seen[0].contains(QUERY_TOKEN));

    let socks = socks5_proxy(Socks {
        credentials: Some((PROXY_USER, PROXY_PASSWORD)),
        ..Socks::open()
    });
    let socks_at = format!(
        "socks5h://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{}",
        socks.port
    );
    round_trip(&url, tls().proxy(&socks_at).build().unwrap());
    assert_logs_clean();
    // rustls's own trace records (its `logging` feature is on) were among those searched.
    let records = log_records();
    assert!(
        records.iter().any(|r| r.starts_with("TRACE rustls::")),
        "no rustls record: {records:?}"
    );
}

#[test]
fn failures_log_and_report_no_secret() {
    // The server refuses, setting a cookie and asking for credentials.
    let port = tcp_server(|mut stream| {
        if read_request(&mut stream).is_some() {
            let answer = format!(
                "HTTP/1.1 401 Unauthorized\r\nSet-Cookie: id={SET_COOKIE}; HttpOnly\r\n\
                 WWW-Authenticate: Bearer realm=\"feed\"\r\nContent-Length: 0\r\n\r\n"
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let err = fails(
        &secret_url("ws", &format!("127.0.0.1:{port}")),
        secret_config().build().unwrap(),
    );
    let Error::Rejected {
        status, headers, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 401);
    // Hidden from Debug only: the value is there for the caller.
    assert!(headers["set-cookie"].to_str().unwrap().contains(SET_COOKIE));
    assert!(format!("{err:?}").contains("realm"), "{err:?}");

    // Wrong proxy credentials: 407.
    let http = http_proxy(Http::Tunnel {
        credentials: Some((PROXY_USER, "another")),
        wrong_status: 407,
        extra: Vec::new(),
    });
    let http_at = format!(
        "http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{}",
        http.port
    );
    let err = fails(
        &secret_url("ws", "127.0.0.1:1"),
        secret_config().proxy(&http_at).build().unwrap(),
    );
    assert!(
        matches!(err, Error::ProxyRejected { status: 407, .. }),
        "{err:?}"
    );

    // An untrusted certificate.
    let (port, _) = tls_echo_server();
    let err = fails(
        &secret_url("wss", &format!("localhost:{port}")),
        secret_config().build().unwrap(),
    );
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");

    // Nobody listening, through a SOCKS5 proxy with credentials.
    let socks = socks5_proxy(Socks {
        credentials: Some((PROXY_USER, PROXY_PASSWORD)),
        ..Socks::open()
    });
    let socks_at = format!(
        "socks5://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{}",
        socks.port
    );
    fails(
        &secret_url("ws", &format!("127.0.0.1:{}", closed_port())),
        secret_config().proxy(&socks_at).build().unwrap(),
    );
    assert_logs_clean();
}

#[test]
fn debug_of_client_config_builder_and_spawned_shows_no_secret() {
    let (authority, _) = recording_server();
    let url = secret_url("ws", &authority);
    let proxy = format!("http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:1");
    let builder = secret_config()
        .header("Proxy-Authorization", format!("Basic {PROXY_PASSWORD}"))
        .header("Origin", "https://app.test")
        .proxy(&proxy);
    let debug = format!("{builder:?}");
    assert_clean("ConfigBuilder's Debug", &debug);
    // What is not secret still shows.
    assert!(
        debug.contains("app.test") && debug.to_ascii_lowercase().contains("x-api-key"),
        "{debug}"
    );
    let config = builder.build().unwrap();
    let debug = format!("{config:?}");
    assert_clean("Config's Debug", &debug);
    assert!(
        debug.contains("app.test") && debug.contains("127.0.0.1"),
        "{debug}"
    );

    let config = secret_config().build().unwrap();
    let client = common::connect_with_config(&url, config).unwrap();
    let debug = format!("{client:?}");
    assert_clean("Client's Debug", &debug);
    assert!(
        debug.contains(&authority) && debug.contains("/feed"),
        "{debug}"
    );
    // `url()` is the caller's own URL, whole (documented).
    assert_eq!(client.url(), url);

    let mut ws = WebSocket::new(client);
    ws.on_error(|_, _| {});
    assert_clean("WebSocket's Debug", &format!("{ws:?}"));
    let spawned = ws.spawn().unwrap();
    assert_clean("Spawned's Debug", &format!("{spawned:?}"));
    spawned.close().unwrap();
    assert!(spawned.wait_closed(WAIT));
}

#[test]
fn a_password_with_an_unescaped_slash_question_mark_or_hash_is_never_quoted() {
    capture_logs();
    for password in [
        "urlpass-/Q7x",
        "urlpass-?Q7x",
        "urlpass-#Q7x",
        "ab#urlpass-Q7x",
    ] {
        let url = format!("ws://{URL_USER}:{password}@127.0.0.1:1/?token={QUERY_TOKEN}");
        let config = Config::builder().proxy_from_env(false).build().unwrap();
        match common::connect_with_config(&url, config) {
            Err(err) => assert_error_clean(&err),
            // It parsed as something else (a port, a path): nothing of it may show anyway.
            Ok(client) => {
                assert_clean("Client's Debug", &format!("{client:?}"));
                let events = until_close(&client);
                assert_clean("the events", &format!("{events:?}"));
            }
        }
        let proxy = format!(
            "http://{PROXY_USER}:{}@127.0.0.1:3128",
            password.replace("urlpass", "proxypass")
        );
        let err = Config::builder().proxy(&proxy).build().unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
        assert_error_clean(&err);
        let builder = Config::builder().proxy(&proxy);
        assert_clean("ConfigBuilder's Debug", &format!("{builder:?}"));
    }
    // From the environment, where it used to arrive as an Event::Error.
    let server = echo_server();
    for password in ["proxypass-/Tb6", "proxypass-?Tb6", "proxypass-#Tb6"] {
        let value = format!("http://{PROXY_USER}:{password}@127.0.0.1:3128");
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["env_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("NWEBSOCKET_TEST_URL", &server)
            .env("http_proxy", &value)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{value}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_logs_clean_of_partial_passwords();
}

/// The log holds no half of a password either (this test's connections need not log a
/// request, so only that is checked).
fn assert_logs_clean_of_partial_passwords() {
    for record in log_records() {
        assert_clean("a log record", &record);
    }
}

/// One connection in a child process with `http_proxy` set, whose error (returned or as an
/// event) must not quote it; does nothing in a normal run.
#[test]
fn env_child() {
    let Ok(url) = std::env::var("NWEBSOCKET_TEST_URL") else {
        return;
    };
    capture_logs();
    match common::connect(&url) {
        Err(err) => assert_error_clean(&err),
        Ok(client) => {
            let events = until_close(&client);
            assert_clean("the events", &format!("{events:?}"));
        }
    }
    assert_logs_clean_of_partial_passwords();
}
