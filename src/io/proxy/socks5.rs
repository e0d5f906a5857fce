//! The SOCKS5 stage (RFC 1928): offers "no authentication", and "username/password"
//! (RFC 1929) when the proxy URL has credentials, then asks for a `CONNECT` to the server by
//! IP address (`socks5://`, resolved by us) or by name (`socks5h://`, resolved by the proxy).
//! Every reply code becomes its [`ProxyErrorKind`].

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};

use super::exchange::{Exchange, protocol};
use crate::error::{Error, ProxyErrorKind, Result};
use crate::proxy::Credentials;

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0;
const USER_PASSWORD: u8 = 2;
const NO_ACCEPTABLE: u8 = 0xff;
const CONNECT: u8 = 1;

/// The longest reply: a domain name of 255 bytes and its framing.
const MAX_REPLY: usize = 4 + 1 + 255 + 2;

/// Where the proxy is to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Destination {
    /// An address we resolved (`socks5://`).
    Addr(SocketAddr),
    /// A name for the proxy to resolve (`socks5h://`).
    Name(String, u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Waiting for the method the server chose.
    Method,
    /// Waiting for the verdict on our credentials.
    Auth,
    /// Waiting for the reply to `CONNECT`.
    Reply,
}

#[derive(Debug)]
pub(super) struct Socks5 {
    exchange: Exchange,
    step: Step,
    credentials: Option<Credentials>,
    request: Vec<u8>,
}

impl Socks5 {
    /// Queues the greeting.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a host name over 255 bytes, which SOCKS5 cannot carry.
    pub(super) fn new(destination: &Destination, credentials: Option<Credentials>) -> Result<Self> {
        let mut request = vec![VERSION, CONNECT, 0];
        let port = match destination {
            Destination::Addr(addr) => {
                match addr.ip() {
                    IpAddr::V4(ip) => {
                        request.push(1);
                        request.extend_from_slice(&ip.octets());
                    }
                    IpAddr::V6(ip) => {
                        request.push(4);
                        request.extend_from_slice(&ip.octets());
                    }
                }
                addr.port()
            }
            Destination::Name(name, port) => {
                let len = u8::try_from(name.len()).map_err(|_| {
                    Error::InvalidUrl("the host name is too long for SOCKS5 (255 bytes)".into())
                })?;
                request.push(3);
                request.push(len);
                request.extend_from_slice(name.as_bytes());
                *port
            }
        };
        request.extend_from_slice(&port.to_be_bytes());
        let mut exchange = Exchange::default();
        if credentials.is_some() {
            exchange.queue(&[VERSION, 2, NO_AUTH, USER_PASSWORD]);
        } else {
            exchange.queue(&[VERSION, 1, NO_AUTH]);
        }
        Ok(Socks5 {
            exchange,
            step: Step::Method,
            credentials,
            request,
        })
    }

    /// Runs the exchange as far as the socket allows. `Some(bytes)` when the tunnel is open,
    /// with the tunnel's first bytes (normally none).
    pub(super) fn advance(&mut self, io: &mut (impl Read + Write)) -> Result<Option<Vec<u8>>> {
        loop {
            if !self.exchange.flush(io)? {
                return Ok(None);
            }
            let received = self.exchange.received();
            let needed = match self.step {
                Step::Method | Step::Auth => 2,
                Step::Reply => reply_len(received)?,
            };
            if received.len() < needed {
                if !self.exchange.receive(io, MAX_REPLY)? {
                    return Ok(None);
                }
                continue;
            }
            let (first, second) = (received[0], received[1]);
            self.exchange.consume(needed);
            match self.step {
                Step::Method => self.method_chosen(first, second)?,
                Step::Auth => {
                    // RFC 1929 says version 1; some servers answer 5. Only the status counts.
                    if second != 0 {
                        return Err(proxy_error(ProxyErrorKind::AuthFailed));
                    }
                    self.exchange.queue(&self.request);
                    self.step = Step::Reply;
                }
                Step::Reply => {
                    if first != VERSION {
                        return Err(protocol(format!("SOCKS version {first} in the reply")));
                    }
                    if second != 0 {
                        return Err(proxy_error(ProxyErrorKind::of_socks_reply(second)));
                    }
                    let exchange = std::mem::take(&mut self.exchange);
                    return Ok(Some(exchange.into_received()));
                }
            }
        }
    }

    fn method_chosen(&mut self, version: u8, method: u8) -> Result<()> {
        if version != VERSION {
            return Err(protocol(format!(
                "SOCKS version {version} in the method reply: not a SOCKS5 server"
            )));
        }
        match (method, &self.credentials) {
            (NO_AUTH, _) => {
                self.exchange.queue(&self.request);
                self.step = Step::Reply;
            }
            (USER_PASSWORD, Some(credentials)) => {
                let mut auth = vec![1];
                for field in [&credentials.user, &credentials.password] {
                    // Lengths were checked when the proxy URL was parsed.
                    auth.push(u8::try_from(field.len()).unwrap_or(u8::MAX));
                    auth.extend_from_slice(field.as_bytes());
                }
                self.exchange.queue(&auth);
                self.credentials = None;
                self.step = Step::Auth;
            }
            (NO_ACCEPTABLE, _) => return Err(proxy_error(ProxyErrorKind::AuthRequired)),
            (other, _) => {
                return Err(protocol(format!(
                    "the SOCKS5 server chose method {other}, which was not offered"
                )));
            }
        }
        Ok(())
    }
}

/// The length of the `CONNECT` reply, as far as the bytes so far tell (at least what they
/// hold plus one, until the address type and length are in).
fn reply_len(received: &[u8]) -> Result<usize> {
    let (Some(&version), Some(&reply)) = (received.first(), received.get(1)) else {
        return Ok(received.len() + 1);
    };
    if version != VERSION || reply != 0 {
        // Decided by the first two bytes; the bound address does not matter.
        return Ok(2);
    }
    Ok(match (received.get(3), received.get(4)) {
        (None, _) => 4,
        (Some(1), _) => 4 + 4 + 2,
        (Some(4), _) => 4 + 16 + 2,
        (Some(3), Some(&len)) => 4 + 1 + usize::from(len) + 2,
        (Some(3), None) => 5,
        (Some(other), _) => {
            return Err(protocol(format!(
                "address type {other} in the SOCKS5 reply"
            )));
        }
    })
}

fn proxy_error(kind: ProxyErrorKind) -> Error {
    Error::Proxy { kind, source: None }
}

#[cfg(test)]
mod tests {
    use super::super::exchange::Script;
    use super::*;

    const OK_V4: &[u8] = &[5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90];

    fn run(stage: &mut Socks5, script: &mut Script) -> Result<Vec<u8>> {
        for _ in 0..100 {
            if let Some(rest) = stage.advance(script)? {
                return Ok(rest);
            }
        }
        panic!("no end")
    }

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn connects_by_address_without_auth() {
        let dest = Destination::Addr("127.0.0.1:8080".parse().unwrap());
        let mut script = Script::new(&[Some(&[5, 0]), None, Some(OK_V4), Some(b"tail")]);
        let mut stage = Socks5::new(&dest, None).unwrap();
        assert_eq!(run(&mut stage, &mut script).unwrap(), b"");
        assert_eq!(
            script.written,
            [5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]
        );
        let dest = Destination::Addr("[::1]:443".parse().unwrap());
        let mut script = Script::new(&[Some(&[5, 0]), Some(OK_V4)]);
        let mut stage = Socks5::new(&dest, None).unwrap();
        run(&mut stage, &mut script).unwrap();
        let mut want = vec![5, 1, 0, 5, 1, 0, 4];
        want.extend_from_slice(&[0; 15]);
        want.extend_from_slice(&[1, 1, 187]);
        assert_eq!(script.written, want);
    }

    #[test]
    fn connects_by_name_with_credentials_and_keeps_the_tunnel_bytes() {
        let dest = Destination::Name("example.com".into(), 80);
        // The reply's bound address is a name too; bytes after it are the tunnel's.
        let mut reply = vec![5, 0, 0, 3, 4];
        reply.extend_from_slice(b"host\x00\x50tunnel");
        let mut script = Script::new(&[Some(&[5, 2]), None, Some(&[1, 0]), Some(&reply)]);
        let mut stage = Socks5::new(&dest, Some(creds("robot", "pw"))).unwrap();
        assert_eq!(run(&mut stage, &mut script).unwrap(), b"tunnel");
        let mut want = vec![5, 2, 0, 2, 1, 5];
        want.extend_from_slice(b"robot\x02pw");
        want.extend_from_slice(&[5, 1, 0, 3, 11]);
        want.extend_from_slice(b"example.com\x00\x50");
        assert_eq!(script.written, want);
        // Offered both, the server may skip authentication.
        let mut script = Script::new(&[Some(&[5, 0]), Some(OK_V4)]);
        let mut stage = Socks5::new(&dest, Some(creds("robot", "pw"))).unwrap();
        run(&mut stage, &mut script).unwrap();
    }

    #[test]
    fn a_reply_split_at_every_byte() {
        let dest = Destination::Addr("127.0.0.1:1".parse().unwrap());
        let all: Vec<u8> = [&[5u8, 0][..], OK_V4].concat();
        for cut in 1..all.len() {
            let mut script = Script::new(&[Some(&all[..cut]), None, Some(&all[cut..])]);
            let mut stage = Socks5::new(&dest, None).unwrap();
            assert_eq!(stage.advance(&mut script).unwrap(), None, "cut {cut}");
            assert_eq!(
                stage.advance(&mut script).unwrap(),
                Some(Vec::new()),
                "cut {cut}"
            );
        }
    }

    fn fails(chunks: &[Option<&[u8]>], credentials: Option<Credentials>) -> Error {
        let dest = Destination::Name("h".into(), 1);
        let mut script = Script::new(chunks);
        let mut stage = Socks5::new(&dest, credentials).unwrap();
        run(&mut stage, &mut script).expect_err("succeeded")
    }

    fn kind(err: &Error) -> ProxyErrorKind {
        match err {
            Error::Proxy { kind, .. } => *kind,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_failure_has_its_kind() {
        for code in 1..=255u8 {
            let err = fails(&[Some(&[5, 0]), Some(&[5, code, 0, 1])], None);
            assert_eq!(kind(&err), ProxyErrorKind::of_socks_reply(code));
        }
        let auth = || Some(creds("u", "wrong"));
        assert_eq!(
            kind(&fails(&[Some(&[5, 2]), Some(&[1, 1])], auth())),
            ProxyErrorKind::AuthFailed
        );
        assert_eq!(
            kind(&fails(&[Some(&[5, 0xff])], None)),
            ProxyErrorKind::AuthRequired
        );
        assert_eq!(
            kind(&fails(&[Some(&[5, 0xff])], auth())),
            ProxyErrorKind::AuthRequired
        );
        // Username/password chosen though no credentials were offered; GSSAPI.
        for chunks in [
            &[Some(&[5u8, 2][..])][..],
            &[Some(&[5, 1][..])],
            &[Some(b"HTTP/1.1 400 Bad Request\r\n\r\n")],
            &[Some(&[5, 0]), Some(&[4, 0, 0, 1])],
            &[Some(&[5, 0]), Some(&[5, 0, 0, 9])],
        ] {
            assert_eq!(kind(&fails(chunks, None)), ProxyErrorKind::Protocol);
        }
        assert_eq!(
            kind(&fails(&[Some(&[5, 0]), Some(&[5, 0, 0, 1, 1])], None)),
            ProxyErrorKind::Disconnected
        );
        assert_eq!(kind(&fails(&[], None)), ProxyErrorKind::Disconnected);
    }

    #[test]
    fn a_name_over_255_bytes_is_refused() {
        let dest = Destination::Name("a".repeat(256), 1);
        assert!(matches!(
            Socks5::new(&dest, None),
            Err(Error::InvalidUrl(_))
        ));
    }
}
