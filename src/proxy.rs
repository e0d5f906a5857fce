//! Proxies as data, before any I/O: a proxy URL parsed, the proxy environment variables read
//! by curl's rules, and `no_proxy` matched against the target. The I/O thread only gets the
//! outcome, a [`Route`]; it never reads the environment.
//!
//! Credentials never leave this module in a form that prints: [`Proxy`]'s `Debug` and
//! `Display` show `***` in their place, and no error message quotes them.

use std::fmt;
use std::net::IpAddr;

/// How the connection reaches the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Straight to the server.
    Direct,
    /// Through this proxy.
    Proxy(Proxy),
    /// The environment names a proxy that does not parse. The attempt fails with this message
    /// (no credentials in it) rather than go around the proxy the user asked for.
    BadEnvironment(String),
}

/// Which protocol the proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyKind {
    /// HTTP `CONNECT` (`http://`).
    Http,
    /// SOCKS5 with the client resolving the target's name (`socks5://`).
    Socks5,
    /// SOCKS5 with the proxy resolving it (`socks5h://`).
    Socks5h,
}

/// A proxy: where it is, what it speaks, and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    pub(crate) kind: ProxyKind,
    /// Without the brackets of an IPv6 literal.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) credentials: Option<Credentials>,
}

/// A user name and password, percent-decoded. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(***)")
    }
}

impl Credentials {
    /// The value of a `Basic` authorization header (RFC 7617).
    pub(crate) fn basic(&self) -> String {
        let pair = format!("{}:{}", self.user, self.password);
        format!("Basic {}", data_encoding::BASE64.encode(pair.as_bytes()))
    }
}

impl fmt::Display for Proxy {
    /// The proxy as a URL, credentials replaced by `***`: safe for logs and errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
        };
        let auth = if self.credentials.is_some() {
            "***@"
        } else {
            ""
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://{auth}[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{auth}{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({self})")
    }
}

impl Proxy {
    /// Parses `[scheme://][user[:password]@]host[:port][/]`. The scheme is `http` (also when
    /// none is given), `socks5` or `socks5h`; the port defaults to 80 for HTTP and 1080 for
    /// SOCKS. User and password are percent-decoded.
    ///
    /// # Errors
    /// Why the URL is not a proxy we can use, as a message that quotes no credentials.
    pub(crate) fn parse(url: &str) -> Result<Proxy, String> {
        let url = url.trim();
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), url),
        };
        // The user-info ends at the last `@`, wherever it is: a password may hold an
        // unescaped `/`, `?` or `#`, and must not be taken for a path and quoted.
        let (userinfo, after) = match rest.rsplit_once('@') {
            Some((userinfo, after)) => (Some(userinfo), after),
            None => (None, rest),
        };
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (host_port, tail) = after.split_at(end);
        // The path, query or fragment is not shown either: it has no business here, and may
        // hold a token.
        let shown = format!(
            "{scheme}://{}{host_port}",
            if userinfo.is_some() { "***@" } else { "" }
        );
        let invalid = |why: &str| format!("{why}: {shown:?}");
        if userinfo.is_some_and(|userinfo| userinfo.contains(['/', '?', '#'])) {
            return Err(invalid(
                "the user name or password holds a '/', '?' or '#': percent-encode it \
                 (%2F, %3F, %23)",
            ));
        }
        let (kind, default_port) = match scheme.as_str() {
            "http" => (ProxyKind::Http, 80),
            "socks5" => (ProxyKind::Socks5, 1080),
            "socks5h" => (ProxyKind::Socks5h, 1080),
            "https" => {
                return Err(invalid(
                    "HTTPS proxies (TLS to the proxy) are not supported, use http://",
                ));
            }
            _ => {
                return Err(invalid("the proxy scheme must be http, socks5 or socks5h"));
            }
        };
        if !tail.is_empty() && tail != "/" {
            return Err(invalid("a proxy URL has no path, query or fragment"));
        }
        let (host, port) = split_host_port(host_port).ok_or_else(|| invalid("no valid host"))?;
        let port = match port {
            None => default_port,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port != 0 => port,
                _ => return Err(invalid("invalid port")),
            },
        };
        let credentials = match userinfo {
            None => None,
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .map(|s| s.into_owned())
                        .map_err(|_| invalid("the user name or password is not UTF-8"))
                };
                let credentials = Credentials {
                    user: decode(user)?,
                    password: decode(password)?,
                };
                if credentials.user.is_empty() {
                    return Err(invalid("empty user name"));
                }
                if kind != ProxyKind::Http
                    && (credentials.user.len() > 255 || credentials.password.len() > 255)
                {
                    return Err(invalid(
                        "SOCKS5 allows user names and passwords of at most 255 bytes",
                    ));
                }
                Some(credentials)
            }
        };
        Ok(Proxy {
            kind,
            host,
            port,
            credentials,
        })
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` into the host (lowercase, no brackets) and the
/// port text. `None` when the host is empty or has characters no host name has.
fn split_host_port(text: &str) -> Option<(String, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        return Some((v6.to_ascii_lowercase(), port));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if host.is_empty() || !host.chars().all(valid) {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// The environment variables that may name a proxy for `ws://` (`tls == false`) or `wss://`,
/// in the order they are tried: the scheme's own, then `all_proxy`; lowercase before uppercase,
/// as curl does.
pub(crate) fn proxy_variables(tls: bool) -> [&'static str; 4] {
    if tls {
        ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
    }
}

/// The route to `host:port` by the environment that `var` reads (a closure, so that tests
/// pass a map): the first set, non-empty proxy variable, unless `no_proxy`/`NO_PROXY`
/// (lowercase first) excludes the host.
pub(crate) fn route_from_env(
    tls: bool,
    host: &str,
    port: u16,
    var: impl Fn(&str) -> Option<String>,
) -> Route {
    let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    let Some((name, value)) = proxy_variables(tls)
        .into_iter()
        .find_map(|name| set(name).map(|value| (name, value)))
    else {
        return Route::Direct;
    };
    if let Some(no_proxy) = set("no_proxy").or_else(|| set("NO_PROXY")) {
        if NoProxy::parse(&no_proxy).matches(host, port) {
            return Route::Direct;
        }
    }
    match Proxy::parse(&value) {
        Ok(proxy) => Route::Proxy(proxy),
        Err(why) => Route::BadEnvironment(format!("{name}: {why}")),
    }
}

/// A `no_proxy` list: which hosts go direct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NoProxy {
    all: bool,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    pattern: Pattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// The host itself and every name under it.
    Domain(String),
    Ip(IpAddr),
    Cidr(IpAddr, u8),
}

impl NoProxy {
    /// Parses a comma- (or space-) separated list of entries: `*` (every host), a host name
    /// (`example.com`, `.example.com` and `*.example.com` all match the name and its
    /// subdomains), an IP address (`10.1.2.3`, `::1`, `[::1]`), a CIDR range (`10.0.0.0/8`,
    /// `fd00::/8`), each optionally with `:port` (`[::1]:8080` for IPv6). Entries that fit none
    /// of these are ignored, as curl does.
    pub(crate) fn parse(list: &str) -> NoProxy {
        let mut no_proxy = NoProxy::default();
        for item in list.split([',', ' ', '\t', '\n']).filter(|s| !s.is_empty()) {
            if item == "*" {
                no_proxy.all = true;
            } else if let Some(entry) = Entry::parse(item) {
                no_proxy.entries.push(entry);
            }
        }
        no_proxy
    }

    /// Whether `host` (lowercase, IPv6 without brackets) on `port` goes direct.
    pub(crate) fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.all
            || self.entries.iter().any(|entry| {
                entry.port.is_none_or(|p| p == port)
                    && match (&entry.pattern, ip) {
                        (Pattern::Ip(want), Some(ip)) => *want == ip,
                        (Pattern::Cidr(net, bits), Some(ip)) => in_cidr(ip, *net, *bits),
                        (Pattern::Domain(domain), None) => {
                            host == *domain
                                || host
                                    .strip_suffix(domain.as_str())
                                    .is_some_and(|sub| sub.ends_with('.'))
                        }
                        _ => false,
                    }
            })
    }
}

impl Entry {
    fn parse(item: &str) -> Option<Entry> {
        // `*.example.com` is `.example.com`.
        let item = item.strip_prefix('*').unwrap_or(item).to_ascii_lowercase();
        if let Some((net, bits)) = item.split_once('/') {
            let net = net.trim_start_matches('[').trim_end_matches(']');
            let net: IpAddr = net.parse().ok()?;
            let bits: u8 = bits.parse().ok()?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            return (bits <= max).then_some(Entry {
                pattern: Pattern::Cidr(net, bits),
                port: None,
            });
        }
        if let Ok(ip) = item.parse::<IpAddr>() {
            return Some(Entry {
                pattern: Pattern::Ip(ip),
                port: None,
            });
        }
        let (host, port) = split_host_port(&item)?;
        let port = match port {
            None => None,
            Some(port) => Some(port.parse::<u16>().ok()?),
        };
        let pattern = match host.parse::<IpAddr>() {
            Ok(ip) => Pattern::Ip(ip),
            Err(_) => {
                let domain = host.trim_start_matches('.').trim_end_matches('.');
                if domain.is_empty() || domain.contains(':') {
                    return None;
                }
                Pattern::Domain(domain.to_owned())
            }
        };
        Some(Entry { pattern, port })
    }
}

/// Whether `ip` is in `net/bits`. An IPv4-mapped IPv6 address counts as its IPv4 address.
fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn proxy(url: &str) -> Proxy {
        Proxy::parse(url).unwrap_or_else(|why| panic!("{url:?}: {why}"))
    }

    #[test]
    fn parses_each_scheme_with_its_default_port() {
        let p = proxy("http://proxy.corp:3128");
        assert_eq!(
            (p.kind, p.host.as_str(), p.port),
            (ProxyKind::Http, "proxy.corp", 3128)
        );
        assert_eq!(proxy("http://proxy.corp").port, 80);
        assert_eq!(proxy("HTTP://Proxy.Corp/").host, "proxy.corp");
        let p = proxy("proxy.corp:8080");
        assert_eq!((p.kind, p.port), (ProxyKind::Http, 8080));
        let p = proxy("socks5://10.0.0.1");
        assert_eq!((p.kind, p.port), (ProxyKind::Socks5, 1080));
        let p = proxy("socks5h://[::1]:9050");
        assert_eq!(
            (p.kind, p.host.as_str(), p.port),
            (ProxyKind::Socks5h, "::1", 9050)
        );
        assert_eq!(proxy(" http://p:1 ").port, 1);
        assert_eq!(proxy("socks5h://[::1]").port, 1080);
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let p = proxy("http://al%40ice:p%3Ass%20w@proxy:3128");
        let c = p.credentials.as_ref().unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("al@ice", "p:ss w"));
        // Only the first colon separates; the last @ ends the user-info.
        let p = proxy("socks5://u:a:b@c@h:1");
        let c = p.credentials.as_ref().unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("u", "a:b@c"));
        assert_eq!(p.host, "h");
        let c = proxy("http://user@h").credentials.unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("user", ""));
        assert_eq!(
            Credentials {
                user: "Aladdin".into(),
                password: "open sesame".into()
            }
            .basic(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn rejects_what_is_not_a_proxy_and_never_quotes_credentials() {
        for bad in [
            "https://user:hunter2@proxy:443",
            "socks4://user:hunter2@proxy:1080",
            "ftp://user:hunter2@proxy",
            "http://user:hunter2@proxy:0",
            "http://user:hunter2@proxy:99999",
            "http://user:hunter2@proxy:port",
            "http://user:hunter2@:3128",
            "http://user:hunter2@",
            "http://user:hunter2@proxy:3128/path",
            "http://user:hunter2@proxy:3128?x=1",
            "http://user:hunter2@pro xy:3128",
            "http://user:hunter2@[::1:3128",
            "http://user:hunter2@[nothex]:3128",
            "http://:hunter2@proxy:3128",
            "http://user:hunter2%ff@proxy",
            "http://user:hun/ter2@proxy:3128",
            "http://user:hun?ter2@proxy:3128",
            "http://user:hun#ter2@proxy:3128",
            "socks5://user:hun/ter2@proxy",
            "user:hun/ter2@proxy:3128",
            "http://proxy:3128/?token=hunter2",
            "",
        ] {
            let why = Proxy::parse(bad).expect_err(bad);
            assert!(
                !why.contains("hunter2") && !why.contains("hun") && !why.contains("ter2"),
                "{why}"
            );
        }
        let long = "x".repeat(256);
        assert!(Proxy::parse(&format!("socks5://{long}:pw@h")).is_err());
        assert!(Proxy::parse(&format!("socks5://u:{long}@h")).is_err());
        assert!(Proxy::parse(&format!("http://u:{long}@h")).is_ok());
    }

    #[test]
    fn display_and_debug_hide_credentials() {
        let p = proxy("socks5h://user:hunter2@[::1]:9050");
        assert_eq!(p.to_string(), "socks5h://***@[::1]:9050");
        let debug = format!("{p:?} {:?}", Route::Proxy(p.clone()));
        assert!(
            !debug.contains("hunter2") && !debug.contains("user"),
            "{debug}"
        );
        assert_eq!(proxy("http://h:1").to_string(), "http://h:1");
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn routed(tls: bool, host: &str, pairs: &[(&str, &str)]) -> Option<String> {
        match route_from_env(tls, host, 443, env(pairs)) {
            Route::Direct => None,
            Route::Proxy(p) => Some(p.to_string()),
            Route::BadEnvironment(why) => Some(format!("bad: {why}")),
        }
    }

    #[test]
    fn env_picks_by_scheme_then_all_proxy_lowercase_first() {
        let all = [
            ("http_proxy", "http://lower-http:1"),
            ("HTTP_PROXY", "http://upper-http:1"),
            ("https_proxy", "http://lower-https:1"),
            ("HTTPS_PROXY", "http://upper-https:1"),
            ("all_proxy", "socks5://lower-all:1"),
            ("ALL_PROXY", "socks5://upper-all:1"),
        ];
        assert_eq!(routed(false, "h", &all).unwrap(), "http://lower-http:1");
        assert_eq!(routed(true, "h", &all).unwrap(), "http://lower-https:1");
        assert_eq!(
            routed(true, "h", &all[3..]).unwrap(),
            "http://upper-https:1"
        );
        assert_eq!(
            routed(false, "h", &all[1..]).unwrap(),
            "http://upper-http:1"
        );
        // wss never uses http_proxy, ws never https_proxy: all_proxy is the fallback.
        assert_eq!(routed(true, "h", &all[..2]), None);
        assert_eq!(routed(false, "h", &all[2..4]), None);
        assert_eq!(
            routed(false, "h", &all[2..]).unwrap(),
            "socks5://lower-all:1"
        );
        assert_eq!(
            routed(true, "h", &all[5..]).unwrap(),
            "socks5://upper-all:1"
        );
        // Empty means unset.
        assert_eq!(
            routed(
                true,
                "h",
                &[("https_proxy", ""), ("HTTPS_PROXY", "http://u:1")]
            )
            .unwrap(),
            "http://u:1"
        );
        assert_eq!(routed(true, "h", &[]), None);
    }

    #[test]
    fn env_no_proxy_lowercase_first_and_bad_values_reported_without_credentials() {
        let base = [("https_proxy", "http://p:1")];
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            routed(true, "api.example.com", &pairs)
        };
        assert_eq!(with(&[("no_proxy", "example.com")]), None);
        assert_eq!(with(&[("NO_PROXY", "example.com")]), None);
        assert!(with(&[("no_proxy", "other.org"), ("NO_PROXY", "example.com")]).is_some());
        assert_eq!(with(&[("no_proxy", ""), ("NO_PROXY", "*")]), None);
        let bad = routed(true, "h", &[("https_proxy", "https://u:hunter2@p")]).unwrap();
        assert!(bad.starts_with("bad: https_proxy: "), "{bad}");
        assert!(!bad.contains("hunter2"), "{bad}");
        // Excluded hosts go direct even when the variable would not parse.
        assert_eq!(
            routed(true, "h", &[("https_proxy", "bogus://"), ("no_proxy", "h")]),
            None
        );
    }

    #[test]
    fn no_proxy_rules() {
        let list = NoProxy::parse(
            "example.com, .corp.net,*.internal ,10.0.0.0/8 192.168.1.7,::1,[fd00::1],\
             fe80::/10,host.lan:8080,[::2]:9000,10.9.9.9:7,bad/99,Localhost.",
        );
        let yes = |host: &str, port: u16| assert!(list.matches(host, port), "{host}:{port}");
        let no = |host: &str, port: u16| assert!(!list.matches(host, port), "{host}:{port}");
        yes("example.com", 443);
        yes("api.example.com", 443);
        yes("EXAMPLE.com.", 1);
        no("badexample.com", 443);
        no("example.com.evil", 443);
        yes("corp.net", 1);
        yes("a.b.corp.net", 1);
        no("xcorp.net", 1);
        yes("internal", 1);
        yes("svc.internal", 1);
        yes("10.1.2.3", 1);
        no("11.0.0.1", 1);
        yes("192.168.1.7", 1);
        no("192.168.1.8", 1);
        yes("::1", 1);
        yes("fd00::1", 1);
        yes("fe80::abcd", 1);
        no("fec0::1", 1);
        yes("host.lan", 8080);
        no("host.lan", 8081);
        yes("::2", 9000);
        no("::2", 9001);
        yes("10.9.9.9", 7);
        yes("localhost", 80);
        // An IP is never matched as a domain suffix, nor a name as an IP.
        no("1.10.0.0", 1);
        yes("::ffff:10.0.0.1", 1);
        assert!(NoProxy::parse("*").matches("anything", 1));
        assert!(NoProxy::parse("a, *").matches("anything", 1));
        assert!(!NoProxy::parse("").matches("anything", 1));
        assert!(!NoProxy::parse(" , ,").matches("anything", 1));
        assert!(NoProxy::parse("0.0.0.0/0").matches("8.8.8.8", 1));
        assert!(!NoProxy::parse("0.0.0.0/0").matches("::1", 1));
        assert!(NoProxy::parse("::/0").matches("2001:db8::1", 1));
        assert!(NoProxy::parse("127.0.0.1/32").matches("127.0.0.1", 1));
        assert!(!NoProxy::parse("127.0.0.1/33").matches("127.0.0.1", 1));
    }
}
