//! TLS for `wss://`: which roots to trust, a client certificate, and the escape hatches.

use std::path::PathBuf;
use std::sync::Arc;

use super::ConfigBuilder;
use crate::tls;

impl ConfigBuilder {
    /// Trusts this DER-encoded certificate as a root for `wss://`, in addition to the
    /// platform's roots (or instead of them, with [`platform_roots(false)`](Self::platform_roots)).
    /// Use it for a private CA or a self-signed server. May be called more than once. Defaults
    /// to none.
    pub fn root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.tls.root_der.push(der.into());
        self
    }

    /// Trusts every certificate in this PEM text (`-----BEGIN CERTIFICATE-----` blocks) as a
    /// root for `wss://`, in addition to the platform's roots (or instead of them, with
    /// [`platform_roots(false)`](Self::platform_roots)). May be called more than once. Defaults
    /// to none.
    ///
    /// # Examples
    ///
    /// ```
    /// # let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let pem = ca.cert.pem();
    /// let config = nwebsocket::Config::builder()
    ///     .root_certificates_pem(pem) // e.g. include_bytes!("my-ca.pem")
    ///     .build()?;
    /// # drop(config);
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.root_pem.push(tls::Pem::Bytes(pem.into()));
        self
    }

    /// Like [`root_certificates_pem`](Self::root_certificates_pem), with the PEM read from this
    /// file when [`build`](Self::build) is called. Defaults to none.
    ///
    /// # Examples
    ///
    /// ```
    /// # let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let path = std::env::temp_dir().join(format!("nwebsocket-doc-{}.pem", std::process::id()));
    /// # std::fs::write(&path, ca.cert.pem()).unwrap();
    /// let config = nwebsocket::Config::builder()
    ///     .root_certificates_pem_file(&path) // e.g. "/etc/my-broker/ca.pem"
    ///     .platform_roots(false) // trust that CA only
    ///     .build()?;
    /// # drop(config);
    /// # std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn root_certificates_pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.root_pem.push(tls::Pem::File(path.into()));
        self
    }

    /// Whether `wss://` trusts the platform's root certificates (rustls-native-certs: the
    /// system store, or the file and directory named by the `SSL_CERT_FILE` and `SSL_CERT_DIR`
    /// environment variables, read once per process) and, with the `webpki-roots` feature, the
    /// bundled Mozilla roots. Set `false` to trust only the roots added with
    /// [`root_certificate`](Self::root_certificate) and the `root_certificates_pem*` setters.
    /// Defaults to `true`.
    pub fn platform_roots(mut self, trust: bool) -> Self {
        self.tls.platform_roots = Some(trust);
        self
    }

    /// Presents this certificate chain (PEM, the client's certificate first) and its private
    /// key (PEM: PKCS#8, PKCS#1 or SEC1) to a server that asks for one: mutual TLS. Defaults to
    /// none.
    ///
    /// # Examples
    ///
    /// ```
    /// # let client = rcgen::generate_simple_self_signed(vec!["robot-7".into()]).unwrap();
    /// # let (chain_pem, key_pem) = (client.cert.pem(), client.signing_key.serialize_pem());
    /// let config = nwebsocket::Config::builder()
    ///     .client_certificate_pem(chain_pem, key_pem)
    ///     .build()?;
    /// # drop(config);
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn client_certificate_pem(
        mut self,
        chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.client_cert = Some((tls::Pem::Bytes(chain.into()), tls::Pem::Bytes(key.into())));
        self
    }

    /// Like [`client_certificate_pem`](Self::client_certificate_pem), with both read from files
    /// when [`build`](Self::build) is called. Defaults to none.
    pub fn client_certificate_pem_file(
        mut self,
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls.client_cert = Some((tls::Pem::File(chain.into()), tls::Pem::File(key.into())));
        self
    }

    /// **Turns certificate verification off**: `wss://` then accepts any certificate, for any
    /// host, expired or self-signed. Anyone on the network path can then read and change the
    /// traffic. For development against a throwaway server only; trust its certificate with
    /// [`root_certificates_pem`](Self::root_certificates_pem) instead wherever you can. A
    /// warning is logged when the config is built and at every handshake. Defaults to `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = nwebsocket::Config::builder()
    ///     .danger_accept_invalid_certs(true)
    ///     .build()?;
    /// # drop(config);
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.tls.danger_accept_invalid_certs = accept;
        self
    }

    /// Uses this rustls configuration for `wss://` as it is, for anything the other TLS options
    /// do not cover (ALPN, key logging, a custom verifier, another crypto provider...).
    ///
    /// **Not covered by this crate's semver:** the parameter is a type of rustls, which is not
    /// 1.0, so this method follows rustls's versioning. A rustls upgrade in a minor release of
    /// this crate may change the type it takes. Defaults to none.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let mut roots = rustls::RootCertStore::empty();
    /// # let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// # let my_ca_der = ca.cert.der().clone();
    /// roots.add(my_ca_der)?;
    /// let tls = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let config = nwebsocket::Config::builder()
    ///     .unversioned_rustls_config(Arc::new(tls))
    ///     .build()?;
    /// # drop(config);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unversioned_rustls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls.unversioned = Some(config);
        self
    }
}
