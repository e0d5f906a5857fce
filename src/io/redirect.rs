//! Where a redirect of the upgrade request leads, and whether to go there: the `Location`
//! resolved against the current URL (RFC 3986 §5.2), and the refusals (too many hops, `wss`
//! to `ws`, credentials to another host). Pure: no I/O.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::target::Target;

/// The statuses that redirect.
pub(super) fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The target of hop `hop` (1 for the first redirect) after a redirect from `current` that
/// answered `headers`, whose request also carried `extra` headers (from the hook).
///
/// # Errors
/// [`Error::Redirect`] for each refusal; [`Error::Rejected`] is left to the caller when there
/// is no `Location` at all.
pub(super) fn follow(
    current: &Target,
    extra: &[(HeaderName, HeaderValue)],
    headers: &HeaderMap,
    (hop, config): (u32, &Config),
) -> Result<Target> {
    let refuse = |why: String| Err(Error::Redirect(why.into()));
    if hop > config.follow_redirects() {
        return refuse(format!(
            "too many redirects (at most {})",
            config.follow_redirects()
        ));
    }
    let Some(location) = headers
        .get(http::header::LOCATION)
        .and_then(|value| value.to_str().ok())
    else {
        return refuse("the redirect has no readable Location".into());
    };
    // The base without user-info: only an absolute Location could bring user-info in.
    let uri = &current.uri;
    let authority = uri.authority().map_or("", |a| a.as_str());
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let base = format!("{}://{authority}{path}", uri.scheme_str().unwrap_or("ws"));
    let url = resolve(&base, location.trim()).ok_or_else(|| {
        Error::Redirect("the Location is not a ws, wss, http or https URL".into())
    })?;
    let mut next = current
        .rerouted(&url, config)
        .map_err(|err| Error::Redirect(Box::new(err)))?;
    if next.authorization.is_some() {
        return refuse("the Location carries user-info".into());
    }
    if current.tls && !next.tls {
        return refuse("refusing to follow a redirect from wss to ws".into());
    }
    let same_host = next.host == current.host && next.port == current.port;
    if same_host {
        next.authorization = current.authorization.clone();
    } else if has_credentials(current, extra, config) {
        return refuse(format!(
            "refusing to send credentials to another host ({}:{})",
            next.host, next.port
        ));
    }
    log::debug!("redirected to {}", next.redacted());
    Ok(next)
}

/// Whether the request carries credentials: user-info in the URL, or an `Authorization` or
/// `Cookie` header from the config or the hook.
fn has_credentials(target: &Target, extra: &[(HeaderName, HeaderValue)], config: &Config) -> bool {
    let secret =
        |name: &HeaderName| name == http::header::AUTHORIZATION || name == http::header::COOKIE;
    target.authorization.is_some()
        || config.header_pairs().iter().any(|(name, _)| secret(name))
        || extra.iter().any(|(name, _)| secret(name))
}

/// `location` resolved against `base` (an absolute `ws://` or `wss://` URL) as a WebSocket
/// URL, without a fragment; `None` for a scheme other than ws, wss, http or https.
fn resolve(base: &str, location: &str) -> Option<String> {
    let location = location.split('#').next().unwrap_or_default();
    let (base_scheme, base_rest) = base.split_once("://")?;
    let authority_end = base_rest.find('/').unwrap_or(base_rest.len());
    let (authority, base_path) = base_rest.split_at(authority_end);
    if let Some((scheme, rest)) = location.split_once("://").filter(|(s, _)| is_scheme(s)) {
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "ws" | "http" => "ws",
            "wss" | "https" => "wss",
            _ => return None,
        };
        return Some(format!("{scheme}://{rest}"));
    }
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{base_scheme}://{rest}"));
    }
    let (path, query) = match location.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (location, None),
    };
    let base_path = base_path.split('?').next().unwrap_or_default();
    let merged = if path.is_empty() {
        base_path.to_owned()
    } else if path.starts_with('/') {
        path.to_owned()
    } else {
        let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{path}")
    };
    let mut url = format!(
        "{base_scheme}://{authority}{}",
        remove_dot_segments(&merged)
    );
    match (query, path.is_empty()) {
        (Some(query), _) => url.extend(["?", query]),
        // An empty reference keeps the base's query (RFC 3986 §5.2.2).
        (None, true) => {
            if let Some((_, query)) = base_rest.split_once('?') {
                url.extend(["?", query]);
            }
        }
        (None, false) => {}
    }
    Some(url)
}

/// Whether `s` is a URL scheme (RFC 3986 §3.1), so that `s://` starts an absolute URL.
fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// RFC 3986 §5.2.4 on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_as_rfc_3986_says() {
        let base = "wss://h.example:8443/a/b/c?q=1";
        for (location, expected) in [
            ("wss://other.example/x", "wss://other.example/x"),
            ("https://other.example/x?y", "wss://other.example/x?y"),
            ("HTTP://other.example/", "ws://other.example/"),
            ("//cdn.example/feed", "wss://cdn.example/feed"),
            ("/root?t=2", "wss://h.example:8443/root?t=2"),
            ("d", "wss://h.example:8443/a/b/d"),
            ("../d#frag", "wss://h.example:8443/a/d"),
            ("./", "wss://h.example:8443/a/b/"),
            ("../../../../g", "wss://h.example:8443/g"),
            ("?t=3", "wss://h.example:8443/a/b/c?t=3"),
            ("", "wss://h.example:8443/a/b/c?q=1"),
        ] {
            assert_eq!(
                resolve(base, location).as_deref(),
                Some(expected),
                "{location}"
            );
        }
        assert_eq!(resolve(base, "ftp://h.example/"), None);
        assert_eq!(resolve(base, "javascript://alert(1)"), None);
    }
}
