//! Builds the rustls client configuration for `wss://`.
//!
//! The crypto provider (ring) is passed explicitly, so that a `wss://` connect never depends on,
//! or panics over, rustls's process-wide default provider. The platform's root certificates are
//! loaded once per process and shared.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::error::{Error, Result};

/// The platform's roots, loaded on first use. A certificate that fails to load is skipped (and
/// logged); an empty store makes every handshake fail with a clear "unknown issuer" alert.
fn native_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for err in &loaded.errors {
            log::warn!("skipping a platform root certificate: {err}");
        }
        let mut store = RootCertStore::empty();
        let (added, ignored) = store.add_parsable_certificates(loaded.certs);
        log::debug!("loaded {added} platform root certificates ({ignored} unparsable)");
        store
    })
}

fn build(roots: RootCertStore) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Tls(Box::new(err)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The shared configuration with the platform's roots.
pub(crate) fn default_config() -> Result<Arc<ClientConfig>> {
    static CONFIG: OnceLock<std::result::Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| build(native_roots().clone()).map_err(|err| format!("{err:?}")))
        .clone()
        .map_err(|why| Error::Tls(why.into()))
}

/// A configuration that trusts the platform's roots plus `extra` (DER certificates).
pub(crate) fn config_with_roots(extra: Vec<Vec<u8>>) -> Result<Arc<ClientConfig>> {
    let mut roots = native_roots().clone();
    for der in extra {
        roots
            .add(CertificateDer::from(der))
            .map_err(|err| Error::InvalidConfig(format!("root certificate rejected: {err}")))?;
    }
    build(roots)
}
