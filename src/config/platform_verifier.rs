//! The OS's certificate verifier as a TLS choice (feature `platform-verifier`): the builder's
//! setter. The checks are with the other TLS settings, in `tls`.

use super::ConfigBuilder;

impl ConfigBuilder {
    /// Verifies `wss://` certificates the way the operating system does, through
    /// `rustls-platform-verifier` (the verifier reqwest uses), instead of checking them
    /// against the platform's root certificates with webpki (the default).
    ///
    /// Prefer it where trust is managed by the OS rather than by a bundle of roots: on macOS
    /// and iOS (the Keychain, profiles and user trust settings), Windows (the certificate
    /// store, group policy, enterprise roots pushed to machines), and Android (user-added
    /// CAs); those verifiers also check revocation where the OS does (OCSP/CRL, stapled
    /// responses). Corporate TLS-inspecting proxies usually work with it and not without. On
    /// Linux and other Unix systems there is no OS verifier: it checks against the same
    /// store as the default (rustls-native-certs, honouring `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR`), so the two behave alike there. Keep the default where you want the
    /// same answer on every OS.
    ///
    /// Roots added with [`root_certificate`](Self::root_certificate) or the
    /// `root_certificates_pem*` setters are trusted as well (not on Android). Combined with
    /// [`platform_roots(false)`](Self::platform_roots),
    /// [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs) or
    /// [`unversioned_rustls_config`](Self::unversioned_rustls_config) it is an
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) from
    /// [`build`](Self::build), as is a verifier that cannot start (no root certificate found
    /// on Linux). Needs the `platform-verifier` feature. Defaults to `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = nwebsocket::Config::builder().platform_verifier(true).build()?;
    /// # drop(config);
    /// # Ok::<(), nwebsocket::Error>(())
    /// ```
    pub fn platform_verifier(mut self, use_it: bool) -> Self {
        self.tls.platform_verifier = use_it;
        self
    }
}
