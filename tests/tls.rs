//! `wss://` against local rustls servers whose certificates (a private CA, its leaves, client
//! certificates) are generated per run: verification by name and IP address, roots from PEM
//! added to or replacing the platform's, mutual TLS, the dangerous option, the rustls escape
//! hatch, conflicting options, and the kind of each TLS failure.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;
#[path = "tls/servers.rs"]
mod servers;

use std::sync::Arc;

use common::*;
use nwebsocket::{Config, ConfigBuilder, Error, Event, TlsErrorKind};
use rcgen::{CertificateParams, date_time_ymd};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use servers::*;

/// A CA and an echo server on 127.0.0.1 with a leaf for localhost, 127.0.0.1 and ::1.
fn ca_and_server() -> (Ca, u16) {
    let ca = Ca::new();
    let port = tls_server(
        "127.0.0.1:0",
        &ca.leaf(&["localhost", "127.0.0.1", "::1"]),
        PLAIN,
    );
    (ca, port)
}

fn trusting(ca: &Ca) -> Config {
    Config::builder()
        .root_certificates_pem(ca.pem())
        .build()
        .unwrap()
}

fn echo_once(url: &str, config: Config) {
    let ws = common::connect_with_config(url, config).unwrap();
    expect_open(&ws);
    ws.send_text("secret").unwrap();
    ws.send_binary(vec![9u8; 100_000]).unwrap();
    assert!(matches!(next(&ws), Event::Message(m) if m.as_text() == Some("secret")));
    assert!(matches!(next(&ws), Event::Message(m) if m.len() == 100_000));
    ws.close().unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1000, true), "{events:?}");
}

/// Connects, expects the connection to fail with a TLS error (Error, then Close 1006, then the
/// end of the stream) and returns its kind and the rustls error that caused it.
fn tls_failure(url: &str, config: Config) -> (TlsErrorKind, String) {
    let ws = common::connect_with_config(url, config).unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false), "{events:?}");
    let Some(err @ Error::Tls { kind, .. }) = error_of(&events) else {
        panic!("not a TLS error: {events:?}")
    };
    let source = std::error::Error::source(err).unwrap();
    let rustls = source
        .downcast_ref::<rustls::Error>()
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| format!("(not rustls) {source:?}"));
    (*kind, rustls)
}

fn invalid(builder: ConfigBuilder) -> String {
    match builder.build() {
        Err(Error::InvalidConfig(why)) => why,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn wss_echo_by_host_name() {
    let (ca, port) = ca_and_server();
    echo_once(&format!("wss://localhost:{port}/secure"), trusting(&ca));
}

#[test]
fn wss_needs_no_process_wide_crypto_provider() {
    // tungstenite's own TLS connector panics without one; we pass ring explicitly. Nothing in
    // this test binary installs a default provider, and the client does not either.
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    let (ca, port) = ca_and_server();
    echo_once(&format!("wss://127.0.0.1:{port}/"), trusting(&ca));
    let config = Config::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    echo_once(&format!("wss://localhost:{port}/"), config);
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
}

#[test]
fn ipv4_literal_is_verified_against_ip_sans() {
    let (ca, port) = ca_and_server();
    echo_once(&format!("wss://127.0.0.1:{port}/"), trusting(&ca));
}

#[test]
fn ipv6_literal_works_for_wss() {
    let ca = Ca::new();
    let port = tls_server("[::1]:0", &ca.leaf(&["::1"]), PLAIN);
    echo_once(&format!("wss://[::1]:{port}/"), trusting(&ca));
}

#[test]
fn ip_san_mismatch_is_wrong_name() {
    let ca = Ca::new();
    // Valid for another address and for localhost, but not for the literal we dial.
    let port = tls_server("127.0.0.1:0", &ca.leaf(&["127.0.0.2", "localhost"]), PLAIN);
    let (kind, cause) = tls_failure(&format!("wss://127.0.0.1:{port}/"), trusting(&ca));
    assert_eq!(kind, TlsErrorKind::WrongName, "{cause}");
    assert!(cause.contains("NotValidForName"), "{cause}");
}

#[test]
fn wrong_host_name_is_wrong_name() {
    let ca = Ca::new();
    let port = tls_server("127.0.0.1:0", &ca.leaf(&["example.test"]), PLAIN);
    let (kind, cause) = tls_failure(&format!("wss://localhost:{port}/"), trusting(&ca));
    assert_eq!(kind, TlsErrorKind::WrongName, "{cause}");
}

#[test]
fn untrusted_issuer_is_unknown_issuer() {
    let (_ca, port) = ca_and_server();
    let (kind, cause) = tls_failure(&format!("wss://localhost:{port}/"), Config::default());
    assert_eq!(kind, TlsErrorKind::UnknownIssuer, "{cause}");
    assert!(cause.contains("UnknownIssuer"), "{cause}");
}

#[test]
fn expired_certificate_is_expired() {
    let ca = Ca::new();
    let mut params = CertificateParams::new(to_strings(&["localhost"])).unwrap();
    params.not_before = date_time_ymd(2001, 1, 1);
    params.not_after = date_time_ymd(2002, 1, 1);
    let port = tls_server("127.0.0.1:0", &ca.leaf_with(params), PLAIN);
    let (kind, cause) = tls_failure(&format!("wss://localhost:{port}/"), trusting(&ca));
    assert_eq!(kind, TlsErrorKind::Expired, "{cause}");
}

#[test]
fn pem_roots_are_added_to_the_platform_store() {
    let (ca, port) = ca_and_server();
    // Two calls: certificates from both are trusted.
    let other = Ca::new();
    let config = Config::builder()
        .root_certificates_pem(other.pem())
        .root_certificates_pem(ca.pem())
        .build()
        .unwrap();
    echo_once(&format!("wss://localhost:{port}/"), config);
    // Both in one PEM text.
    let config = Config::builder()
        .root_certificates_pem(format!("{}{}", other.pem(), ca.pem()))
        .build()
        .unwrap();
    echo_once(&format!("wss://localhost:{port}/"), config);
}

#[test]
fn pem_roots_from_a_file_can_replace_the_platform_store() {
    let (ca, port) = ca_and_server();
    let dir = std::env::temp_dir().join(format!("nwebsocket-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, ca.pem()).unwrap();
    let only_ours = || Config::builder().platform_roots(false);
    echo_once(
        &format!("wss://localhost:{port}/"),
        only_ours()
            .root_certificates_pem_file(&path)
            .build()
            .unwrap(),
    );
    echo_once(
        &format!("wss://localhost:{port}/"),
        only_ours().root_certificate(ca.der()).build().unwrap(),
    );
    // Replacing: a store of another CA only does not trust this server.
    let (kind, cause) = tls_failure(
        &format!("wss://localhost:{port}/"),
        only_ours()
            .root_certificates_pem(Ca::new().pem())
            .build()
            .unwrap(),
    );
    assert_eq!(kind, TlsErrorKind::UnknownIssuer, "{cause}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mutual_tls_with_a_client_certificate() {
    let ca = Ca::new();
    let port = tls_server(
        "127.0.0.1:0",
        &ca.leaf(&["localhost"]),
        ServerOptions {
            client_ca: Some(&ca),
            tls12_only: false,
        },
    );
    let client = ca.leaf(&["robot-7"]);
    let config = Config::builder()
        .root_certificates_pem(ca.pem())
        .client_certificate_pem(client.pem.clone(), client.key_pem.clone())
        .build()
        .unwrap();
    echo_once(&format!("wss://localhost:{port}/"), config);
    // The same from files.
    let dir = std::env::temp_dir().join(format!("nwebsocket-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("client.pem"), &client.pem).unwrap();
    std::fs::write(dir.join("client.key"), &client.key_pem).unwrap();
    let config = Config::builder()
        .root_certificates_pem(ca.pem())
        .client_certificate_pem_file(dir.join("client.pem"), dir.join("client.key"))
        .build()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    echo_once(&format!("wss://localhost:{port}/"), config);
}

#[test]
fn missing_client_certificate_is_certificate_required() {
    // TLS 1.3: the server's alert comes after the client's handshake is done, while the client
    // reads the upgrade response. TLS 1.2: during the handshake.
    for tls12_only in [false, true] {
        let ca = Ca::new();
        let options = ServerOptions {
            client_ca: Some(&ca),
            tls12_only,
        };
        let port = tls_server("127.0.0.1:0", &ca.leaf(&["localhost"]), options);
        let (kind, cause) = tls_failure(&format!("wss://localhost:{port}/"), trusting(&ca));
        assert_eq!(
            kind,
            TlsErrorKind::CertificateRequired,
            "TLS 1.2 only: {tls12_only}; {cause}"
        );
        assert!(cause.contains("AlertReceived"), "{cause}");
    }
}

#[test]
fn client_certificate_from_an_unknown_ca_is_an_alert() {
    let ca = Ca::new();
    let options = ServerOptions {
        client_ca: Some(&ca),
        tls12_only: false,
    };
    let port = tls_server("127.0.0.1:0", &ca.leaf(&["localhost"]), options);
    let stranger = Ca::new().leaf(&["robot-7"]);
    let config = Config::builder()
        .root_certificates_pem(ca.pem())
        .client_certificate_pem(stranger.pem, stranger.key_pem)
        .build()
        .unwrap();
    let (kind, cause) = tls_failure(&format!("wss://localhost:{port}/"), config);
    // rustls answers a client certificate of an unknown CA with `unknown_ca` (48).
    assert_eq!(kind, TlsErrorKind::Alert(48), "{cause}");
}

#[test]
fn danger_accept_invalid_certs_accepts_a_self_signed_server() {
    let cert = rcgen::generate_simple_self_signed(to_strings(&["elsewhere.test"])).unwrap();
    let leaf = Leaf {
        der: cert.cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()).into(),
        pem: cert.cert.pem(),
        key_pem: cert.signing_key.serialize_pem(),
    };
    let port = tls_server("127.0.0.1:0", &leaf, PLAIN);
    let url = format!("wss://localhost:{port}/");
    // Self-signed and for another name: refused by default...
    let (kind, _) = tls_failure(&url, Config::default());
    assert_eq!(kind, TlsErrorKind::UnknownIssuer);
    // ...accepted with verification off.
    let danger = || Config::builder().danger_accept_invalid_certs(true);
    echo_once(&url, danger().build().unwrap());
    echo_once(
        &format!("wss://127.0.0.1:{port}/"),
        danger().build().unwrap(),
    );
}

#[test]
fn unversioned_rustls_config_is_used_as_it_is() {
    let (ca, port) = ca_and_server();
    let rustls_config = |roots: rustls::RootCertStore| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Config::builder()
            .unversioned_rustls_config(Arc::new(config))
            .build()
            .unwrap()
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der())).unwrap();
    echo_once(&format!("wss://localhost:{port}/"), rustls_config(roots));
    let (kind, _) = tls_failure(
        &format!("wss://localhost:{port}/"),
        rustls_config(rustls::RootCertStore::empty()),
    );
    assert_eq!(kind, TlsErrorKind::UnknownIssuer);
}

#[test]
fn conflicting_or_unusable_tls_options_are_invalid_config() {
    let ca = Ca::new();
    let leaf = ca.leaf(&["robot-7"]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let custom = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    );
    let hatch = || Config::builder().unversioned_rustls_config(custom.clone());
    invalid(hatch().root_certificates_pem(ca.pem()));
    invalid(hatch().root_certificate(ca.der()));
    invalid(hatch().platform_roots(true));
    invalid(hatch().danger_accept_invalid_certs(true));
    invalid(hatch().client_certificate_pem(leaf.pem.clone(), leaf.key_pem.clone()));
    let danger = || Config::builder().danger_accept_invalid_certs(true);
    invalid(danger().root_certificates_pem(ca.pem()));
    invalid(danger().platform_roots(false));
    // No root left to trust.
    invalid(Config::builder().platform_roots(false));
    // Unusable input.
    invalid(Config::builder().root_certificates_pem("not PEM at all"));
    invalid(Config::builder().root_certificates_pem(leaf.key_pem.clone()));
    invalid(Config::builder().root_certificates_pem_file("/nonexistent/nwebsocket/ca.pem"));
    invalid(Config::builder().client_certificate_pem(leaf.pem.clone(), "no key here"));
    invalid(Config::builder().client_certificate_pem("no cert", leaf.key_pem.clone()));
    let other = ca.leaf(&["robot-8"]);
    let why = invalid(Config::builder().client_certificate_pem(leaf.pem.clone(), other.key_pem));
    // An error message never quotes the key.
    assert!(!why.contains("PRIVATE KEY"), "{why}");
    // And neither does the builder's Debug.
    let builder = Config::builder().client_certificate_pem(leaf.pem, leaf.key_pem);
    assert!(!format!("{builder:?}").contains("PRIVATE KEY"));
    // Alone, each option builds.
    danger().build().unwrap();
    hatch().build().unwrap();
    Config::builder().platform_roots(true).build().unwrap();
}

#[test]
fn tls_follows_the_scheme_not_the_port() {
    // ws:// to a TLS server: the server sees no ClientHello and the handshake fails.
    let (ca, port) = ca_and_server();
    let ws = common::connect_with_config(&format!("ws://127.0.0.1:{port}/"), trusting(&ca));
    let events = until_close(&ws.unwrap());
    assert!(!check_contract(&events).was_clean);
    assert!(
        !matches!(error_of(&events), Some(Error::Tls { .. })),
        "{events:?}"
    );
    // wss:// to a plain server: a TLS error of no certificate kind.
    let plain = echo_server().replace("ws://", "wss://");
    let (kind, _) = tls_failure(&plain, trusting(&ca));
    assert_eq!(kind, TlsErrorKind::Other);
}

#[test]
fn wss_close_handshake_is_clean() {
    let (ca, port) = ca_and_server();
    let ws =
        common::connect_with_config(&format!("wss://localhost:{port}/"), trusting(&ca)).unwrap();
    expect_open(&ws);
    ws.close_with(3001, "done").unwrap();
    let close = check_contract(&until_close(&ws));
    assert_eq!((close.code, close.was_clean), (3001, true));
}

#[test]
fn tls_error_display_is_short_and_the_kind_has_words() {
    let (_ca, port) = ca_and_server();
    let ws = common::connect(&format!("wss://localhost:{port}/")).unwrap();
    let events = until_close(&ws);
    let err = error_of(&events).unwrap();
    assert_eq!(err.to_string(), "TLS handshake failed");
    assert_eq!(
        TlsErrorKind::UnknownIssuer.to_string(),
        "certificate issuer not trusted"
    );
}
