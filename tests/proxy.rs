//! Proxies on loopback, against our own HTTP CONNECT proxy and SOCKS5 server
//! (tests/proxy/servers.rs): `ws://` and `wss://` through each, HTTP basic auth right, wrong
//! and missing (status and `Proxy-Authenticate` kept), the tunnel's first bytes kept, proxies
//! that close or stall (the connect timeout holds), `socks5://` against `socks5h://` (who
//! resolved the name), RFC 1929, every SOCKS5 error reply, the ws URL's user-info as
//! `Authorization`, the environment read at `connect` (in child processes, so that no test
//! changes its own environment), and credentials absent from errors and from every log record.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;
#[path = "proxy/servers.rs"]
mod servers;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nwebsocket::{Config, ConfigBuilder, Error, Event, Message, ProxyErrorKind};
use servers::*;

/// The password of every credential in this file: no log record and no error may contain it.
const SECRET: &str = "hunter2-Zq9";
const USER: &str = "robot";

/// A builder that ignores the environment (so that a proxy set where the tests run cannot
/// interfere), with this proxy.
fn via(proxy: &str) -> ConfigBuilder {
    capture_logs();
    Config::builder().proxy_from_env(false).proxy(proxy)
}

/// Connects, checks an echo of text and binary, closes cleanly and checks the whole contract.
fn round_trip(url: &str, config: Config) {
    let ws = common::connect_with_config(url, config).unwrap();
    expect_open(&ws);
    ws.send_text("through the proxy").unwrap();
    ws.send_binary(vec![0u8, 1, 2, 255]).unwrap();
    for want in [
        Message::Text("through the proxy".into()),
        Message::Binary(vec![0u8, 1, 2, 255].into()),
    ] {
        match next(&ws) {
            Event::Message(got) => assert!(got == want, "{got:?}"),
            other => panic!("expected an echo, got {other:?}"),
        }
    }
    ws.close().unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1000, true), "{events:?}");
}

/// A connection that fails before it opens: one Error, then Close 1006. Returns the error
/// after checking that no credential is in its message, its `Debug` or its sources.
fn fails(url: &str, config: Config) -> Error {
    let ws = common::connect_with_config(url, config).unwrap();
    let mut events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false), "{events:?}");
    assert_eq!(events.len(), 2, "{events:?}");
    let Event::Error(err) = events.swap_remove(0) else {
        panic!("expected Error first: {events:?}")
    };
    assert_no_secret(&err);
    err
}

fn assert_no_secret(err: &Error) {
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(" / {cause} {cause:?}"));
        source = cause.source();
    }
    assert!(!text.contains(SECRET), "a credential in the error: {text}");
}

fn proxy_kind(err: &Error) -> ProxyErrorKind {
    match err {
        Error::Proxy { kind, .. } => *kind,
        other => panic!("expected Error::Proxy, got {other:?}"),
    }
}

fn http_url(proxy: &Proxy<String>) -> String {
    format!("http://127.0.0.1:{}", proxy.port)
}

fn authed(scheme: &str, port: u16, password: &str) -> String {
    format!("{scheme}://{USER}:{password}@127.0.0.1:{port}")
}

// ---------------------------------------------------------------------------------------------
// HTTP CONNECT

#[test]
fn http_connect_tunnels_ws_and_never_sends_an_absolute_uri() {
    let server = echo_server();
    let proxy = http_proxy(Http::open());
    round_trip(&server, via(&http_url(&proxy)).build().unwrap());
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let port = server.trim_end_matches('/').rsplit(':').next().unwrap();
    assert!(
        seen[0].starts_with(&format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n")),
        "{seen:?}"
    );
    assert_eq!(
        header(&seen[0], "host").unwrap(),
        format!("127.0.0.1:{port}")
    );
    assert!(header(&seen[0], "proxy-authorization").is_none());
}

#[test]
fn http_connect_tunnels_wss_with_tls_end_to_end() {
    let (port, der) = tls_echo_server();
    let proxy = http_proxy(Http::open());
    let config = || {
        via(&http_url(&proxy))
            .root_certificate(der.clone())
            .platform_roots(false)
            .build()
            .unwrap()
    };
    // By name: the proxy resolves it, TLS verifies it (SNI localhost) inside the tunnel.
    round_trip(&format!("wss://localhost:{port}/"), config());
    round_trip(&format!("wss://127.0.0.1:{port}/"), config());
    let seen = proxy.seen();
    assert!(
        seen[0].starts_with(&format!("CONNECT localhost:{port} ")),
        "{seen:?}"
    );
    assert!(
        seen[1].starts_with(&format!("CONNECT 127.0.0.1:{port} ")),
        "{seen:?}"
    );
}

fn guarded(wrong_status: u16) -> Proxy<String> {
    http_proxy(Http::Tunnel {
        credentials: Some((USER, SECRET)),
        wrong_status,
        extra: Vec::new(),
    })
}

#[test]
fn http_basic_auth_right_wrong_and_missing() {
    let server = echo_server();
    let proxy = guarded(401);
    round_trip(
        &server,
        via(&authed("http", proxy.port, SECRET)).build().unwrap(),
    );
    let seen = proxy.seen();
    assert_eq!(
        header(&seen[0], "proxy-authorization").unwrap(),
        format!("Basic {}", base64(format!("{USER}:{SECRET}").as_bytes()))
    );

    // Wrong: this proxy answers 401, as tinyproxy does.
    let wrong = format!("http://{USER}:wrong-{SECRET}@127.0.0.1:{}", proxy.port);
    let err = fails(&server, via(&wrong).build().unwrap());
    let Error::ProxyRejected { status, headers } = &err else {
        panic!("expected ProxyRejected, got {err:?}")
    };
    assert_eq!(*status, 401);
    assert_eq!(headers["proxy-authenticate"], "Basic realm=\"test\"");

    // Missing: 407, with Proxy-Authenticate.
    let err = fails(&server, via(&http_url(&proxy)).build().unwrap());
    let Error::ProxyRejected { status, headers } = &err else {
        panic!("expected ProxyRejected, got {err:?}")
    };
    assert_eq!(*status, 407);
    assert_eq!(headers["proxy-authenticate"], "Basic realm=\"test\"");
    assert_eq!(
        err.to_string(),
        "the proxy refused the tunnel with HTTP status 407"
    );
}

#[test]
fn http_credentials_are_percent_decoded() {
    let server = echo_server();
    let proxy = http_proxy(Http::Tunnel {
        credentials: Some(("r@bot", "p:ss w%rd")),
        wrong_status: 407,
        extra: Vec::new(),
    });
    let url = format!("http://r%40bot:p%3Ass%20w%25rd@127.0.0.1:{}", proxy.port);
    round_trip(&server, via(&url).build().unwrap());
}

#[test]
fn http_other_refusals_keep_their_status() {
    let server = echo_server();
    for status in [403, 502, 503] {
        let answer = format!("HTTP/1.1 {status} No\r\nX-Why: policy\r\nContent-Length: 0\r\n\r\n");
        let proxy = http_proxy(Http::Answer(answer.into_bytes()));
        let err = fails(&server, via(&http_url(&proxy)).build().unwrap());
        let Error::ProxyRejected {
            status: got,
            headers,
        } = &err
        else {
            panic!("expected ProxyRejected, got {err:?}")
        };
        assert_eq!(*got, status);
        assert_eq!(headers["x-why"], "policy");
    }
}

#[test]
fn bytes_after_the_200_head_belong_to_the_tunnel() {
    // ws: the server's (refusing) answer comes in the same packet as the proxy's 200. Were it
    // lost, the attempt would wait for it until the connect timeout.
    let server = echo_server();
    let mut answer = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
    answer.extend_from_slice(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope");
    let proxy = http_proxy(Http::Answer(answer));
    let err = fails(&server, via(&http_url(&proxy)).build().unwrap());
    let Error::Rejected { status, .. } = &err else {
        panic!("expected Rejected, got {err:?}")
    };
    assert_eq!(*status, 403);

    // wss: a TLS alert record (handshake_failure) right after the 200 head reaches rustls.
    let mut answer = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
    answer.extend_from_slice(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
    let proxy = http_proxy(Http::Answer(answer));
    let err = fails(
        "wss://localhost:1/",
        via(&http_url(&proxy)).build().unwrap(),
    );
    assert!(
        matches!(
            err,
            Error::Tls {
                kind: nwebsocket::TlsErrorKind::Alert(40),
                ..
            }
        ),
        "{err:?}"
    );

    // And through a real tunnel: the relay writes the first server bytes with the head.
    let proxy = http_proxy(Http::Tunnel {
        credentials: None,
        wrong_status: 407,
        extra: Vec::new(),
    });
    round_trip(&server, via(&http_url(&proxy)).build().unwrap());
}

#[test]
fn an_http_proxy_that_closes_or_speaks_nonsense() {
    let server = echo_server();
    let proxy = http_proxy(Http::Close);
    let err = fails(&server, via(&http_url(&proxy)).build().unwrap());
    assert_eq!(proxy_kind(&err), ProxyErrorKind::Disconnected, "{err:?}");
    let proxy = http_proxy(Http::Answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()));
    let err = fails(&server, via(&http_url(&proxy)).build().unwrap());
    assert_eq!(proxy_kind(&err), ProxyErrorKind::Protocol, "{err:?}");
    // Nothing listens: a connect error that names the proxy's address.
    let port = closed_port();
    let err = fails(
        &server,
        via(&format!("http://127.0.0.1:{port}")).build().unwrap(),
    );
    assert!(matches!(err, Error::Connect(_)), "{err:?}");
    let why = std::error::Error::source(&err).unwrap().to_string();
    assert!(why.contains(&format!("127.0.0.1:{port}")), "{why}");
}

/// A stalling proxy: the connect timeout ends the attempt, in the proxy stage, in time.
fn stalls(proxy: &str) {
    let timeout = Duration::from_millis(400);
    let config = via(proxy).connect_timeout(timeout).build().unwrap();
    let started = Instant::now();
    let err = fails(&echo_server(), config);
    let took = started.elapsed();
    assert!(
        matches!(
            err,
            Error::Timeout {
                kind: nwebsocket::TimeoutKind::Connect,
                during: "in the proxy handshake"
            }
        ),
        "{err:?}"
    );
    assert!(took >= timeout, "{took:?}");
    assert!(took < timeout + Duration::from_secs(3), "{took:?}");
}

#[test]
fn a_stalling_http_proxy_hits_the_connect_timeout() {
    let proxy = http_proxy(Http::Stall);
    stalls(&http_url(&proxy));
}

#[test]
fn a_stalling_socks5_proxy_hits_the_connect_timeout() {
    let proxy = socks5_proxy(Socks {
        stall: true,
        ..Socks::open()
    });
    stalls(&format!("socks5h://127.0.0.1:{}", proxy.port));
}

// ---------------------------------------------------------------------------------------------
// SOCKS5

#[test]
fn socks5_resolves_here_and_socks5h_at_the_proxy() {
    let server = echo_server();
    let port: u16 = server
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let url = format!("ws://localhost:{port}/");
    let proxy = socks5_proxy(Socks::open());

    round_trip(
        &url,
        via(&format!("socks5://127.0.0.1:{}", proxy.port))
            .build()
            .unwrap(),
    );
    round_trip(
        &url,
        via(&format!("socks5h://127.0.0.1:{}", proxy.port))
            .build()
            .unwrap(),
    );
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    // socks5://: the request carries the address this client resolved localhost to.
    assert!(
        matches!(&seen[0], Destination::Ip(ip, p) if ip.is_loopback() && *p == port),
        "{seen:?}"
    );
    // socks5h://: the name itself.
    assert_eq!(seen[1], Destination::Name("localhost".into(), port));
}

#[test]
fn socks5_tunnels_wss() {
    let (port, der) = tls_echo_server();
    let proxy = socks5_proxy(Socks::open());
    for scheme in ["socks5", "socks5h"] {
        let config = via(&format!("{scheme}://127.0.0.1:{}", proxy.port))
            .root_certificate(der.clone())
            .platform_roots(false)
            .build()
            .unwrap();
        round_trip(&format!("wss://localhost:{port}/"), config);
    }
}

#[test]
fn socks5_username_and_password_right_wrong_and_missing() {
    let server = echo_server();
    let proxy = socks5_proxy(Socks {
        credentials: Some((USER, SECRET)),
        ..Socks::open()
    });
    round_trip(
        &server,
        via(&authed("socks5h", proxy.port, SECRET)).build().unwrap(),
    );
    let wrong = authed("socks5h", proxy.port, &format!("wrong-{SECRET}"));
    let err = fails(&server, via(&wrong).build().unwrap());
    assert_eq!(proxy_kind(&err), ProxyErrorKind::AuthFailed, "{err:?}");
    let missing = format!("socks5h://127.0.0.1:{}", proxy.port);
    let err = fails(&server, via(&missing).build().unwrap());
    assert_eq!(proxy_kind(&err), ProxyErrorKind::AuthRequired, "{err:?}");
}

#[test]
fn every_socks5_error_reply_is_its_own_kind() {
    let server = echo_server();
    let kinds = [
        (1, ProxyErrorKind::GeneralFailure),
        (2, ProxyErrorKind::NotAllowed),
        (3, ProxyErrorKind::NetworkUnreachable),
        (4, ProxyErrorKind::HostUnreachable),
        (5, ProxyErrorKind::ConnectionRefused),
        (6, ProxyErrorKind::TtlExpired),
        (7, ProxyErrorKind::CommandNotSupported),
        (8, ProxyErrorKind::AddressTypeNotSupported),
        (9, ProxyErrorKind::Reply(9)),
        (255, ProxyErrorKind::Reply(255)),
    ];
    for (code, kind) in kinds {
        let proxy = socks5_proxy(Socks {
            reply: code,
            ..Socks::open()
        });
        let err = fails(
            &server,
            via(&format!("socks5://127.0.0.1:{}", proxy.port))
                .build()
                .unwrap(),
        );
        assert_eq!(proxy_kind(&err), kind, "reply {code}: {err:?}");
        assert!(err.to_string().contains(&format!("reply {code}")), "{err}");
    }
}

#[test]
fn a_socks5_proxy_that_closes() {
    let proxy = socks5_proxy(Socks {
        close_after_greeting: true,
        ..Socks::open()
    });
    let err = fails(
        &echo_server(),
        via(&format!("socks5h://127.0.0.1:{}", proxy.port))
            .build()
            .unwrap(),
    );
    assert_eq!(proxy_kind(&err), ProxyErrorKind::Disconnected, "{err:?}");
}

#[test]
fn socks5_cannot_resolve_a_name_here_that_does_not_exist() {
    let proxy = socks5_proxy(Socks::open());
    let config = via(&format!("socks5://127.0.0.1:{}", proxy.port))
        .build()
        .unwrap();
    let err = fails("ws://no-such-host.invalid/", config);
    assert!(matches!(err, Error::Connect(_)), "{err:?}");
    assert!(proxy.seen().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The ws URL's user-info

/// A server that records the upgrade request's head, then echoes.
fn recording_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
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

#[test]
fn user_info_is_sent_as_basic_authorization_unless_a_header_sets_it() {
    capture_logs();
    let (host, heads) = recording_server();
    let url = format!("ws://{USER}:{SECRET}@{host}/feed");
    round_trip(
        &url,
        Config::builder().proxy_from_env(false).build().unwrap(),
    );
    let with_header = Config::builder()
        .proxy_from_env(false)
        .header("Authorization", "Bearer token-1")
        .build()
        .unwrap();
    round_trip(&url, with_header);
    // Through a proxy too: the header goes inside the tunnel, to the server.
    let proxy = http_proxy(Http::open());
    round_trip(&url, via(&http_url(&proxy)).build().unwrap());

    let heads = heads.lock().unwrap().clone();
    let basic = format!("Basic {}", base64(format!("{USER}:{SECRET}").as_bytes()));
    assert_eq!(header(&heads[0], "authorization").unwrap(), basic);
    assert_eq!(
        header(&heads[1], "authorization").unwrap(),
        "Bearer token-1"
    );
    assert_eq!(heads[1].matches("uthorization").count(), 1, "{}", heads[1]);
    assert_eq!(header(&heads[2], "authorization").unwrap(), basic);
    // Host has no user-info.
    assert_eq!(header(&heads[0], "host").unwrap(), host);
    assert!(header(&proxy.seen()[0], "authorization").is_none());
}

// ---------------------------------------------------------------------------------------------
// Credentials in logs

#[test]
fn no_log_record_holds_a_credential() {
    capture_logs();
    let server = echo_server();
    // Success and failure through each kind of proxy, with credentials everywhere.
    let http = guarded(407);
    round_trip(
        &server,
        via(&authed("http", http.port, SECRET)).build().unwrap(),
    );
    let wrong = format!("http://{USER}:x{SECRET}@127.0.0.1:{}", http.port);
    fails(&server, via(&wrong).build().unwrap());
    let socks = socks5_proxy(Socks {
        credentials: Some((USER, SECRET)),
        ..Socks::open()
    });
    round_trip(
        &server,
        via(&authed("socks5", socks.port, SECRET)).build().unwrap(),
    );
    fails(
        &server,
        via(&authed("socks5", socks.port, &format!("x{SECRET}")))
            .build()
            .unwrap(),
    );
    let (host, _) = recording_server();
    round_trip(
        &format!("ws://{USER}:{SECRET}@{host}/"),
        via(&authed("socks5h", socks.port, SECRET)).build().unwrap(),
    );
    // An invalid proxy URL is refused without quoting it whole.
    let Err(err) = Config::builder()
        .proxy(format!("https://{USER}:{SECRET}@proxy"))
        .build()
    else {
        panic!("accepted an https proxy")
    };
    assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
    assert_no_secret(&err);

    let records = log_records();
    assert!(
        records.iter().any(|r| r.contains("TCP connected")),
        "the logger caught nothing: {records:?}"
    );
    // tungstenite logs the whole upgrade request at trace level: it must not hold the URL's
    // credentials either.
    assert!(
        records.iter().any(|r| r.contains("Request:")),
        "{records:?}"
    );
    let basic = base64(format!("{USER}:{SECRET}").as_bytes());
    for record in &records {
        assert!(
            !record.contains(SECRET) && !record.contains(&basic),
            "a credential in a log record: {record}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The environment, read at connect: each case runs in a child process of this test binary
// (`env_child`), so that no test changes the environment of this one.

/// Runs `env_child` with exactly these proxy variables, connecting to `url`; it must end
/// with `expect` ("open" or "invalid").
fn child(url: &str, vars: &[(&str, String)], ignore_env: bool, expect: &str) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["env_child", "--exact", "--nocapture", "--test-threads=1"]);
    for name in PROXY_VARIABLES {
        command.env_remove(name);
    }
    command.env_remove("NWEBSOCKET_TEST_PROXY");
    command
        .env("NWEBSOCKET_TEST_URL", url)
        .env("NWEBSOCKET_TEST_EXPECT", expect);
    if ignore_env {
        command.env("NWEBSOCKET_TEST_IGNORE_ENV", "1");
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "child with {vars:?} expecting {expect}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One connection in a child process, checked against `NWEBSOCKET_TEST_EXPECT`; does nothing
/// in a normal run.
#[test]
fn env_child() {
    let Ok(url) = std::env::var("NWEBSOCKET_TEST_URL") else {
        return;
    };
    let expect = std::env::var("NWEBSOCKET_TEST_EXPECT").unwrap();
    let mut config =
        Config::builder().proxy_from_env(std::env::var_os("NWEBSOCKET_TEST_IGNORE_ENV").is_none());
    if let Ok(proxy) = std::env::var("NWEBSOCKET_TEST_PROXY") {
        config = config.proxy(proxy);
    }
    let config = config.build().unwrap();
    if expect == "open" {
        round_trip(&url, config);
    } else {
        // Read on this thread at connect, and returned there: no attempt could succeed.
        let err = common::connect_with_config(&url, config).unwrap_err();
        assert_no_secret(&err);
        let Error::InvalidConfig(why) = &err else {
            panic!("expected InvalidConfig, got {err:?}")
        };
        assert!(why.starts_with(&expect), "{why}");
    }
}

#[test]
fn the_environment_is_read_at_connect_by_curls_rules() {
    let server = echo_server();
    let http = http_proxy(Http::open());
    let socks = socks5_proxy(Socks::open());
    let http_at = http_url(&http);
    let socks_at = format!("socks5h://127.0.0.1:{}", socks.port);
    let counts = || (http.seen().len(), socks.seen().len());
    let s = |v: &str| v.to_owned();
    let mut want = (0, 0);
    let mut check = |vars: &[(&str, String)], ignore: bool, via_http: usize, via_socks: usize| {
        child(&server, vars, ignore, "open");
        want.0 += via_http;
        want.1 += via_socks;
        assert_eq!(counts(), want, "{vars:?}");
    };
    // ws uses http_proxy (lowercase first), then HTTP_PROXY; an empty value is unset.
    check(&[("http_proxy", http_at.clone())], false, 1, 0);
    check(
        &[("http_proxy", s("")), ("HTTP_PROXY", http_at.clone())],
        false,
        1,
        0,
    );
    check(
        &[
            ("http_proxy", http_at.clone()),
            ("HTTP_PROXY", socks_at.clone()),
        ],
        false,
        1,
        0,
    );
    // ws never uses https_proxy; all_proxy is the fallback.
    check(&[("https_proxy", http_at.clone())], false, 0, 0);
    check(
        &[
            ("https_proxy", http_at.clone()),
            ("ALL_PROXY", socks_at.clone()),
        ],
        false,
        0,
        1,
    );
    check(
        &[
            ("all_proxy", socks_at.clone()),
            ("ALL_PROXY", http_at.clone()),
        ],
        false,
        0,
        1,
    );
    // no_proxy, then NO_PROXY: by name, by IP, by CIDR, by port, and *.
    for no_proxy in ["127.0.0.1", "127.0.0.0/8", "*", "localhost,127.0.0.1"] {
        check(
            &[("http_proxy", http_at.clone()), ("no_proxy", s(no_proxy))],
            false,
            0,
            0,
        );
        check(
            &[("http_proxy", http_at.clone()), ("NO_PROXY", s(no_proxy))],
            false,
            0,
            0,
        );
    }
    check(
        &[
            ("http_proxy", http_at.clone()),
            ("no_proxy", s("127.0.0.1:1")),
        ],
        false,
        1,
        0,
    );
    check(
        &[
            ("http_proxy", http_at.clone()),
            ("no_proxy", s("example.com")),
        ],
        false,
        1,
        0,
    );
    // The switch that ignores the environment.
    check(
        &[("http_proxy", http_at.clone()), ("all_proxy", socks_at)],
        true,
        0,
        0,
    );
    // A value that is not a proxy fails `connect`, without quoting its credentials.
    child(
        &server,
        &[(
            "http_proxy",
            format!("socks4://{USER}:{SECRET}@127.0.0.1:1"),
        )],
        false,
        "http_proxy: the proxy scheme must be",
    );
}

#[test]
fn an_explicit_proxy_wins_over_the_environment() {
    let server = echo_server();
    let http = http_proxy(Http::open());
    let socks = socks5_proxy(Socks::open());
    let vars = [
        ("http_proxy", format!("socks5h://127.0.0.1:{}", socks.port)),
        ("NWEBSOCKET_TEST_PROXY", http_url(&http)),
    ];
    child(&server, &vars, false, "open");
    assert_eq!((http.seen().len(), socks.seen().len()), (1, 0));
    // Even where no_proxy lists the host: no_proxy is for the environment's proxies.
    let vars = [
        ("no_proxy", "*".to_owned()),
        ("NWEBSOCKET_TEST_PROXY", http_url(&http)),
    ];
    child(&server, &vars, false, "open");
    assert_eq!((http.seen().len(), socks.seen().len()), (2, 0));
}
