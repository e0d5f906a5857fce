//! Interop against servers no one here wrote: Python `websockets`, Node `ws`, nginx terminating
//! TLS (certificates from a private CA made in the run), and the proxies tinyproxy (HTTP
//! CONNECT with BasicAuth: ws and wss, right, wrong and missing credentials) and dante
//! (SOCKS5, `socks5://` and `socks5h://`, with and without RFC 1929 auth, ws and wss); with
//! the `platform-verifier` feature, nginx's certificate through the OS verifier.
//! Every test is ignored in a plain `cargo test`; `.ci/interop.sh` installs the peers and runs
//! them with `--ignored`. A peer that cannot be found or started fails its test. The proxy
//! environment variables are covered by tests/proxy.rs (their rules do not depend on which
//! proxy answers).
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;
#[path = "interop/peers.rs"]
mod peers;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use nwebsocket::{Client, CloseEvent, Config, Error, Event, Message, ProxyErrorKind, TlsErrorKind};
use peers::*;
use rcgen::{CertificateParams, CertifiedIssuer, IsCa, KeyPair};

// ---------------------------------------------------------------------------------------------
// Peers

/// The Python `websockets` sync server (tests/interop/websockets_server.py).
fn python_websockets() -> Peer {
    let mut command = Command::new("python3");
    command
        .arg("-u")
        .arg(support_dir().join("websockets_server.py"));
    start_announcing("python-websockets", command)
}

/// The Node `ws` server (tests/interop/node/server.js; `npm ci` in that folder installs `ws`).
fn node_ws() -> Peer {
    let node_dir = support_dir().join("node");
    assert!(
        node_dir.join("node_modules/ws").is_dir(),
        "Node ws is not installed: run `npm ci` in {}",
        node_dir.display()
    );
    let mut command = Command::new("node");
    command.arg(node_dir.join("server.js"));
    start_announcing("node-ws", command)
}

/// A private CA with a server certificate for localhost and 127.0.0.1 and a client
/// certificate, written as PEM files into `dir`: ca.pem, server.pem, server.key, client.pem,
/// client.key.
fn write_pki(dir: &Path) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "nwebsocket interop CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (name, sans) in [
        (
            "server",
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        ),
        ("client", vec!["robot-7".to_owned()]),
    ] {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.signed_by(&key, &ca).unwrap();
        fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

/// nginx terminating TLS on 127.0.0.1 in front of `upstream` (a ws:// echo peer), with the
/// private CA's certificates in its folder. With `verify_client`, `ssl_verify_client on`.
fn nginx(upstream: &Peer, verify_client: bool) -> Peer {
    let dir = scratch("nginx");
    write_pki(&dir);
    let port = free_port();
    let d = dir.display();
    let client_auth = if verify_client {
        format!("ssl_client_certificate {d}/ca.pem;\n        ssl_verify_client on;")
    } else {
        String::new()
    };
    let conf = format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        listen 127.0.0.2:{port} ssl;
        ssl_certificate {d}/server.pem;
        ssl_certificate_key {d}/server.key;
        {client_auth}
        location / {{
            proxy_pass http://127.0.0.1:{upstream}/echo;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 60s;
        }}
    }}
}}
"#,
        upstream = upstream.port
    );
    fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut command = Command::new("nginx");
    command
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg("stderr")
        .arg("-c")
        .arg(dir.join("nginx.conf"));
    start_on_port("nginx", command, port, dir)
}

/// The BasicAuth credentials of [`tinyproxy`].
const PROXY_USER: &str = "interop";
const PROXY_PASSWORD: &str = "s3cret-pw";

/// tinyproxy on 127.0.0.1 as an HTTP CONNECT proxy with `BasicAuth` ([`PROXY_USER`]).
fn tinyproxy() -> Peer {
    let dir = scratch("tinyproxy");
    let port = free_port();
    let conf = format!(
        "User nobody\nGroup nogroup\nPort {port}\nListen 127.0.0.1\nTimeout 60\n\
         LogLevel Info\nMaxClients 16\nAllow 127.0.0.1\nBasicAuth {PROXY_USER} {PROXY_PASSWORD}\n"
    );
    fs::write(dir.join("tinyproxy.conf"), conf).unwrap();
    let mut command = Command::new("tinyproxy");
    command.arg("-d").arg("-c").arg(dir.join("tinyproxy.conf"));
    start_on_port("tinyproxy", command, port, dir)
}

/// The system account that dante's `username` method checks (RFC 1929 against the system's
/// passwords); `.ci/interop.sh` creates it with this password.
const SOCKS_USER: &str = "nwsproxy";
const SOCKS_PASSWORD: &str = "s3cret-pw";

/// dante (`danted`) on 127.0.0.1 as a SOCKS5 server, with no authentication or with
/// username/password ([`SOCKS_USER`]).
fn dante(auth: bool) -> Peer {
    let dir = scratch("dante");
    let port = free_port();
    let method = if auth { "username" } else { "none" };
    let conf = format!(
        "logoutput: stderr\n\
         internal: 127.0.0.1 port = {port}\n\
         external: 127.0.0.1\n\
         socksmethod: {method}\n\
         clientmethod: none\n\
         user.privileged: root\n\
         user.unprivileged: nobody\n\
         client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
         socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n"
    );
    fs::write(dir.join("danted.conf"), conf).unwrap();
    let mut command = Command::new("danted");
    command
        .arg("-f")
        .arg(dir.join("danted.conf"))
        .arg("-N")
        .arg("1");
    start_on_port("dante", command, port, dir)
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Connects, sends `outgoing`, expects them echoed in order, closes with 1000 and checks the
/// whole event contract: Open, the echoes, one clean Close, no Error, the end of the stream.
fn echo_round_trip(url: &str, config: Config, outgoing: Vec<Message>) {
    let ws = Client::connect_with_config(url, config).unwrap();
    expect_open(&ws);
    for message in &outgoing {
        ws.send(message.clone()).unwrap();
    }
    for expected in &outgoing {
        match next(&ws) {
            Event::Message(got) => assert!(got == *expected, "echo differs from what was sent"),
            other => panic!("expected an echo, got {other:?}"),
        }
    }
    ws.close().unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert!(messages(&events).is_empty(), "{events:?}");
    assert_eq!((close.code, close.was_clean), (1000, true), "{events:?}");
}

fn text_and_binary() -> Vec<Message> {
    vec![
        Message::Text("hello, interop".into()),
        Message::Binary(vec![0u8, 1, 2, 255].into()),
        Message::Text("ünïcödé ✓".into()),
        Message::Binary(vec![7u8; 70_000].into()),
        Message::Text(String::new().into()),
    ]
}

/// The events of a connection that the server ends: everything up to the end of the stream.
fn server_ends(url: &str, config: Config) -> (Vec<Event>, CloseEvent) {
    let ws = Client::connect_with_config(url, config).unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    (events, close)
}

/// A connection that fails before it opens: no Open, one Error, Close 1006 unclean.
fn fails_before_open(url: &str, config: Config) -> Error {
    let ws = Client::connect_with_config(url, config).unwrap();
    let mut events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false), "{events:?}");
    assert!(
        !matches!(events.first(), Some(Event::Open(_))),
        "{events:?}"
    );
    assert_eq!(events.len(), 2, "{events:?}");
    match events.swap_remove(0) {
        Event::Error(err) => err,
        other => panic!("expected Error, got {other:?}"),
    }
}

fn trusting_ca(dir: &Path) -> nwebsocket::ConfigBuilder {
    Config::builder().root_certificates_pem_file(dir.join("ca.pem"))
}

// ---------------------------------------------------------------------------------------------
// Python websockets

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn python_websockets_echo() {
    let peer = python_websockets();
    echo_round_trip(
        &peer.url("ws", "/echo"),
        Config::default(),
        text_and_binary(),
    );
}

/// JSON-like messages that compress well, small and large.
fn compressible() -> Vec<Message> {
    let record = r#"{"symbol":"BTC-USD","price":"42000.10","size":"0.01","side":"buy"},"#;
    vec![
        Message::Text(record.into()),
        Message::Text(record.repeat(20).into()),
        Message::Binary(record.repeat(3000).into_bytes().into()),
        Message::Text(record.repeat(50).into()),
        Message::Text("x".into()),
    ]
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn python_websockets_agrees_to_deflate_and_echoes_compressed() {
    let peer = python_websockets();
    let ws = Client::connect(&peer.url("ws", "/echo")).unwrap();
    let Event::Open(open) = next(&ws) else {
        panic!("no Open")
    };
    assert!(
        open.extensions().starts_with("permessage-deflate"),
        "{:?}",
        open.extensions()
    );
    drop(ws);
    let mut messages = compressible();
    messages.extend(text_and_binary());
    echo_round_trip(&peer.url("ws", "/echo"), Config::default(), messages);
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn python_websockets_rejects_the_handshake() {
    let peer = python_websockets();
    let err = fails_before_open(&peer.url("ws", "/reject"), Config::default());
    let Error::Rejected { status, body, .. } = &err else {
        panic!("expected Rejected, got {err:?}")
    };
    assert_eq!(*status, 403);
    assert!(
        String::from_utf8_lossy(body).contains("forbidden: no token"),
        "{err:?}"
    );
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn python_websockets_closes_with_code_and_reason() {
    let peer = python_websockets();
    let (events, close) = server_ends(&peer.url("ws", "/close/4001/see-you"), Config::default());
    assert!(matches!(events.first(), Some(Event::Open(_))), "{events:?}");
    let got = messages(&events);
    assert_eq!(got.len(), 1, "{events:?}");
    assert_eq!(got[0].as_text(), Some("bye"));
    assert_eq!(
        (close.code, close.reason.as_str(), close.was_clean),
        (4001, "see-you", true),
        "{events:?}; peer log:\n{}",
        peer.log()
    );
}

// ---------------------------------------------------------------------------------------------
// Node ws

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn node_ws_echo_text_and_binary() {
    let peer = node_ws();
    echo_round_trip(
        &peer.url("ws", "/echo"),
        Config::default(),
        text_and_binary(),
    );
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn node_ws_with_deflate_and_12_bit_server_windows() {
    let peer = node_ws();
    let url = peer.url("ws", "/deflate12/echo");
    let ws = Client::connect(&url).unwrap();
    let Event::Open(open) = next(&ws) else {
        panic!("no Open")
    };
    assert!(
        open.extensions().contains("server_max_window_bits=12"),
        "{:?}",
        open.extensions()
    );
    drop(ws);
    let mut messages = compressible();
    messages.extend(text_and_binary());
    echo_round_trip(&url, Config::default(), messages.clone());
    // Our side without context takeover and with a small window of its own.
    let config = Config::builder()
        .deflate_client_no_context_takeover(true)
        .deflate_client_max_window_bits(9)
        .build()
        .unwrap();
    echo_round_trip(&url, config, messages);
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn node_ws_echo_of_a_16_mib_message() {
    let peer = node_ws();
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    let config = Config::builder()
        .max_frame_size(32 << 20)
        .max_message_size(32 << 20)
        .build()
        .unwrap();
    echo_round_trip(
        &peer.url("ws", "/echo"),
        config,
        vec![
            Message::Binary(big.into()),
            Message::Text("x".repeat(16 << 20).into()),
        ],
    );
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn node_ws_server_close_codes() {
    let peer = node_ws();
    for (code, reason) in [
        (1000, "done"),
        (1001, "going-away"),
        (1008, "policy"),
        (1011, "oops"),
        (4999, ""),
    ] {
        let url = peer.url("ws", &format!("/close/{code}/{reason}"));
        let (events, close) = server_ends(&url, Config::default());
        assert!(matches!(events.first(), Some(Event::Open(_))), "{events:?}");
        assert_eq!(messages(&events).len(), 1, "{events:?}");
        assert_eq!(
            (close.code, close.reason.as_str(), close.was_clean),
            (code, reason, true),
            "{events:?}"
        );
    }
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn node_ws_terminate_is_unclean_with_an_error() {
    let peer = node_ws();
    let (events, close) = server_ends(&peer.url("ws", "/terminate"), Config::default());
    assert!(matches!(events.first(), Some(Event::Open(_))), "{events:?}");
    assert_eq!(messages(&events).len(), 1, "{events:?}");
    assert_eq!((close.code, close.was_clean), (1006, false), "{events:?}");
    assert!(
        matches!(error_of(&events), Some(Error::Io(_))),
        "{events:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// nginx terminating TLS, certificates from a private CA made in this run

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn nginx_tls_verified_with_the_private_ca() {
    let upstream = python_websockets();
    let nginx = nginx(&upstream, false);
    let config = || trusting_ca(&nginx.dir).build().unwrap();
    let port = nginx.port;
    echo_round_trip(
        &format!("wss://localhost:{port}/"),
        config(),
        text_and_binary(),
    );
    // By IP address: verified against the certificate's IP SAN.
    echo_round_trip(&nginx.url("wss", "/"), config(), text_and_binary());
    // Only the private CA trusted.
    let only_ca = trusting_ca(&nginx.dir)
        .platform_roots(false)
        .build()
        .unwrap();
    echo_round_trip(&nginx.url("wss", "/"), only_ca, text_and_binary());
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn nginx_tls_wrong_name() {
    let upstream = python_websockets();
    let nginx = nginx(&upstream, false);
    // The certificate names localhost and 127.0.0.1; nginx listens on 127.0.0.2 too.
    let config = trusting_ca(&nginx.dir).build().unwrap();
    let err = fails_before_open(&format!("wss://127.0.0.2:{}/", nginx.port), config);
    assert!(
        matches!(
            err,
            Error::Tls {
                kind: TlsErrorKind::WrongName,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn nginx_tls_untrusted() {
    let upstream = python_websockets();
    let nginx = nginx(&upstream, false);
    let err = fails_before_open(&nginx.url("wss", "/"), Config::default());
    assert!(
        matches!(
            err,
            Error::Tls {
                kind: TlsErrorKind::UnknownIssuer,
                ..
            }
        ),
        "{err:?}"
    );
}

/// nginx's certificate through the OS verifier (feature `platform-verifier`): trusted when
/// `SSL_CERT_FILE` names the private CA, refused when it names another CA. Each case runs in
/// a child process of this binary (`platform_verifier_child`), so that no test changes its own
/// environment.
#[cfg(feature = "platform-verifier")]
#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn nginx_tls_through_the_platform_verifier() {
    let upstream = python_websockets();
    let nginx = nginx(&upstream, false);
    // Another CA, with a name of its own (CAs that share a name look like one issuer with a
    // bad signature, not an unknown one).
    let other = scratch("other-ca");
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "another CA");
    let another = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    fs::write(other.join("ca.pem"), another.pem()).unwrap();
    for (ca_dir, expect) in [(&nginx.dir, "echo"), (&other, "unknown-issuer")] {
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["platform_verifier_child", "--exact", "--nocapture"])
            .args(["--test-threads=1", "--include-ignored"])
            .env("SSL_CERT_FILE", ca_dir.join("ca.pem"))
            .env_remove("SSL_CERT_DIR")
            .env("NWEBSOCKET_TEST_URL", nginx.url("wss", "/"))
            .env("NWEBSOCKET_TEST_EXPECT", expect)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child expecting {expect}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// One connection with the platform verifier in a child process, checked against
/// `NWEBSOCKET_TEST_EXPECT`; does nothing in a normal run.
#[cfg(feature = "platform-verifier")]
#[test]
fn platform_verifier_child() {
    let Ok(url) = std::env::var("NWEBSOCKET_TEST_URL") else {
        return;
    };
    let config = || Config::builder().platform_verifier(true).build().unwrap();
    match std::env::var("NWEBSOCKET_TEST_EXPECT").unwrap().as_str() {
        "echo" => echo_round_trip(&url, config(), text_and_binary()),
        _ => {
            let err = fails_before_open(&url, config());
            let Error::Tls { kind, .. } = err else {
                panic!("{err:?}")
            };
            assert_eq!(kind, TlsErrorKind::UnknownIssuer);
        }
    }
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn nginx_mutual_tls() {
    let upstream = python_websockets();
    let nginx = nginx(&upstream, true);
    let d = &nginx.dir;
    let with_cert = trusting_ca(d)
        .client_certificate_pem_file(d.join("client.pem"), d.join("client.key"))
        .build()
        .unwrap();
    echo_round_trip(&nginx.url("wss", "/"), with_cert, text_and_binary());

    // Without a certificate nginx finishes the TLS handshake and answers the upgrade with
    // 400 "No required SSL certificate was sent": an HTTP rejection, not a TLS alert.
    let without = trusting_ca(d).build().unwrap();
    let err = fails_before_open(&nginx.url("wss", "/"), without);
    let Error::Rejected { status, body, .. } = &err else {
        panic!("expected Rejected, got {err:?}")
    };
    assert_eq!(*status, 400);
    assert!(
        String::from_utf8_lossy(body).contains("No required SSL certificate"),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Proxies: first proven to speak their protocol by hand, then with the client

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn tinyproxy_starts_and_checks_basic_auth() {
    let target = python_websockets();
    let proxy = tinyproxy();
    let connect = |auth: Option<(&str, &str)>| {
        let mut request = format!(
            "CONNECT 127.0.0.1:{0} HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\n",
            target.port
        );
        if let Some((user, password)) = auth {
            let token = base64(format!("{user}:{password}").as_bytes());
            request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
        }
        request.push_str("\r\n");
        let (_stream, status) = exchange(proxy.port, request.as_bytes()).unwrap();
        status
    };
    let ok = connect(Some((PROXY_USER, PROXY_PASSWORD)));
    assert!(ok.contains(" 200 "), "{ok}; log:\n{}", proxy.log());
    let missing = connect(None);
    assert!(missing.contains(" 407 "), "{missing}");
    let wrong = connect(Some((PROXY_USER, "wrong")));
    assert!(wrong.contains(" 401 "), "{wrong}");
}

/// A SOCKS5 CONNECT to 127.0.0.1:`port` through `proxy`; returns the reply code (0 = ok),
/// or the RFC 1929 status when the credentials were refused.
fn socks5_connect(proxy: &Peer, auth: Option<(&str, &str)>, port: u16) -> Result<u8, String> {
    let method = if auth.is_some() { 2 } else { 0 };
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    use std::io::Write;
    stream.write_all(&[5, 1, method]).unwrap();
    let choice = read_n(&mut stream, 2).map_err(|e| e.to_string())?;
    if choice != [5, method] {
        return Err(format!("method refused: {choice:?}"));
    }
    if let Some((user, password)) = auth {
        let mut request = vec![1, user.len() as u8];
        request.extend_from_slice(user.as_bytes());
        request.push(password.len() as u8);
        request.extend_from_slice(password.as_bytes());
        stream.write_all(&request).unwrap();
        let status = read_n(&mut stream, 2).map_err(|e| e.to_string())?;
        if status[1] != 0 {
            return Err(format!("credentials refused: {status:?}"));
        }
    }
    let mut request = vec![5, 1, 0, 1, 127, 0, 0, 1];
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).unwrap();
    let reply = read_n(&mut stream, 10).map_err(|e| e.to_string())?;
    Ok(reply[1])
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn dante_starts_with_and_without_auth() {
    let target = python_websockets();
    let open = dante(false);
    assert_eq!(
        socks5_connect(&open, None, target.port),
        Ok(0),
        "log:\n{}",
        open.log()
    );

    let guarded = dante(true);
    assert_eq!(
        socks5_connect(&guarded, Some((SOCKS_USER, SOCKS_PASSWORD)), target.port),
        Ok(0),
        "log:\n{}",
        guarded.log()
    );
    let wrong = socks5_connect(&guarded, Some((SOCKS_USER, "wrong")), target.port);
    assert!(
        wrong
            .as_ref()
            .is_err_and(|why| why.starts_with("credentials refused")),
        "{wrong:?}"
    );
    let none = socks5_connect(&guarded, None, target.port);
    assert!(none.is_err(), "{none:?}");
}

/// A config through `proxy` that ignores the environment.
fn via(proxy: &str) -> nwebsocket::ConfigBuilder {
    Config::builder().proxy_from_env(false).proxy(proxy)
}

/// Echoes text and binary through `proxy`: over ws to `ws_url`, then over wss to `nginx`, TLS
/// inside the tunnel, verified for localhost.
fn ws_and_wss_through(proxy: &str, ws_url: &str, nginx: &Peer) {
    echo_round_trip(ws_url, via(proxy).build().unwrap(), text_and_binary());
    let config = via(proxy)
        .root_certificates_pem_file(nginx.dir.join("ca.pem"))
        .build()
        .unwrap();
    echo_round_trip(
        &format!("wss://localhost:{}/", nginx.port),
        config,
        text_and_binary(),
    );
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn tinyproxy_tunnels_ws_and_wss_with_the_right_credentials() {
    let upstream = python_websockets();
    let nginx = nginx(&upstream, false);
    let proxy = tinyproxy();
    let url = format!(
        "http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{}",
        proxy.port
    );
    // tinyproxy resolves localhost for the wss leg.
    ws_and_wss_through(&url, &upstream.url("ws", "/echo"), &nginx);
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn tinyproxy_refuses_wrong_credentials_with_401_and_missing_ones_with_407() {
    let upstream = python_websockets();
    let proxy = tinyproxy();
    let target = upstream.url("ws", "/echo");

    let wrong = format!("http://{PROXY_USER}:wrong-pw@127.0.0.1:{}", proxy.port);
    let err = fails_before_open(&target, via(&wrong).build().unwrap());
    let Error::ProxyRejected { status, .. } = &err else {
        panic!("expected ProxyRejected, got {err:?}; log:\n{}", proxy.log())
    };
    assert_eq!(*status, 401, "{err:?}");
    assert!(!format!("{err} {err:?}").contains("wrong-pw"), "{err:?}");

    let missing = format!("http://127.0.0.1:{}", proxy.port);
    let err = fails_before_open(&target, via(&missing).build().unwrap());
    let Error::ProxyRejected { status, headers } = &err else {
        panic!("expected ProxyRejected, got {err:?}")
    };
    assert_eq!(*status, 407, "{err:?}");
    let challenge = headers
        .get("proxy-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(challenge.starts_with("Basic"), "{headers:?}");
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn dante_without_auth_tunnels_ws_and_wss_resolved_here_or_there() {
    let upstream = python_websockets();
    let nginx = nginx(&upstream, false);
    let proxy = dante(false);
    for scheme in ["socks5", "socks5h"] {
        let url = format!("{scheme}://127.0.0.1:{}", proxy.port);
        let ws_url = format!("ws://localhost:{}/echo", upstream.port);
        ws_and_wss_through(&url, &ws_url, &nginx);
    }
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn dante_with_auth_tunnels_ws_and_wss_and_refuses_wrong_or_missing_credentials() {
    let upstream = python_websockets();
    let nginx = nginx(&upstream, false);
    let proxy = dante(true);
    for scheme in ["socks5", "socks5h"] {
        let url = format!(
            "{scheme}://{SOCKS_USER}:{SOCKS_PASSWORD}@127.0.0.1:{}",
            proxy.port
        );
        ws_and_wss_through(&url, &upstream.url("ws", "/echo"), &nginx);
    }
    let target = upstream.url("ws", "/echo");
    let wrong = format!("socks5h://{SOCKS_USER}:wrong-pw@127.0.0.1:{}", proxy.port);
    let err = fails_before_open(&target, via(&wrong).build().unwrap());
    assert!(
        matches!(
            err,
            Error::Proxy {
                kind: ProxyErrorKind::AuthFailed,
                ..
            }
        ),
        "{err:?}; log:\n{}",
        proxy.log()
    );
    assert!(!format!("{err} {err:?}").contains("wrong-pw"), "{err:?}");
    let missing = format!("socks5h://127.0.0.1:{}", proxy.port);
    let err = fails_before_open(&target, via(&missing).build().unwrap());
    assert!(
        matches!(
            err,
            Error::Proxy {
                kind: ProxyErrorKind::AuthRequired,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
#[ignore = "needs the interop peers; .ci/interop.sh installs them"]
fn dante_reports_a_refused_connection_as_its_reply_code() {
    let proxy = dante(false);
    let port = closed_port();
    let url = format!("socks5://127.0.0.1:{}", proxy.port);
    let err = fails_before_open(
        &format!("ws://127.0.0.1:{port}/"),
        via(&url).build().unwrap(),
    );
    assert!(
        matches!(
            err,
            Error::Proxy {
                kind: ProxyErrorKind::ConnectionRefused,
                ..
            }
        ),
        "{err:?}; log:\n{}",
        proxy.log()
    );
}
