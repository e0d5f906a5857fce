//! TLS servers for the tests: a private CA generated per run, leaves it signs, and a rustls
//! WebSocket echo server presenting one (optionally asking for a client certificate).
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a part")]

use std::io::Read;
use std::net::{Shutdown, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

use super::common::{WAIT, echo, spawn};

/// A private CA, generated per run.
pub struct Ca(pub CertifiedIssuer<'static, KeyPair>);

/// A certificate with its key, in the forms servers and the client config want.
pub struct Leaf {
    pub der: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub pem: String,
    pub key_pem: String,
}

impl Ca {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // A name of its own: CAs that share a name look like one issuer with a bad signature.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("nwebsocket test CA {n}"));
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    pub fn pem(&self) -> String {
        self.0.pem()
    }

    pub fn der(&self) -> Vec<u8> {
        self.0.der().to_vec()
    }

    /// A leaf for `names` (DNS names or IP addresses), signed by this CA.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(CertificateParams::new(to_strings(names)).unwrap())
    }

    pub fn leaf_with(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        Leaf {
            der: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

pub fn to_strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// How a test server treats client certificates and which TLS versions it speaks.
#[derive(Clone, Copy)]
pub struct ServerOptions<'a> {
    pub client_ca: Option<&'a Ca>,
    pub tls12_only: bool,
}

pub const PLAIN: ServerOptions<'static> = ServerOptions {
    client_ca: None,
    tls12_only: false,
};

/// A TLS WebSocket echo server on `bind` presenting `leaf`. Returns its port.
pub fn tls_server(bind: &str, leaf: &Leaf, options: ServerOptions<'_>) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if options.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = match options.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(ca.der())).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = Arc::new(
        builder
            .with_single_cert(vec![leaf.der.clone()], leaf.key.clone_key())
            .unwrap(),
    );
    let listener = TcpListener::bind(bind).unwrap();
    let port = listener.local_addr().unwrap().port();
    spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let config = config.clone();
            spawn(move || {
                let mut conn = rustls::ServerConnection::new(config).unwrap();
                while conn.is_handshaking() {
                    if conn.complete_io(&mut stream).is_err() {
                        // rustls has sent its alert. Close gently, so that no reset overtakes
                        // the alert: the client reads it first, then closes, then we see EOF.
                        let _ = stream.shutdown(Shutdown::Write);
                        let _ = stream.set_read_timeout(Some(WAIT));
                        let _ = stream.read_to_end(&mut Vec::new());
                        return;
                    }
                }
                let tls = rustls::StreamOwned::new(conn, stream);
                if let Ok(ws) = tungstenite::accept(tls) {
                    echo(ws);
                }
            });
        }
    });
    port
}
