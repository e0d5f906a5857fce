//! The HTTP upgrade request, written by us.
//!
//! tungstenite logs the whole request it writes at trace level, so it never gets ours: the
//! query, the configured headers (`Authorization`, `Cookie`, ...) and the `Authorization` made
//! from the URL's user-info would all be in that line. It gets a stand-in instead, with the
//! same key and subprotocols, which is all it needs to check the server's answer; the stream
//! (`UpgradeStream`) drops the stand-in and writes [`Upgrade::head`].

use std::fmt;

use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue, Uri};
use tungstenite::handshake::client::{Request, generate_key};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::target::Target;

/// The request that goes out, and the stand-in that tungstenite checks the answer against.
pub(super) struct Upgrade {
    /// The request head as written to the socket, blank line included.
    pub(super) head: Vec<u8>,
    /// Path without query, the handshake's own headers and the subprotocols: nothing secret.
    pub(super) stand_in: Request,
}

/// Shows the stand-in only: the head holds the query, the headers and the credentials.
impl fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrade")
            .field("head", &format_args!("{} bytes", self.head.len()))
            .field("stand_in", &self.stand_in)
            .finish()
    }
}

/// The upgrade request for `target` with the configured headers and subprotocols, the
/// permessage-deflate offer, and the URL's credentials unless an `Authorization` header is
/// configured. `hooked`, the headers of a `before_each_connect` hook, replace configured
/// headers of the same name.
///
/// # Errors
/// [`Error::InvalidUrl`] if the stand-in cannot be built from the URL (it was checked before).
pub(super) fn upgrade(
    target: &Target,
    config: &Config,
    hooked: &[(HeaderName, HeaderValue)],
) -> Result<Upgrade> {
    let invalid = |_| Error::InvalidUrl(format!("not a URL: {:?}", target.redacted()));
    let authority = target.uri.authority().map_or("", |a| a.as_str());
    // The user-info is sent as `Authorization`, never in `Host`.
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let key = generate_key();
    let path = target.uri.path();
    let path_and_query = target.uri.path_and_query().map_or(path, |pq| pq.as_str());

    let mut fields: Vec<(&str, &[u8])> = vec![
        ("Host", host.as_bytes()),
        ("Connection", b"Upgrade"),
        ("Upgrade", b"websocket"),
        ("Sec-WebSocket-Version", b"13"),
        ("Sec-WebSocket-Key", key.as_bytes()),
    ];
    let protocols = config.protocols().join(", ");
    if !protocols.is_empty() {
        fields.push(("Sec-WebSocket-Protocol", protocols.as_bytes()));
    }
    let scheme = if target.tls { "wss" } else { "ws" };
    let stand_in_uri: Uri = format!("{scheme}://{host}{path}")
        .parse()
        .map_err(invalid)?;
    let mut stand_in = Request::builder().method("GET").uri(stand_in_uri);
    for (name, value) in &fields {
        stand_in = stand_in.header(*name, *value);
    }
    let stand_in = stand_in
        .body(())
        .map_err(|_| Error::InvalidUrl(format!("not a URL: {:?}", target.redacted())))?;

    let offer = config.deflate_offer().map(|offer| offer.header());
    if let Some(offer) = &offer {
        fields.push(("Sec-WebSocket-Extensions", offer.as_bytes()));
    }
    let mut has_authorization = false;
    let configured = config
        .header_pairs()
        .iter()
        .filter(|(name, _)| !hooked.iter().any(|(replaced, _)| replaced == name));
    for (name, value) in configured.chain(hooked) {
        has_authorization |= name == AUTHORIZATION;
        // Some servers compare `Origin` case-sensitively; tungstenite writes it so too.
        let name = if name == http::header::ORIGIN {
            "Origin"
        } else {
            name.as_str()
        };
        fields.push((name, value.as_bytes()));
    }
    if let (Some(authorization), false) = (&target.authorization, has_authorization) {
        fields.push(("Authorization", authorization.as_bytes()));
    }

    let mut head = format!("GET {path_and_query} HTTP/1.1\r\n").into_bytes();
    for (name, value) in fields {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    Ok(Upgrade { head, stand_in })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(upgrade: &Upgrade) -> String {
        String::from_utf8(upgrade.head.clone()).unwrap()
    }

    #[test]
    fn the_wire_gets_everything_and_the_stand_in_nothing_secret() {
        let target = Target::parse("wss://al:pw-secret@127.0.0.1:9/feed?token=q-secret").unwrap();
        let config = Config::builder()
            .header("Cookie", "id=c-secret")
            .header("origin", "https://app.test")
            .protocol("chat")
            .build()
            .unwrap();
        let upgrade = upgrade(&target, &config, &[]).unwrap();
        let head = text(&upgrade);
        assert!(
            head.starts_with("GET /feed?token=q-secret HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"),
            "{head}"
        );
        for line in [
            "cookie: id=c-secret\r\n",
            "Origin: https://app.test\r\n",
            "Sec-WebSocket-Protocol: chat\r\n",
            "Authorization: Basic YWw6cHctc2VjcmV0\r\n", // al:pw-secret
            "Sec-WebSocket-Extensions: permessage-deflate",
        ] {
            assert!(head.contains(line), "{line:?} in {head}");
        }
        assert!(head.ends_with("\r\n\r\n") && !head.ends_with("\r\n\r\n\r\n"));

        let stand_in = &upgrade.stand_in;
        assert_eq!(stand_in.uri().to_string(), "wss://127.0.0.1:9/feed");
        let key = stand_in.headers()["sec-websocket-key"].to_str().unwrap();
        assert!(head.contains(&format!("Sec-WebSocket-Key: {key}\r\n")));
        assert_eq!(stand_in.headers()["sec-websocket-protocol"], "chat");
        let (written, _) =
            tungstenite::handshake::client::generate_request(stand_in.clone()).unwrap();
        let written = String::from_utf8(written).unwrap();
        for secret in ["secret", "al:", "YWw6", "cookie", "app.test"] {
            assert!(!written.contains(secret), "{secret:?} in {written}");
        }
    }

    #[test]
    fn a_configured_authorization_wins_over_the_user_info() {
        let target = Target::parse("ws://u:p@localhost/").unwrap();
        let config = Config::builder()
            .header("Authorization", "Bearer b")
            .deflate(false)
            .build()
            .unwrap();
        let head = text(&upgrade(&target, &config, &[]).unwrap());
        assert_eq!(head.matches("uthorization").count(), 1, "{head}");
        assert!(head.contains("authorization: Bearer b\r\n"), "{head}");
        assert!(!head.contains("xtensions"), "{head}");
        assert!(
            head.starts_with("GET / HTTP/1.1\r\nHost: localhost\r\n"),
            "{head}"
        );
        let debug = format!("{:?}", upgrade(&target, &config, &[]).unwrap());
        assert!(
            !debug.contains("Bearer") && !debug.contains("dTpw"),
            "{debug}"
        );
    }
}
