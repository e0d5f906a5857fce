//! One connection attempt, as a non-blocking state machine: the user's hook (if any), resolve,
//! TCP connect (racing the addresses by Happy Eyeballs, `dial`), the proxy's tunnel if there
//! is a proxy, TLS, HTTP upgrade (and again from the resolver for each redirect followed,
//! `redirect`). Each stage takes the transport of the one before it. The I/O thread calls
//! [`Attempt::advance`] whenever something may have changed and sleeps until
//! [`Attempt::wake_at`] otherwise, so an attempt
//! can be aborted at any point and a new one started from scratch; one deadline covers every
//! stage.
//!
//! With a proxy, the resolver and TCP reach the proxy, not the server; only `socks5://` also
//! resolves the server's name here, to hand the proxy an address.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderName, HeaderValue};
use mio::net::TcpStream;
use mio::{Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};

use super::dial::Dialer;
use super::handshake::{UpgradeStream, open_event};
use super::message::Connection;
use super::prepare::{Prepared, call_hook};
use super::proxy::Tunnel;
use super::redirect;
use super::request;
use super::resolver;
use super::socket_options;
use super::stream::Stream;
use crate::config::Config;
use crate::deflate::{Agreed, Inflater};
use crate::error::{Error, Result, TimeoutKind};
use crate::event::OpenEvent;
use crate::proxy::{Proxy, ProxyKind, Route};
use crate::redact;
use crate::shared::Shared;
use crate::target::Target;

/// The most bytes rustls holds for the socket (its default, 64 KiB).
const TLS_SEND_BUFFER: usize = 64 << 10;

/// What [`Attempt::advance`] achieved.
#[derive(Debug)]
pub(super) enum Progress {
    /// Waiting for the socket, the resolver or a timer.
    Pending,
    /// The handshake succeeded.
    Open(Opened),
}

/// An open connection, its `Open` event and the permessage-deflate terms, if agreed.
#[derive(Debug)]
pub(super) struct Opened {
    pub(super) connection: Box<Connection>,
    pub(super) event: OpenEvent,
    pub(super) deflate: Option<Agreed>,
}

/// What the resolver found: the addresses to dial (the proxy's, or the server's), and with
/// `socks5://` the server's address for the proxy.
#[derive(Debug)]
struct Resolved {
    dial: Vec<SocketAddr>,
    server: Option<SocketAddr>,
}

#[derive(Debug)]
enum Stage {
    /// The `before_each_connect` hook runs on its own thread.
    Preparing(flume::Receiver<Result<Prepared>>),
    Resolving(flume::Receiver<Result<Resolved>>),
    Dialing(Dialer),
    Proxy(Box<(TcpStream, Tunnel)>),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// Our request goes out and the response head comes in (see
    /// [`UpgradeStream::await_head`]); tungstenite's handshake starts once it is here.
    AwaitingHead(Box<(UpgradeStream, tungstenite::handshake::client::Request)>),
    Upgrading(MidHandshake<ClientHandshake<UpgradeStream>>),
    /// Between stages, and after the end.
    Done,
}

/// One try at opening the connection.
#[derive(Debug)]
pub(super) struct Attempt {
    target: Target,
    config: Config,
    deadline: Instant,
    stage: Stage,
    /// The server's address for a `socks5://` proxy, once resolved.
    server: Option<SocketAddr>,
    /// Headers from the hook: they replace the configured ones of the same name.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Redirects followed so far.
    redirects: u32,
    shared: Arc<Shared>,
    /// The poll token the attempt's sockets register with.
    token: Token,
}

impl Attempt {
    /// Starts the attempt that follows reconnect attempt `attempt` (0 for the first
    /// connection): the `before_each_connect` hook if there is one, else resolving.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the environment named a proxy that does not parse;
    /// [`Error::Runtime`] when a helper thread cannot start.
    pub(super) fn start(
        target: Target,
        config: Config,
        shared: &Arc<Shared>,
        attempt: u32,
        token: Token,
    ) -> Result<Self> {
        let deadline = Instant::now() + config.connect_timeout();
        let mut started = Attempt {
            target,
            config,
            deadline,
            stage: Stage::Done,
            server: None,
            headers: Vec::new(),
            redirects: 0,
            shared: shared.clone(),
            token,
        };
        started.stage = match started.config.before_each_connect() {
            Some(hook) => {
                let (target, config) = (started.target.clone(), started.config.clone());
                Stage::Preparing(call_hook(hook.clone(), attempt, target, config, shared)?)
            }
            None => started.resolving()?,
        };
        Ok(started)
    }

    /// Starts resolving the first hop: the proxy, or else the server (and with `socks5://`
    /// the server too). IP literals need no resolver; names are resolved on a short-lived
    /// helper thread, so that the attempt stays abortable and its timeout holds.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the environment named a proxy that does not parse;
    /// [`Error::Runtime`] when the helper thread cannot start.
    fn resolving(&self) -> Result<Stage> {
        let target = &self.target;
        let (first_hop, server) = match &target.route {
            Route::Direct => (Lookup::server(target, &self.config), None),
            Route::Proxy(proxy) => {
                log::debug!("through the proxy {proxy}");
                let server =
                    (proxy.kind == ProxyKind::Socks5).then(|| Lookup::server(target, &self.config));
                (Lookup::proxy(proxy, &self.config), server)
            }
            Route::BadEnvironment(why) => return Err(Error::InvalidConfig(why.clone())),
        };
        let (tx, rx) = flume::bounded(1);
        if first_hop.is_literal() && server.as_ref().is_none_or(Lookup::is_literal) {
            let _ = tx.send(resolve(&first_hop, server.as_ref()));
        } else {
            let shared = self.shared.clone();
            resolver::run(move || {
                // The attempt may be gone (aborted, timed out): then nobody listens, and the
                // lookup is skipped.
                if tx.is_disconnected() {
                    return;
                }
                let resolved = resolve(&first_hop, server.as_ref());
                if tx.send(resolved).is_ok() {
                    shared.wake_driver_always();
                }
            })?;
        }
        Ok(Stage::Resolving(rx))
    }

    /// When the I/O thread must call [`advance`](Self::advance) again even if nothing happens.
    pub(super) fn wake_at(&self) -> Instant {
        match &self.stage {
            Stage::Dialing(dialer) => dialer.wake_at().unwrap_or(self.deadline).min(self.deadline),
            _ => self.deadline,
        }
    }

    /// Moves the attempt on as far as it goes without blocking.
    ///
    /// # Errors
    /// The error that ends the attempt: [`Error::Connect`], [`Error::Timeout`],
    /// [`Error::ProxyRejected`], [`Error::Proxy`], [`Error::Tls`], [`Error::Rejected`],
    /// [`Error::Handshake`] or [`Error::Io`]. The socket is closed then.
    pub(super) fn advance(&mut self, registry: &Registry) -> Result<Progress> {
        loop {
            let stage = std::mem::replace(&mut self.stage, Stage::Done);
            let (next, progressed) = self.step(stage, registry)?;
            if let Stage::Done = next {
                return Ok(progressed.unwrap_or(Progress::Pending));
            }
            self.stage = next;
            if Instant::now() >= self.deadline {
                let during = self.phase();
                self.abort(registry);
                return Err(Error::Timeout {
                    kind: TimeoutKind::Connect,
                    during,
                });
            }
            if let Some(progress) = progressed {
                return Ok(progress);
            }
        }
    }

    /// Closes whatever socket the attempt holds.
    pub(super) fn abort(&mut self, registry: &Registry) {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Dialing(mut dialer) => dialer.abort(registry),
            Stage::Proxy(mut proxy) => deregister(registry, &mut proxy.0),
            Stage::Tls(mut tls) => deregister(registry, &mut tls.sock),
            Stage::AwaitingHead(mut awaiting) => deregister(registry, awaiting.0.stream().tcp()),
            Stage::Upgrading(mut mid) => {
                deregister(registry, mid.get_mut().get_mut().stream().tcp());
            }
            Stage::Preparing(_) | Stage::Resolving(_) | Stage::Done => {}
        }
    }

    fn phase(&self) -> &'static str {
        match self.stage {
            Stage::Preparing(_) => "in the before_each_connect hook",
            Stage::Resolving(_) => "resolving the host",
            Stage::Dialing(_) => "connecting",
            Stage::Proxy(_) => "in the proxy handshake",
            Stage::Tls(_) => "in the TLS handshake",
            Stage::AwaitingHead(_) | Stage::Upgrading(_) | Stage::Done => {
                "in the WebSocket handshake"
            }
        }
    }

    /// One step. Returns the next stage and, when the attempt should return now, its progress:
    /// `Some(Pending)` to wait, `Some(Open)` when done. `None` means "go on at once".
    fn step(&mut self, stage: Stage, registry: &Registry) -> Result<(Stage, Option<Progress>)> {
        let pending = Some(Progress::Pending);
        match stage {
            Stage::Preparing(rx) => match rx.try_recv() {
                Ok(Ok(prepared)) => {
                    if prepared.target.uri != self.target.uri {
                        log::debug!("the hook chose {}", prepared.target.redacted());
                    }
                    self.target = prepared.target;
                    self.headers = prepared.headers;
                    Ok((self.resolving()?, None))
                }
                Ok(Err(err)) => Err(err),
                Err(flume::TryRecvError::Empty) => Ok((Stage::Preparing(rx), pending)),
                Err(flume::TryRecvError::Disconnected) => Err(Error::ConnectHook(
                    "the before_each_connect thread died".into(),
                )),
            },
            Stage::Resolving(rx) => match rx.try_recv() {
                Ok(Ok(resolved)) => {
                    self.server = resolved.server;
                    let delay = self.config.happy_eyeballs_delay();
                    Ok((
                        Stage::Dialing(Dialer::new(resolved.dial, delay, self.token)),
                        None,
                    ))
                }
                Ok(Err(err)) => Err(err),
                Err(flume::TryRecvError::Empty) => Ok((Stage::Resolving(rx), pending)),
                Err(flume::TryRecvError::Disconnected) => {
                    Err(Error::Connect("the resolver thread died".into()))
                }
            },
            Stage::Dialing(mut dialer) => match dialer.advance(registry)? {
                Some((stream, addr)) => {
                    log::debug!("TCP connected to {addr}");
                    if let Err(err) = socket_options::configure(&stream, &self.config) {
                        let mut stream = stream;
                        deregister(registry, &mut stream);
                        return Err(err.into());
                    }
                    Ok((self.tunnel(stream, registry)?, None))
                }
                None => Ok((Stage::Dialing(dialer), pending)),
            },
            Stage::Proxy(mut proxy) => {
                let (tcp, tunnel) = &mut *proxy;
                match tunnel.advance(tcp) {
                    Ok(None) => Ok((Stage::Proxy(proxy), pending)),
                    Ok(Some(first_bytes)) => {
                        log::debug!("proxy tunnel open");
                        Ok((self.secure(proxy.0, first_bytes)?, None))
                    }
                    Err(err) => {
                        deregister(registry, tcp);
                        Err(err)
                    }
                }
            }
            Stage::Tls(mut tls) => {
                while tls.conn.is_handshaking() {
                    match tls.conn.complete_io(&mut tls.sock) {
                        Ok((0, 0)) => return Ok((Stage::Tls(tls), pending)),
                        Ok(_) => {}
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                            return Ok((Stage::Tls(tls), pending));
                        }
                        Err(err) => {
                            deregister(registry, &mut tls.sock);
                            return Err(Error::from_tls(err));
                        }
                    }
                }
                log::debug!("TLS established with {}", self.target.host);
                Ok((self.upgrade(Stream::Tls(tls), Vec::new())?, None))
            }
            Stage::AwaitingHead(mut awaiting) => match awaiting.0.await_head() {
                Ok(false) => Ok((Stage::AwaitingHead(awaiting), pending)),
                Ok(true) => {
                    let (stream, stand_in) = *awaiting;
                    let ws_config = Some(self.config.websocket_config());
                    match ClientHandshake::start(stream, stand_in, ws_config) {
                        Ok(mid) => Ok((Stage::Upgrading(mid), None)),
                        Err(err) => Err(upgrade_failed(err)),
                    }
                }
                Err(err) => {
                    deregister(registry, awaiting.0.stream().tcp());
                    Err(upgrade_failed(tungstenite::Error::Io(err)))
                }
            },
            Stage::Upgrading(mid) => match mid.handshake() {
                Ok((ws, response)) => {
                    let mut upgrade_stream = ws.into_inner();
                    let deflate = match self.extensions(&response) {
                        Ok(deflate) => deflate,
                        Err(err) => {
                            deregister(registry, upgrade_stream.stream().tcp());
                            return Err(err);
                        }
                    };
                    log::debug!("WebSocket open: {}", self.target.redacted());
                    let inflater = deflate.map(|agreed| {
                        Inflater::new(
                            agreed.server_max_window_bits,
                            agreed.server_no_context_takeover,
                        )
                    });
                    let connection = upgrade_stream.into_connection(&self.config, inflater);
                    let opened = Opened {
                        connection: Box::new(connection),
                        event: open_event(response),
                        deflate,
                    };
                    Ok((Stage::Done, Some(Progress::Open(opened))))
                }
                Err(HandshakeError::Interrupted(mid)) => Ok((Stage::Upgrading(mid), pending)),
                Err(HandshakeError::Failure(err)) => match upgrade_failed(err) {
                    Error::Rejected {
                        status, headers, ..
                    } if self.config.follow_redirects() > 0
                        && redirect::is_redirect(status)
                        && headers.contains_key(http::header::LOCATION) =>
                    {
                        self.redirects += 1;
                        let hop = (self.redirects, &self.config);
                        self.target = redirect::follow(&self.target, &self.headers, &headers, hop)?;
                        self.server = None;
                        Ok((self.resolving()?, None))
                    }
                    error => Err(error),
                },
            },
            Stage::Done => Ok((Stage::Done, pending)),
        }
    }

    /// Starts the proxy's tunnel over the connected socket, or goes on to TLS.
    fn tunnel(&self, mut tcp: TcpStream, registry: &Registry) -> Result<Stage> {
        let Route::Proxy(proxy) = &self.target.route else {
            return self.secure(tcp, Vec::new());
        };
        match Tunnel::start(proxy, &self.target.host, self.target.port, self.server) {
            Ok(tunnel) => Ok(Stage::Proxy(Box::new((tcp, tunnel)))),
            Err(err) => {
                deregister(registry, &mut tcp);
                Err(err)
            }
        }
    }

    /// Wraps the connection (to the server, or the proxy's tunnel to it) in TLS for `wss://`,
    /// or goes straight to the upgrade. `first_bytes` came from the server with the proxy's
    /// answer.
    fn secure(&self, tcp: TcpStream, first_bytes: Vec<u8>) -> Result<Stage> {
        if !self.target.tls {
            return self.upgrade(Stream::Plain(tcp), first_bytes);
        }
        let name = ServerName::try_from(self.target.host.clone()).map_err(Error::from_rustls)?;
        let mut conn =
            ClientConnection::new(self.config.tls_config()?, name).map_err(Error::from_rustls)?;
        // Pinned, because the send docs name it: the most plaintext rustls takes (and encrypts)
        // beyond what the kernel accepted. A write finds the socket blocked before it hands
        // rustls more, so this is the whole TLS share of what a dead connection can lose.
        conn.set_buffer_limit(Some(TLS_SEND_BUFFER));
        if !first_bytes.is_empty() {
            let mut rest = &first_bytes[..];
            while !rest.is_empty() {
                conn.read_tls(&mut rest).map_err(Error::from_tls)?;
            }
            // The socket may have nothing more to say: process these now, not on its next read.
            conn.process_new_packets().map_err(Error::from_rustls)?;
        }
        Ok(Stage::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }

    /// Starts the HTTP upgrade with the request of [`request::upgrade`]. `first_bytes` came
    /// from the server with the proxy's answer.
    fn upgrade(&self, stream: Stream, first_bytes: Vec<u8>) -> Result<Stage> {
        let upgrade = request::upgrade(&self.target, &self.config, &self.headers)?;
        let stream = UpgradeStream::with_received(stream, first_bytes).with_request(upgrade.head);
        Ok(Stage::AwaitingHead(Box::new((stream, upgrade.stand_in))))
    }
}

impl Attempt {
    /// The extensions the server's answer agrees to: permessage-deflate if we offered it and
    /// the server accepted it as offered.
    ///
    /// # Errors
    /// [`Error::Handshake`] for an extension or parameter we did not offer, or a bad value.
    fn extensions(
        &self,
        response: &tungstenite::handshake::client::Response,
    ) -> Result<Option<Agreed>> {
        let values: Vec<&str> = response
            .headers()
            .get_all("sec-websocket-extensions")
            .iter()
            .map(|value| value.to_str().unwrap_or("\u{fffd}"))
            .collect();
        let agreed = match self.config.deflate_offer() {
            Some(offer) => offer.accept(values),
            None if values.iter().all(|v| v.trim().is_empty()) => Ok(None),
            None => Err("the server accepted an extension not offered".to_owned()),
        };
        agreed.map_err(|why| Error::Handshake(why.into()))
    }
}

/// A name (or IP literal) to resolve, and what it names, for the error message; or the
/// addresses `resolve_to_addrs` fixed for it.
#[derive(Debug)]
struct Lookup {
    host: String,
    port: u16,
    what: &'static str,
    fixed: Option<Vec<SocketAddr>>,
}

impl Lookup {
    fn server(target: &Target, config: &Config) -> Self {
        Lookup {
            host: target.host.clone(),
            port: target.port,
            what: "",
            fixed: config.fixed_addrs(&target.host, target.port),
        }
    }

    fn proxy(proxy: &Proxy, config: &Config) -> Self {
        Lookup {
            host: proxy.host.clone(),
            port: proxy.port,
            what: "the proxy ",
            fixed: config.fixed_addrs(&proxy.host, proxy.port),
        }
    }

    /// Whether no resolver is needed: an IP literal, or fixed addresses.
    fn is_literal(&self) -> bool {
        self.fixed.is_some() || self.host.parse::<IpAddr>().is_ok()
    }

    fn resolve(&self) -> Result<Vec<SocketAddr>> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let (what, host) = (self.what, &self.host);
        match (host.as_str(), self.port).to_socket_addrs() {
            Ok(addrs) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if addrs.is_empty() {
                    return Err(Error::Connect(
                        format!("{what}{host} resolved to no address").into(),
                    ));
                }
                Ok(addrs)
            }
            Err(err) => Err(Error::Connect(Box::new(io::Error::new(
                err.kind(),
                format!("could not resolve {what}{host}: {err}"),
            )))),
        }
    }
}

/// Resolves the first hop and, for `socks5://`, the server (whose first address the proxy
/// gets, as curl does).
fn resolve(first_hop: &Lookup, server: Option<&Lookup>) -> Result<Resolved> {
    let dial = first_hop.resolve()?;
    let server = match server {
        Some(server) => server.resolve()?.first().copied(),
        None => None,
    };
    Ok(Resolved { dial, server })
}

/// The error of a failed upgrade; a refusal's headers that carry credentials (`Set-Cookie`,
/// ...) marked sensitive, so that its `Debug` does not show them.
fn upgrade_failed(err: tungstenite::Error) -> Error {
    let mut error = Error::from_handshake(err);
    if let Error::Rejected { headers, .. } = &mut error {
        redact::mark_sensitive(headers);
    }
    error
}

fn deregister(registry: &Registry, stream: &mut TcpStream) {
    if let Err(err) = registry.deregister(stream) {
        log::debug!("deregister failed: {err}");
    }
}
