//! Parses and checks a `ws://` or `wss://` URL before any thread starts, and picks the route
//! to it (directly or through a proxy) when `connect` is called.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Uri};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::proxy::{Credentials, ProxyKind, Route};
use crate::redact;

/// Where to connect and how: the parsed URL split into what DNS, TCP, the proxy, TLS and the
/// HTTP upgrade each need.
#[derive(Clone)]
pub(crate) struct Target {
    /// The URL as the handshake sends it: scheme and host lowercase, path `/` when empty, the
    /// query string kept.
    pub(crate) uri: Uri,
    /// The host for DNS and TLS, without the brackets of an IPv6 literal.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Chosen by the scheme (`wss`), never by the port.
    pub(crate) tls: bool,
    /// `Basic` credentials from the URL's user-info, for the upgrade request (as curl and
    /// Node's `ws` send them). Marked sensitive.
    pub(crate) authorization: Option<HeaderValue>,
    /// Directly or through a proxy; [`Direct`](Route::Direct) until [`routed`](Self::routed).
    pub(crate) route: Route,
    /// The proxy variables as they were at `connect`, to route a URL that a
    /// `before_each_connect` hook or a redirect gives (empty without either).
    proxy_env: Arc<[(&'static str, String)]>,
}

/// Every variable that [`route_from_env`](crate::proxy::route_from_env) may read.
const PROXY_VARIABLES: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("uri", &self.redacted())
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Parses `url`.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the URL does not parse, has a scheme other than `ws` or `wss`,
    /// no host, or a fragment.
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let invalid = |why: &str| Error::InvalidUrl(format!("{why}: {:?}", redact::url(url)));
        if url.contains('#') {
            return Err(invalid(
                "a WebSocket URL cannot have a fragment (write a '#' in a password as %23)",
            ));
        }
        let uri: Uri = url.trim().parse().map_err(|_| invalid("not a URL"))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| invalid("no scheme"))?
            .to_ascii_lowercase();
        let tls = match scheme.as_str() {
            "ws" => false,
            "wss" => true,
            _ => return Err(invalid("the scheme must be ws or wss")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        let authorization = match authority.as_str().rsplit_once('@') {
            Some((userinfo, _)) => Some(basic_authorization(userinfo).ok_or_else(|| {
                invalid("the user name or password is not percent-encoded UTF-8")
            })?),
            None => None,
        };
        let bracketed = authority.host();
        let host = bracketed
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(bracketed)
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path_and_query = match uri.path_and_query() {
            Some(pq) if !pq.as_str().is_empty() && pq.as_str().starts_with('/') => pq.clone(),
            Some(pq) => format!("/{}", pq.as_str().trim_start_matches('/'))
                .parse::<PathAndQuery>()
                .map_err(|_| invalid("bad path"))?,
            None => PathAndQuery::from_static("/"),
        };
        let scheme: Scheme = scheme.parse().map_err(|_| invalid("bad scheme"))?;
        let uri = Uri::builder()
            .scheme(scheme)
            .authority(authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| invalid("not a URL"))?;
        Ok(Target {
            uri,
            host,
            port,
            tls,
            authorization,
            route: Route::Direct,
            proxy_env: Arc::from([]),
        })
    }

    /// Picks the route by `config` and the process environment, read now (on the thread
    /// that calls `connect`; the I/O thread never reads it).
    ///
    /// # Errors
    /// What no attempt could get past, so that `connect` returns it instead of retrying it:
    /// [`Error::InvalidConfig`] when the environment names a proxy that does not parse (the
    /// message quotes no credentials); [`Error::InvalidUrl`] when the host name is over 255
    /// bytes and a `socks5h://` proxy would have to carry it.
    pub(crate) fn routed(mut self, config: &Config) -> Result<Self> {
        self.route = config.route(self.tls, &self.host, self.port, |name| {
            std::env::var(name).ok()
        });
        let may_change = config.before_each_connect().is_some() || config.follow_redirects() > 0;
        if may_change && config.proxy_from_env() {
            let snapshot: Vec<(&'static str, String)> = PROXY_VARIABLES
                .into_iter()
                .filter_map(|name| Some((name, std::env::var(name).ok()?)))
                .collect();
            self.proxy_env = snapshot.into();
        }
        self.refuse_impossible()
    }

    /// Refuses a route that no attempt could get past: a proxy environment that does not
    /// parse, or a host name too long for a `socks5h://` proxy to carry.
    fn refuse_impossible(self) -> Result<Self> {
        match &self.route {
            Route::BadEnvironment(why) => Err(Error::InvalidConfig(why.clone())),
            Route::Proxy(proxy)
                if proxy.kind == ProxyKind::Socks5h
                    && self.host.parse::<IpAddr>().is_err()
                    && self.host.len() > 255 =>
            {
                Err(Error::InvalidUrl(format!(
                    "the host name is too long for SOCKS5 ({} bytes, at most 255): {:?}",
                    self.host.len(),
                    self.redacted()
                )))
            }
            _ => Ok(self),
        }
    }

    /// The target for `url` (from a `before_each_connect` hook or a redirect), routed by `config` and the
    /// proxy environment as it was when this target was routed; nothing is read now.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] as [`parse`](Self::parse); as [`routed`](Self::routed) for a
    /// route that cannot work.
    pub(crate) fn rerouted(&self, url: &str, config: &Config) -> Result<Self> {
        let mut target = Target::parse(url)?;
        target.route = config.route(target.tls, &target.host, target.port, |name| {
            self.proxy_env
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, value)| value.clone())
        });
        target.proxy_env = self.proxy_env.clone();
        target.refuse_impossible()
    }
}

/// `user[:password]` (percent-encoded) as a sensitive `Basic` header value.
fn basic_authorization(userinfo: &str) -> Option<HeaderValue> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    };
    let credentials = Credentials {
        user: decode(user)?,
        password: decode(password)?,
    };
    let mut value = HeaderValue::from_str(&credentials.basic()).ok()?;
    value.set_sensitive(true);
    Some(value)
}

impl Target {
    /// The URL for logs: without user-info and query values (credentials and tokens). As
    /// [`redact::url`] says, an `@` in the path hides the host too: `ws://h:12/a@b` may be a
    /// password with a `/` in it.
    pub(crate) fn redacted(&self) -> String {
        redact::url(&self.uri.to_string())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_and_query_values_are_redacted() {
        let err = Target::parse("ftp://u:pw@127.0.0.1/?token=abc").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("pw") && !text.contains("abc"), "{text}");
        let t = Target::parse("ws://127.0.0.1:9/x?token=abc").unwrap();
        assert_eq!(t.redacted(), "ws://127.0.0.1:9/x?token=***");
        // A password with a `/` that happens to parse as a port and a path.
        let t = Target::parse("ws://user:12/ss-secret@127.0.0.1/").unwrap();
        assert_eq!(t.redacted(), "ws://***@127.0.0.1/");
    }

    #[test]
    fn a_password_with_an_unescaped_hash_slash_or_question_mark_is_never_quoted() {
        for url in [
            "ws://user:pa#ss-secret@127.0.0.1/",
            "ws://user:pa/ss-secret@127.0.0.1/",
            "ws://user:pa?ss-secret@127.0.0.1/",
            "wss://user:pa#ss-secret@127.0.0.1/x?token=t-secret",
        ] {
            // Whether it parses (as some other host) or not, nothing of the password shows.
            let text = match Target::parse(url) {
                Ok(target) => format!("{} {target:?}", target.redacted()),
                Err(err) => format!("{err} {err:?}"),
            };
            assert!(
                !text.contains("user") && !text.contains("secret"),
                "{url}: {text}"
            );
        }
    }

    use super::*;

    #[test]
    fn user_info_becomes_basic_authorization_and_stays_out_of_debug() {
        let t = Target::parse("wss://al%40ice:open%20sesame@127.0.0.1/x").unwrap();
        let value = t.authorization.as_ref().unwrap();
        assert!(value.is_sensitive());
        // base64("al@ice:open sesame")
        assert_eq!(value, "Basic YWxAaWNlOm9wZW4gc2VzYW1l");
        let debug = format!("{t:?}");
        assert!(
            !debug.contains("sesame") && !debug.contains("al%40ice"),
            "{debug}"
        );
        assert!(
            Target::parse("ws://127.0.0.1/")
                .unwrap()
                .authorization
                .is_none()
        );
        let t = Target::parse("ws://user@127.0.0.1/").unwrap();
        assert_eq!(t.authorization.unwrap(), "Basic dXNlcjo="); // "user:"
        assert!(matches!(
            Target::parse("ws://u:%ff@127.0.0.1/"),
            Err(Error::InvalidUrl(_))
        ));
    }

    #[test]
    fn keeps_the_query_string() {
        let t = Target::parse("ws://127.0.0.1:9001/feed?token=abc&x=1").unwrap();
        assert_eq!(
            t.uri.path_and_query().unwrap().as_str(),
            "/feed?token=abc&x=1"
        );
        assert_eq!(t.port, 9001);
        assert!(!t.tls);
    }

    #[test]
    fn default_ports_and_tls_by_scheme() {
        assert_eq!(Target::parse("ws://localhost").unwrap().port, 80);
        let t = Target::parse("wss://localhost").unwrap();
        assert_eq!((t.port, t.tls), (443, true));
        // TLS follows the scheme, never the port.
        assert!(!Target::parse("ws://localhost:443").unwrap().tls);
        assert!(Target::parse("wss://localhost:80").unwrap().tls);
        assert!(Target::parse("WSS://LocalHost/").unwrap().tls);
    }

    #[test]
    fn empty_path_becomes_slash() {
        let t = Target::parse("ws://localhost:1").unwrap();
        assert_eq!(t.uri.path_and_query().unwrap().as_str(), "/");
        let t = Target::parse("ws://localhost:1?q=1").unwrap();
        assert_eq!(t.uri.path_and_query().unwrap().as_str(), "/?q=1");
    }

    #[test]
    fn ipv6_literal_loses_its_brackets_for_dns_and_tls() {
        let t = Target::parse("ws://[::1]:8080/x").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.port, 8080);
        assert_eq!(t.uri.authority().unwrap().as_str(), "[::1]:8080");
    }

    #[test]
    fn rejects_what_is_not_a_websocket_url() {
        for bad in [
            "",
            "localhost:80",
            "http://localhost/",
            "ftp://x",
            "ws://",
            "ws:///path",
            "ws://127.0.0.1/#frag",
            "not a url",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(Error::InvalidUrl(_))),
                "{bad:?} was accepted"
            );
        }
    }
}
