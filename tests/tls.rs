//! `wss://` against a local rustls server whose certificate is generated per run and trusted
//! explicitly; certificate failures; TLS chosen by the scheme, not the port.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::net::TcpListener;
use std::sync::Arc;

use common::*;
use nwebsocket::{Client, Config, Error, Event};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A self-signed certificate for `names`, and its key.
fn certificate(names: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let cert = rcgen::generate_simple_self_signed(names).unwrap();
    let key = PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());
    (cert.cert.der().clone(), key.into())
}

/// A TLS WebSocket echo server on `bind` with a certificate for localhost, 127.0.0.1 and ::1.
/// Returns its port and the certificate to trust.
fn tls_echo_server(bind: &str) -> (u16, Vec<u8>) {
    tls_echo_server_for(bind, &["localhost", "127.0.0.1", "::1"])
}

fn tls_echo_server_for(bind: &str, names: &[&str]) -> (u16, Vec<u8>) {
    let (cert, key) = certificate(names);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind(bind).unwrap();
    let port = listener.local_addr().unwrap().port();
    spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let config = config.clone();
            spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let tls = rustls::StreamOwned::new(conn, stream);
                if let Ok(ws) = tungstenite::accept(tls) {
                    echo(ws);
                }
            });
        }
    });
    (port, cert.to_vec())
}

fn trusting(cert: Vec<u8>) -> Config {
    Config::builder().root_certificate(cert).build().unwrap()
}

fn echo_once(url: &str, config: Config) {
    let ws = Client::connect_with_config(url, config).unwrap();
    expect_open(&ws);
    ws.send_text("secret").unwrap();
    ws.send_binary(vec![9u8; 100_000]).unwrap();
    assert!(matches!(next(&ws), Event::Message(m) if m.as_text() == Some("secret")));
    assert!(matches!(next(&ws), Event::Message(m) if m.len() == 100_000));
    ws.close().unwrap();
    assert!(check_contract(&until_close(&ws)).was_clean);
}

#[test]
fn wss_echo_by_host_name() {
    let (port, cert) = tls_echo_server("127.0.0.1:0");
    echo_once(&format!("wss://localhost:{port}/secure"), trusting(cert));
}

#[test]
fn wss_needs_no_process_wide_crypto_provider() {
    // tungstenite's own TLS connector panics without one; we pass ring explicitly. Nothing in
    // this test binary installs a default provider, and the client does not either.
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    let (port, cert) = tls_echo_server("127.0.0.1:0");
    echo_once(&format!("wss://127.0.0.1:{port}/"), trusting(cert));
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
}

#[test]
fn wss_echo_by_ipv4_literal() {
    let (port, cert) = tls_echo_server("127.0.0.1:0");
    echo_once(&format!("wss://127.0.0.1:{port}/"), trusting(cert));
}

#[test]
fn wss_echo_by_ipv6_literal() {
    let (port, cert) = tls_echo_server("[::1]:0");
    echo_once(&format!("wss://[::1]:{port}/"), trusting(cert));
}

#[test]
fn untrusted_certificate_is_a_tls_error_then_close_1006() {
    let (port, _cert) = tls_echo_server("127.0.0.1:0");
    let ws = Client::connect(&format!("wss://localhost:{port}/")).unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false));
    let Some(Error::Tls(source)) = error_of(&events) else {
        panic!("{events:?}")
    };
    assert!(
        format!("{source:?}").contains("UnknownIssuer"),
        "{source:?}"
    );
}

#[test]
fn wrong_host_name_is_a_tls_error() {
    let (port, cert) = tls_echo_server_for("127.0.0.1:0", &["localhost"]);
    // The certificate names localhost only; the IP literal must not pass verification.
    let ws = Client::connect_with_config(&format!("wss://127.0.0.1:{port}/"), trusting(cert));
    let events = until_close(&ws.unwrap());
    let Some(Error::Tls(source)) = error_of(&events) else {
        panic!("{events:?}")
    };
    assert!(
        format!("{source:?}").contains("NotValidForName"),
        "{source:?}"
    );
}

#[test]
fn tls_follows_the_scheme_not_the_port() {
    // ws:// to a TLS server: the server sees no ClientHello and the handshake fails.
    let (port, cert) = tls_echo_server("127.0.0.1:0");
    let ws =
        Client::connect_with_config(&format!("ws://127.0.0.1:{port}/"), trusting(cert.clone()));
    let events = until_close(&ws.unwrap());
    assert!(!check_contract(&events).was_clean);
    assert!(
        !matches!(error_of(&events), Some(Error::Tls(_))),
        "{events:?}"
    );
    // wss:// to a plain server: a TLS error.
    let plain = echo_server().replace("ws://", "wss://");
    let events = until_close(&Client::connect_with_config(&plain, trusting(cert)).unwrap());
    assert!(
        matches!(error_of(&events), Some(Error::Tls(_))),
        "{events:?}"
    );
}

#[test]
fn wss_close_handshake_is_clean() {
    let (port, cert) = tls_echo_server("127.0.0.1:0");
    let ws =
        Client::connect_with_config(&format!("wss://localhost:{port}/"), trusting(cert)).unwrap();
    expect_open(&ws);
    ws.close_with(3001, "done").unwrap();
    let close = check_contract(&until_close(&ws));
    assert_eq!((close.code, close.was_clean), (3001, true));
}
