//! The OS's certificate verifier (feature `platform-verifier`) on loopback: a private CA
//! trusted through `SSL_CERT_FILE` (in a child process of this test binary, so that no test
//! changes its own environment), a server from an unknown CA refused, roots added in the
//! config trusted too, and the combinations that make no sense refused by `build()`.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;
#[path = "tls/servers.rs"]
mod servers;

use std::process::Command;
use std::sync::Arc;

use common::*;
use nwebsocket::{Client, Config, Error, Event, Message, TlsErrorKind};
use servers::*;

/// An echo server on 127.0.0.1 with a leaf from `ca`; its `wss://` URL.
fn server_of(ca: &Ca) -> String {
    let port = tls_server("127.0.0.1:0", &ca.leaf(&["127.0.0.1"]), PLAIN);
    format!("wss://127.0.0.1:{port}/")
}

/// Runs `child_case` with `SSL_CERT_FILE` naming a file with `ca_pem` (and no
/// `SSL_CERT_DIR`), connecting to `url` with the platform verifier; it must end as `expect`
/// says ("echo" or "unknown-issuer").
fn child(url: &str, ca_pem: &str, expect: &str) {
    let file = std::env::temp_dir().join(format!(
        "nwebsocket-platform-verifier-{}-{expect}.pem",
        std::process::id()
    ));
    std::fs::write(&file, ca_pem).unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["child_case", "--exact", "--nocapture", "--test-threads=1"])
        .env("SSL_CERT_FILE", &file)
        .env_remove("SSL_CERT_DIR")
        .env("NWEBSOCKET_TEST_URL", url)
        .env("NWEBSOCKET_TEST_EXPECT", expect)
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child expecting {expect}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One connection in a child process, checked against `NWEBSOCKET_TEST_EXPECT`; does nothing
/// in a normal run.
#[test]
fn child_case() {
    let Ok(url) = std::env::var("NWEBSOCKET_TEST_URL") else {
        return;
    };
    let config = Config::builder().platform_verifier(true).build().unwrap();
    let ws = Client::connect_with_config(&url, config).unwrap();
    match std::env::var("NWEBSOCKET_TEST_EXPECT").unwrap().as_str() {
        "echo" => {
            expect_open(&ws);
            ws.send_text("through the OS verifier").unwrap();
            let Event::Message(Message::Text(text)) = next(&ws) else {
                panic!("no echo")
            };
            assert_eq!(text.as_str(), "through the OS verifier");
        }
        "unknown-issuer" => {
            let events = until_close(&ws);
            let Some(Error::Tls { kind, .. }) = error_of(&events) else {
                panic!("{events:?}")
            };
            assert_eq!(*kind, TlsErrorKind::UnknownIssuer);
        }
        other => panic!("unknown expectation {other}"),
    }
}

#[test]
fn a_ca_from_ssl_cert_file_is_trusted_and_an_unknown_one_refused() {
    let ca = Ca::new();
    let stranger = Ca::new();
    child(&server_of(&ca), &ca.pem(), "echo");
    child(&server_of(&stranger), &ca.pem(), "unknown-issuer");
}

#[test]
fn roots_from_the_config_are_trusted_too() {
    let ca = Ca::new();
    let config = Config::builder()
        .platform_verifier(true)
        .root_certificates_pem(ca.pem())
        .build()
        .unwrap();
    let ws = Client::connect_with_config(&server_of(&ca), config).unwrap();
    expect_open(&ws);
}

#[test]
fn combinations_that_make_no_sense_are_refused() {
    let ca = Ca::new();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rustls_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    for builder in [
        Config::builder()
            .platform_verifier(true)
            .root_certificates_pem(ca.pem())
            .platform_roots(false),
        Config::builder()
            .platform_verifier(true)
            .danger_accept_invalid_certs(true),
        Config::builder()
            .platform_verifier(true)
            .unversioned_rustls_config(Arc::new(rustls_config)),
    ] {
        assert!(matches!(builder.build(), Err(Error::InvalidConfig(_))));
    }
}
