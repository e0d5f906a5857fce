//! The proxy stage of a connection attempt: over the TCP connection to the proxy, an HTTP
//! `CONNECT` or a SOCKS5 exchange that turns it into a tunnel to the server. Each is a small
//! state machine that [`Tunnel::advance`] moves on whenever the socket may be ready, so that
//! the attempt's one deadline covers it like every other stage. What comes after the tunnel
//! (TLS for `wss://`, the upgrade) does not know that a proxy was there, except that it gets
//! the tunnel's first bytes if the proxy sent some with its answer.

mod exchange;
mod http_connect;
mod socks5;

use std::io::{Read, Write};
use std::net::SocketAddr;

use http_connect::HttpConnect;
use socks5::{Destination, Socks5};

use crate::error::Result;
use crate::proxy::{Proxy, ProxyKind};

/// A tunnel being set up.
#[derive(Debug)]
pub(super) struct Tunnel(Machine);

#[derive(Debug)]
enum Machine {
    Http(HttpConnect),
    Socks5(Socks5),
}

impl Tunnel {
    /// Starts the exchange with `proxy` for a tunnel to `host:port`. `resolved` is the
    /// server's address when this client resolved it (`socks5://`).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`](crate::Error::InvalidUrl) when SOCKS5 cannot carry the host name.
    pub(super) fn start(
        proxy: &Proxy,
        host: &str,
        port: u16,
        resolved: Option<SocketAddr>,
    ) -> Result<Self> {
        let credentials = proxy.credentials.clone();
        let machine = match (proxy.kind, resolved) {
            (ProxyKind::Http, _) => {
                Machine::Http(HttpConnect::new(host, port, credentials.as_ref()))
            }
            (ProxyKind::Socks5, Some(addr)) => {
                Machine::Socks5(Socks5::new(&Destination::Addr(addr), credentials)?)
            }
            (ProxyKind::Socks5 | ProxyKind::Socks5h, _) => Machine::Socks5(Socks5::new(
                &Destination::Name(host.to_owned(), port),
                credentials,
            )?),
        };
        Ok(Tunnel(machine))
    }

    /// Moves the exchange on as far as `io` allows. `Some(bytes)` once the tunnel is open,
    /// with what the proxy sent after its answer: the first bytes from the server.
    ///
    /// # Errors
    /// [`Error::ProxyRejected`](crate::Error::ProxyRejected) or
    /// [`Error::Proxy`](crate::Error::Proxy).
    pub(super) fn advance(&mut self, io: &mut (impl Read + Write)) -> Result<Option<Vec<u8>>> {
        match &mut self.0 {
            Machine::Http(stage) => stage.advance(io),
            Machine::Socks5(stage) => stage.advance(io),
        }
    }
}
