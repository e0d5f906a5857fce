//! What may be shown of URLs and headers in logs, `Debug` output and error messages: no
//! user-info, no query values, no fragment, no value of a header that carries credentials.

use std::fmt;

use http::HeaderMap;

/// Parts of header names that mark a header as carrying credentials: `Authorization`,
/// `Proxy-Authorization`, `Cookie`, `Set-Cookie`, and the usual custom ones (`X-Api-Key`,
/// `X-Auth-Token`, `X-Session-Id`, ...).
const SENSITIVE: [&str; 9] = [
    "auth",
    "cookie",
    "token",
    "key",
    "secret",
    "password",
    "session",
    "signature",
    "credential",
];

/// Headers whose names match a part above but which carry nothing secret: the handshake's
/// own, and the challenges that name the schemes a server or proxy accepts.
const NOT_SENSITIVE: [&str; 4] = [
    "sec-websocket-key",
    "sec-websocket-accept",
    "www-authenticate",
    "proxy-authenticate",
];

/// Whether the header `name` carries credentials (any case).
pub(crate) fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !NOT_SENSITIVE.contains(&name.as_str()) && SENSITIVE.iter().any(|part| name.contains(part))
}

/// Marks each value of a header that carries credentials as sensitive, so that the map's
/// `Debug` shows `Sensitive` in its place.
pub(crate) fn mark_sensitive(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if is_sensitive(name.as_str()) {
            value.set_sensitive(true);
        }
    }
}

/// `name: value` pairs for `Debug`, with `***` for the value of a header that carries
/// credentials.
pub(crate) struct Headers<'a, N, V>(pub(crate) &'a [(N, V)]);

impl<N: AsRef<str>, V: fmt::Debug> fmt::Debug for Headers<'_, N, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_map();
        for (name, value) in self.0 {
            let name = name.as_ref();
            if is_sensitive(name) {
                list.entry(&name, &format_args!("***"));
            } else {
                list.entry(&name, value);
            }
        }
        list.finish()
    }
}

/// `url` as far as it may be shown: the user-info (`user:password@`) replaced by `***@`, each
/// query value by `***`, and no fragment.
///
/// The text may not even parse as a URL: a password may hold an unescaped `/`, `?` or `#`,
/// which would end the authority early. So everything up to the **last** `@` counts as
/// user-info; an `@` in a path then hides the host too, which is the safe way to be wrong.
pub(crate) fn url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let (hidden, rest) = match rest.rsplit_once('@') {
        Some((_, rest)) => (true, rest),
        None => (false, rest),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let mut out = String::new();
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    if hidden {
        out.push_str("***@");
    }
    match rest.split_once('?') {
        Some((before, query_text)) => {
            out.push_str(before);
            out.push('?');
            out.push_str(&query(query_text));
        }
        None => out.push_str(rest),
    }
    out
}

/// A query string with each value replaced by `***`.
pub(crate) fn query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) => format!("{name}=***"),
            None => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_user_info_query_values_and_fragment_even_when_malformed() {
        for (raw, shown) in [
            (
                "wss://user:secret@127.0.0.1:1/feed?token=abc&x=1&flag#frag",
                "wss://***@127.0.0.1:1/feed?token=***&x=***&flag",
            ),
            ("ws://127.0.0.1/path", "ws://127.0.0.1/path"),
            ("not a url?key=v", "not a url?key=***"),
            // Unescaped `/`, `?` and `#` in a password.
            ("http://u:pa/ss@proxy:3128", "http://***@proxy:3128"),
            ("http://u:pa?ss@proxy:3128", "http://***@proxy:3128"),
            ("ws://u:pa#ss@host/x", "ws://***@host/x"),
            ("u:pa/ss@proxy:3128", "***@proxy:3128"),
            ("ws://host/#token", "ws://host/"),
        ] {
            assert_eq!(url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn credential_headers_are_sensitive_and_the_handshakes_own_are_not() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "Set-Cookie",
            "X-Api-Key",
            "X-Auth-Token",
        ] {
            assert!(is_sensitive(name), "{name}");
        }
        for name in [
            "Origin",
            "User-Agent",
            "Sec-WebSocket-Key",
            "Retry-After",
            "Proxy-Authenticate",
        ] {
            assert!(!is_sensitive(name), "{name}");
        }
        let mut map = HeaderMap::new();
        map.insert("set-cookie", "id=s3cret".parse().unwrap());
        map.insert("retry-after", "7".parse().unwrap());
        mark_sensitive(&mut map);
        let debug = format!("{map:?}");
        assert!(!debug.contains("s3cret") && debug.contains('7'), "{debug}");
        let pairs = [("Cookie", "a=s3cret"), ("Origin", "https://o.test")];
        let debug = format!("{:?}", Headers(&pairs));
        assert!(
            !debug.contains("s3cret") && debug.contains("o.test"),
            "{debug}"
        );
    }
}
