//! The OS's certificate verifier (`rustls-platform-verifier`, feature `platform-verifier`):
//! the Security framework on Apple platforms, CryptoAPI on Windows, Android's trust manager,
//! and on other Unix systems webpki over the platform's root store (rustls-native-certs, which
//! honours `SSL_CERT_FILE` and `SSL_CERT_DIR`, read each time a config is built).

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls_platform_verifier::Verifier;

use crate::error::{Error, Result};

/// The platform verifier, also trusting `extra_roots`.
///
/// # Errors
/// [`Error::InvalidConfig`] when it cannot start (on Linux: no root certificate found at all)
/// or, on Android, when extra roots are given (its trust manager takes none).
pub(super) fn verifier(
    extra_roots: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>> {
    let failed = |err: rustls::Error| {
        Error::InvalidConfig(format!("the platform verifier could not start: {err}"))
    };
    if extra_roots.is_empty() {
        return Ok(Arc::new(Verifier::new(provider).map_err(failed)?));
    }
    #[cfg(not(target_os = "android"))]
    {
        Ok(Arc::new(
            Verifier::new_with_extra_roots(extra_roots, provider).map_err(failed)?,
        ))
    }
    #[cfg(target_os = "android")]
    {
        let _ = provider;
        Err(Error::InvalidConfig(
            "the platform verifier takes no extra root certificates on Android".into(),
        ))
    }
}
