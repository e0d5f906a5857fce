//! Builds the rustls client configuration for `wss://` from the TLS settings of a
//! [`ConfigBuilder`](crate::ConfigBuilder).
//!
//! The crypto provider (ring) is passed explicitly, so that a `wss://` connect never depends on,
//! or panics over, rustls's process-wide default provider. The platform's root certificates are
//! loaded once per process and shared; so is the configuration that uses nothing else.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

#[cfg(feature = "platform-verifier")]
mod platform;

/// PEM text, given as bytes or as a file to read when the config is built.
#[derive(Debug, Clone)]
pub(crate) enum Pem {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl Pem {
    fn read(&self) -> Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            Pem::Bytes(bytes) => Ok(bytes.as_slice().into()),
            Pem::File(path) => std::fs::read(path).map(Into::into).map_err(|err| {
                Error::InvalidConfig(format!("cannot read {}: {err}", path.display()))
            }),
        }
    }

    fn what(&self) -> String {
        match self {
            Pem::Bytes(_) => "PEM bytes".into(),
            Pem::File(path) => path.display().to_string(),
        }
    }
}

/// The TLS settings as the builder collects them; [`TlsSettings::build`] checks and turns them
/// into a rustls configuration.
#[derive(Clone, Default)]
pub(crate) struct TlsSettings {
    pub(crate) root_der: Vec<Vec<u8>>,
    pub(crate) root_pem: Vec<Pem>,
    /// `Some(false)` when the caller turned the platform (and bundled) roots off.
    pub(crate) platform_roots: Option<bool>,
    pub(crate) client_cert: Option<(Pem, Pem)>,
    pub(crate) danger_accept_invalid_certs: bool,
    pub(crate) unversioned: Option<Arc<ClientConfig>>,
    /// The OS's verifier instead of webpki over the roots (feature `platform-verifier`).
    pub(crate) platform_verifier: bool,
}

impl fmt::Debug for TlsSettings {
    // By hand: the client key must never reach a log through `{:?}` of a builder.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("root_der", &self.root_der.len())
            .field("root_pem", &self.root_pem.len())
            .field("platform_roots", &self.platform_roots)
            .field("client_cert", &self.client_cert.is_some())
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .field("unversioned", &self.unversioned.is_some())
            .field("platform_verifier", &self.platform_verifier)
            .finish()
    }
}

impl TlsSettings {
    fn has_roots(&self) -> bool {
        !self.root_der.is_empty() || !self.root_pem.is_empty()
    }

    /// Checks the settings and builds their rustls configuration; `None` when they are all at
    /// their defaults, so that the connection uses the shared [`default_config`].
    pub(crate) fn build(self) -> Result<Option<Arc<ClientConfig>>> {
        let invalid = |why: &str| Err(Error::InvalidConfig(why.into()));
        if let Some(config) = &self.unversioned {
            if self.has_roots()
                || self.platform_roots.is_some()
                || self.client_cert.is_some()
                || self.danger_accept_invalid_certs
                || self.platform_verifier
            {
                return invalid(
                    "unversioned_rustls_config replaces every other TLS option; \
                     set those on the rustls config instead",
                );
            }
            return Ok(Some(config.clone()));
        }
        if self.danger_accept_invalid_certs && (self.has_roots() || self.platform_roots.is_some()) {
            return invalid(
                "danger_accept_invalid_certs trusts every certificate: \
                 root certificate options would be ignored",
            );
        }
        if self.platform_verifier
            && (self.danger_accept_invalid_certs || self.platform_roots == Some(false))
        {
            return invalid(
                "platform_verifier trusts the platform's roots: it cannot be combined with \
                 platform_roots(false) or danger_accept_invalid_certs",
            );
        }
        let platform = self.platform_roots.unwrap_or(true);
        if !platform && !self.has_roots() {
            return invalid("platform_roots(false) needs at least one root certificate");
        }
        if !self.has_roots()
            && platform
            && self.client_cert.is_none()
            && !self.danger_accept_invalid_certs
            && !self.platform_verifier
        {
            return Ok(None);
        }

        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(Error::from_rustls)?;
        let builder = if self.danger_accept_invalid_certs {
            log::warn!(
                "danger_accept_invalid_certs: TLS certificates will NOT be verified; \
                 anyone on the path can read and change this traffic"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        } else if self.platform_verifier {
            platform_verified(builder, &self, provider)?
        } else {
            let mut roots = if platform {
                default_roots().clone()
            } else {
                RootCertStore::empty()
            };
            for der in self.root_der {
                roots.add(CertificateDer::from(der)).map_err(|err| {
                    Error::InvalidConfig(format!("root certificate rejected: {err}"))
                })?;
            }
            for pem in &self.root_pem {
                add_pem_roots(&mut roots, pem)?;
            }
            builder.with_root_certificates(roots)
        };
        let config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => {
                let (chain, key) = client_identity(chain, key)?;
                builder.with_client_auth_cert(chain, key).map_err(|err| {
                    Error::InvalidConfig(format!("client certificate or key rejected: {err}"))
                })?
            }
        };
        Ok(Some(Arc::new(config)))
    }
}

/// The builder with the OS's verifier, trusting the added roots too.
#[cfg(feature = "platform-verifier")]
fn platform_verified(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>,
    settings: &TlsSettings,
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>> {
    let mut extra_der: Vec<CertificateDer<'static>> = settings
        .root_der
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    for pem in &settings.root_pem {
        extra_der.extend(pem_certs(pem)?);
    }
    let verifier = platform::verifier(extra_der, provider)?;
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier))
}

/// Without the feature the setting cannot be made: this is never called.
#[cfg(not(feature = "platform-verifier"))]
fn platform_verified(
    _builder: rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>,
    _settings: &TlsSettings,
    _provider: Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>> {
    Err(Error::InvalidConfig(
        "platform_verifier needs the platform-verifier feature".into(),
    ))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Adds every certificate in `pem`; PEM with no certificate in it is an error.
fn add_pem_roots(roots: &mut RootCertStore, pem: &Pem) -> Result<()> {
    for cert in pem_certs(pem)? {
        roots.add(cert).map_err(|err| {
            Error::InvalidConfig(format!(
                "root certificate in {} rejected: {err}",
                pem.what()
            ))
        })?;
    }
    Ok(())
}

/// Every certificate in `pem`; PEM with no certificate in it is an error.
fn pem_certs(pem: &Pem) -> Result<Vec<CertificateDer<'static>>> {
    let text = pem.read()?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| Error::InvalidConfig(format!("invalid PEM in {}: {err}", pem.what())))?;
    if certs.is_empty() {
        return Err(Error::InvalidConfig(format!(
            "no certificate in {}",
            pem.what()
        )));
    }
    Ok(certs)
}

/// The client's certificate chain and private key, from PEM.
fn client_identity(
    chain: &Pem,
    key: &Pem,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain_text = chain.read()?;
    let certs = CertificateDer::pem_slice_iter(&chain_text)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| Error::InvalidConfig(format!("invalid PEM in {}: {err}", chain.what())))?;
    if certs.is_empty() {
        return Err(Error::InvalidConfig(format!(
            "no certificate in {}",
            chain.what()
        )));
    }
    // The key's error message never quotes the key itself.
    let key = PrivateKeyDer::from_pem_slice(&key.read()?).map_err(|err| {
        Error::InvalidConfig(format!("no usable private key in {}: {err}", key.what()))
    })?;
    Ok((certs, key))
}

/// The roots every configuration starts from unless `platform_roots(false)`: the platform's
/// (rustls-native-certs, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`), plus the bundled
/// webpki roots with that feature. Loaded on first use, once per process. A certificate that
/// fails to load is skipped (and logged); an empty store makes every handshake fail with
/// "unknown issuer".
fn default_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for err in &loaded.errors {
            log::warn!("skipping a platform root certificate: {err}");
        }
        let mut store = RootCertStore::empty();
        let (added, ignored) = store.add_parsable_certificates(loaded.certs);
        log::debug!("loaded {added} platform root certificates ({ignored} unparsable)");
        #[cfg(feature = "webpki-roots")]
        {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            log::debug!(
                "added {} bundled webpki root certificates",
                webpki_roots::TLS_SERVER_ROOTS.len()
            );
        }
        store
    })
}

/// The shared configuration with the default roots and no client certificate.
pub(crate) fn default_config() -> Result<Arc<ClientConfig>> {
    static CONFIG: OnceLock<std::result::Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map(|builder| {
                    Arc::new(
                        builder
                            .with_root_certificates(default_roots().clone())
                            .with_no_client_auth(),
                    )
                })
                .map_err(|err| err.to_string())
        })
        .clone()
        .map_err(Error::from_rustls)
}

/// The verifier of `danger_accept_invalid_certs`: any certificate, for any name, is accepted.
/// The handshake signatures are still checked, so the peer must hold the key of the
/// certificate it sent, which proves nothing about who it is.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        log::warn!(
            "danger_accept_invalid_certs: accepting the certificate of {} unverified",
            server_name.to_str()
        );
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_use_the_shared_config() {
        assert!(TlsSettings::default().build().unwrap().is_none());
        // Asking for the default explicitly is still the default.
        let explicit = TlsSettings {
            platform_roots: Some(true),
            ..TlsSettings::default()
        };
        assert!(explicit.build().unwrap().is_none());
        let danger = TlsSettings {
            danger_accept_invalid_certs: true,
            ..TlsSettings::default()
        };
        assert!(danger.build().unwrap().is_some());
    }

    #[cfg(feature = "webpki-roots")]
    #[test]
    fn the_feature_adds_the_bundled_roots() {
        assert!(default_roots().len() >= webpki_roots::TLS_SERVER_ROOTS.len());
    }
}
