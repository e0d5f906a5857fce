//! The HTTP `CONNECT` stage: asks an HTTP proxy for a tunnel to the server (RFC 9110 §9.3.6),
//! with `Proxy-Authorization: Basic` when the proxy URL has credentials, and reads the answer.
//! A 2xx opens the tunnel; whatever came after its head already belongs to the tunnel and is
//! handed on. Any other status is [`Error::ProxyRejected`], headers kept.

use std::io::{Read, Write};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::exchange::{Exchange, protocol};
use crate::error::{Error, Result};
use crate::proxy::Credentials;

/// The most headers an answer may have; tungstenite's limit for the upgrade response.
const MAX_HEADERS: usize = 124;

/// The longest answer head we wait for.
const MAX_HEAD: usize = 64 << 10;

#[derive(Debug)]
pub(super) struct HttpConnect {
    exchange: Exchange,
}

impl HttpConnect {
    /// Queues the `CONNECT` request for `host:port` (`host` without brackets).
    pub(super) fn new(host: &str, port: u16, credentials: Option<&Credentials>) -> Self {
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request =
            format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n").into_bytes();
        if let Some(credentials) = credentials {
            request.extend_from_slice(b"Proxy-Authorization: ");
            request.extend_from_slice(credentials.basic().as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        let mut exchange = Exchange::default();
        exchange.queue(&request);
        HttpConnect { exchange }
    }

    /// Sends the request and reads the answer as far as the socket allows. `Some(bytes)` when
    /// the tunnel is open, with the tunnel's first bytes (often none).
    pub(super) fn advance(&mut self, io: &mut (impl Read + Write)) -> Result<Option<Vec<u8>>> {
        if !self.exchange.flush(io)? {
            return Ok(None);
        }
        loop {
            match parse(self.exchange.received())? {
                Answer::Partial => {}
                Answer::Informational(end) => {
                    self.exchange.consume(end);
                    continue;
                }
                Answer::Established(end) => {
                    let mut exchange = std::mem::take(&mut self.exchange);
                    exchange.consume(end);
                    return Ok(Some(exchange.into_received()));
                }
                Answer::Refused(status, mut headers) => {
                    crate::redact::mark_sensitive(&mut headers);
                    return Err(Error::ProxyRejected {
                        status,
                        headers: Box::new(headers),
                    });
                }
            }
            if !self.exchange.receive(io, MAX_HEAD)? {
                return Ok(None);
            }
        }
    }
}

#[derive(Debug, PartialEq)]
enum Answer {
    Partial,
    /// A 1xx head ending here, to skip.
    Informational(usize),
    /// A 2xx head ending here.
    Established(usize),
    Refused(u16, HeaderMap),
}

fn parse(bytes: &[u8]) -> Result<Answer> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let end = match response.parse(bytes) {
        Ok(httparse::Status::Complete(end)) => end,
        Ok(httparse::Status::Partial) => return Ok(Answer::Partial),
        Err(err) => return Err(protocol(format!("not an HTTP answer to CONNECT: {err}"))),
    };
    let status = response.code.unwrap_or_default();
    Ok(match status {
        100..=199 => Answer::Informational(end),
        200..=299 => Answer::Established(end),
        _ => {
            let mut map = HeaderMap::new();
            for header in response.headers.iter() {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(header.name.as_bytes()),
                    HeaderValue::from_bytes(header.value),
                ) {
                    map.append(name, value);
                }
            }
            Answer::Refused(status, map)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::exchange::Script;
    use super::*;
    use crate::error::ProxyErrorKind;

    fn creds() -> Credentials {
        Credentials {
            user: "robot".into(),
            password: "s3cret".into(),
        }
    }

    #[test]
    fn sends_connect_with_basic_auth_and_brackets_ipv6() {
        let mut script = Script::new(&[Some(b"HTTP/1.1 200 OK\r\n\r\n")]);
        let mut stage = HttpConnect::new("::1", 443, Some(&creds()));
        assert_eq!(stage.advance(&mut script).unwrap(), Some(Vec::new()));
        assert_eq!(
            String::from_utf8(script.written).unwrap(),
            "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\
             Proxy-Authorization: Basic cm9ib3Q6czNjcmV0\r\n\r\n"
        );
        let mut script = Script::new(&[Some(b"HTTP/1.0 200 Connection established\r\n\r\n")]);
        let mut stage = HttpConnect::new("example.com", 80, None);
        assert_eq!(stage.advance(&mut script).unwrap(), Some(Vec::new()));
        assert_eq!(
            String::from_utf8(script.written).unwrap(),
            "CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n"
        );
    }

    #[test]
    fn waits_for_a_split_head_and_keeps_what_follows_it() {
        let answer = b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n\x81\x02hi";
        let head = answer.len() - 4;
        for cut in 1..head {
            let mut script = Script::new(&[Some(&answer[..cut]), None, Some(&answer[cut..])]);
            let mut stage = HttpConnect::new("h", 1, None);
            assert_eq!(stage.advance(&mut script).unwrap(), None, "cut {cut}");
            let rest = stage.advance(&mut script).unwrap();
            assert_eq!(rest.as_deref(), Some(&b"\x81\x02hi"[..]), "cut {cut}");
        }
    }

    #[test]
    fn skips_an_informational_head() {
        let mut script = Script::new(&[Some(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nx",
        )]);
        let mut stage = HttpConnect::new("h", 1, None);
        assert_eq!(stage.advance(&mut script).unwrap(), Some(b"x".to_vec()));
    }

    #[test]
    fn a_refusal_keeps_status_and_headers() {
        let mut script = Script::new(&[Some(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
              Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n",
        )]);
        let mut stage = HttpConnect::new("h", 1, None);
        match stage.advance(&mut script) {
            Err(Error::ProxyRejected { status, headers }) => {
                assert_eq!(status, 407);
                assert_eq!(headers["proxy-authenticate"], "Basic realm=\"corp\"");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_close_garbage_or_an_endless_head_fail() {
        let fails = |chunks: &[Option<&[u8]>], want: ProxyErrorKind| {
            let mut script = Script::new(chunks);
            let mut stage = HttpConnect::new("h", 1, None);
            let got = loop {
                match stage.advance(&mut script) {
                    Ok(None) => continue,
                    other => break other,
                }
            };
            assert!(
                matches!(&got, Err(Error::Proxy { kind, .. }) if *kind == want),
                "{got:?}"
            );
        };
        fails(&[], ProxyErrorKind::Disconnected);
        fails(
            &[Some(b"HTTP/1.1 200 OK\r\n")],
            ProxyErrorKind::Disconnected,
        );
        fails(
            &[Some(b"\x05\x00garbage\r\n\r\n")],
            ProxyErrorKind::Protocol,
        );
        let endless: Vec<u8> = b"HTTP/1.1 200 OK\r\n"
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'X', MAX_HEAD + 10))
            .collect();
        fails(&[Some(&endless)], ProxyErrorKind::Protocol);
    }
}
