//! A synchronous WebSocket client with the browser's event model.
//!
//! No async runtime: [`Client::connect`] returns a handle at once, a background I/O thread
//! does the connecting and all socket work, and you take [`Event`]s from a queue, blocking
//! ([`Client::events`], [`Client::recv`]) or not ([`Client::try_recv`], [`Client::try_events`]).
//! JS-style `on*` callbacks are a thin layer on top.
//!
//! # Quick start
//!
//! ```no_run
//! use nwebsocket::{Client, Event};
//!
//! let ws = Client::connect("ws://127.0.0.1:9001/echo")?;
//! ws.send_text("hello")?;
//! for event in &ws {
//!     match event {
//!         Event::Message(msg) => {
//!             println!("{:?}", msg.as_text());
//!             ws.close()?;
//!         }
//!         Event::Close(close) => println!("closed: {} {}", close.code, close.reason),
//!         _ => {}
//!     }
//! }
//! # Ok::<(), nwebsocket::Error>(())
//! ```
//!
//! # Event model
//!
//! Every connection yields events in this order, as the JS WebSocket API does:
//!
//! ```text
//! Open?  Message*  Error?  Close
//! ```
//!
//! - at most one [`Event::Open`], when the handshake succeeded;
//! - every [`Event::Message`], complete and in arrival order;
//! - one [`Event::Error`] exactly when the connection did not end with a close handshake
//!   (refused, DNS, TLS, rejected handshake, reset, protocol violation, timeout, aborted);
//! - exactly one [`Event::Close`], always, with the code, reason and `was_clean`;
//! - then the stream ends: [`Client::recv`] returns `Err` and [`Client::events`] stops.
//!
//! [`Client::ready_state`] follows the events you have taken, so it never contradicts them.
//!
//! Where we differ from JS, on purpose: sends made while connecting are queued and written
//! after the handshake (JS throws); messages that arrive while closing are still delivered
//! (JS drops them); [`close`](SendHandle::close) sends code 1000 (JS sends no code); every unclean end
//! comes with its [`Event::Error`] (JS fires `error` only when it fails the connection itself).
//!
//! # Threads and shutdown
//!
//! - One thread per [`Client`], named `nwebsocket-io`, for its whole life: with reconnection
//!   on, every attempt runs on it. Or, for many connections, a few shared threads
//!   ([`IoThreads`], named `nwebsocket-io-N`) that each serve many clients with one poller: a
//!   connection then costs a socket and a few KiB, not a thread (see [`IoThreads`]). Everything
//!   below holds for both.
//! - A host name (not an IP literal) is resolved on a small process-wide pool of at most 8
//!   `nwebsocket-dns` threads (each exits after 5 s without work), so that connect timeouts
//!   and `close()` interrupt resolution too, and 10,000 connects to a name start 8 threads,
//!   not 10,000.
//! - The I/O thread waits on socket readiness and a waker together: a send is written at once,
//!   and an idle connection costs no CPU and no wake-ups. Only timers wake it otherwise: the
//!   connect and close timeouts, and, when you turn them on, the keepalive ping, the
//!   dead-peer timeout and the reconnect backoff.
//! - **Sends:** a message under 16 KiB is framed and masked by the thread that sends it,
//!   straight into a shared outgoing buffer (a short lock, never held across a wait); the I/O
//!   thread only moves those bytes to the socket. A larger message is handed over as it is
//!   (no copy on your thread) and framed by the I/O thread. Either way `send` never blocks.
//! - **Batches:** the I/O thread queues everything one socket read produced as one batch (up to
//!   256 events, at most a quarter of the capacity) just before it waits again, and the handle
//!   hands the events out one at a time. A flood of messages costs one queue operation and at
//!   most one wake-up of your thread per batch; a lone message is queued at once.
//! - **Backpressure:** the event queue holds [`Config::event_queue_capacity`] messages (plus
//!   the batch being handed out). When it is full the I/O thread stops reading the socket until
//!   you have taken half of them, so the server is slowed by TCP flow control. Nothing is
//!   dropped, memory stays bounded, and your sends still go out meanwhile.
//! - Dropping the [`Client`] and every [`SendHandle`] starts a close with code 1001 "going
//!   away"; the drop never blocks. The I/O thread finishes the close handshake (waiting up to
//!   [`Config::close_timeout`] for the server), closes the socket and exits.
//!   [`Client::wait_closed`] blocks, with a timeout, until that has happened. A close or drop
//!   works also while the server has stopped reading: the close timer runs although the close
//!   frame cannot be written, and then the connection is dropped.
//! - Your code never runs on the I/O thread, so a slow consumer delays no pong or close reply,
//!   until the event queue is full: then the I/O thread reads nothing, a server's ping waits
//!   in the socket with everything else, and its pong goes out once you have taken half the
//!   queue.
//!
//! # Staying connected
//!
//! All off by default, as in JS; each is one setting on [`ConfigBuilder`]:
//!
//! - [`ping_interval`](ConfigBuilder::ping_interval): a ping whenever the server has sent
//!   nothing for that long (one wake-up per interval, plus one for the pong);
//! - [`dead_peer_timeout`](ConfigBuilder::dead_peer_timeout): give up on a server that has
//!   sent nothing for that long, also one that vanished without a FIN or reset (`Error` with
//!   [`TimeoutKind::DeadPeer`], then `Close` 1006);
//! - [`reconnect`](ConfigBuilder::reconnect): reopen a lost connection, with exponential
//!   backoff and full jitter, `Retry-After`, an optional attempt limit. The events of all
//!   connections come in one stream: each connection keeps the `Open? Message* Error? Close`
//!   shape, and a [`CloseEvent::reconnect`] of `Some(delay)` says that another attempt follows
//!   (the stream ends after the one with `None`). Sends made while disconnected wait, up to
//!   a limit, for the next connection, or fail at once ([`OfflineSends`]); messages that the
//!   socket had not taken whole when a connection died are written on the next one.
//!
//! ```no_run
//! use std::time::Duration;
//! use nwebsocket::{Client, Config, Event};
//!
//! let config = Config::builder()
//!     .ping_interval(Duration::from_secs(5))
//!     .dead_peer_timeout(Duration::from_secs(15))
//!     .reconnect(true)
//!     .build()?;
//! let ws = Client::connect_with_config("ws://127.0.0.1:9001/telemetry", config)?;
//! for event in &ws {
//!     match event {
//!         Event::Open(_) => println!("connected"),
//!         Event::Message(message) => println!("{message:?}"),
//!         Event::Error(err) => println!("connection lost: {err}"),
//!         Event::Close(close) => match close.reconnect {
//!             Some(delay) => println!("retrying in {delay:?} (attempt {})", close.attempt),
//!             None => println!("closed for good: {}", close.code),
//!         },
//!         _ => {}
//!     }
//! }
//! # Ok::<(), nwebsocket::Error>(())
//! ```
//!
//! # Callbacks
//!
//! [`callback::WebSocket`] puts JS-style `on_open`, `on_message`, `on_error` and `on_close`
//! callbacks (closures, or a [`callback::Handler`] type) on top of a [`Client`], using only
//! its public API. The callbacks run on your thread, for the events queued now
//! ([`dispatch`](callback::WebSocket::dispatch), never blocks) or until the close
//! ([`run`](callback::WebSocket::run)), or on a thread of their own
//! ([`spawn`](callback::WebSocket::spawn)); never on the I/O thread. They can send and close
//! from inside, without deadlock. A panicking callback closes the connection, `on_close` still
//! runs, and then the panic resumes on the dispatching thread.
//!
//! ```no_run
//! let mut ws = nwebsocket::callback::WebSocket::connect("ws://127.0.0.1:9001/echo")?;
//! ws.on_message(|ctx, message| {
//!     let _ = ctx.send(message); // echo it back
//! });
//! ws.on_close(|_, close| println!("closed: {}", close.code));
//! ws.run();
//! # Ok::<(), nwebsocket::Error>(())
//! ```
//!
//! # TLS
//!
//! `wss://` uses rustls with the ring crypto provider, chosen explicitly: a connect never
//! depends on, or installs, a process-wide default provider. The server's certificate is
//! verified for the URL's host: SNI and verification use the host name, and an IP literal
//! (`wss://127.0.0.1/`, `wss://[::1]/`) is verified against the certificate's IP addresses.
//!
//! - **Roots:** by default the platform's store (rustls-native-certs), which honours the
//!   `SSL_CERT_FILE` and `SSL_CERT_DIR` environment variables; read once per process. Add roots
//!   with [`ConfigBuilder::root_certificates_pem`], [`ConfigBuilder::root_certificates_pem_file`]
//!   or [`ConfigBuilder::root_certificate`] (DER); trust only those with
//!   [`ConfigBuilder::platform_roots`]`(false)`. The `webpki-roots` feature adds bundled roots.
//! - **Mutual TLS:** [`ConfigBuilder::client_certificate_pem`].
//! - **No verification**, for development only: [`ConfigBuilder::danger_accept_invalid_certs`].
//! - **Anything else:** [`ConfigBuilder::unversioned_rustls_config`] takes a rustls
//!   `ClientConfig` as it is; that method follows rustls's versioning, not ours.
//!
//! A failed handshake is an [`Error::Tls`] whose [`TlsErrorKind`] tells an untrusted issuer,
//! a wrong name, an expired certificate, a missing client certificate and a server's alert
//! apart; the rustls error is its [`source()`](std::error::Error::source).
//!
//! # Proxies
//!
//! An HTTP proxy (a `CONNECT` tunnel, for `ws://` too) or a SOCKS5 proxy (`socks5://`, the
//! client resolves the server's name; `socks5h://`, the proxy does), each with optional
//! credentials, is one more stage of the connection attempt under the same connect timeout;
//! TLS runs inside the tunnel, end to end. Set one with [`ConfigBuilder::proxy`], or let
//! [`Client::connect`] take it from the environment as curl does (`https_proxy` for `wss://`,
//! `http_proxy` for `ws://`, then `all_proxy`, except hosts in `no_proxy`; lowercase first;
//! see [`ConfigBuilder::proxy_from_env`], which also turns that off). A refusal is
//! [`Error::ProxyRejected`] (HTTP status and headers) or [`Error::Proxy`] with a
//! [`ProxyErrorKind`] (each SOCKS5 reply, refused credentials, a proxy that hung up).
//!
//! Credentials from a proxy URL or from the WebSocket URL's user-info are never logged and
//! never in an error message or a `Debug` string (see [Logging](#logging)). User-info in the WebSocket URL is sent to the server as
//! `Authorization: Basic`, unless an `Authorization` header is configured.
//!
//! ```no_run
//! use nwebsocket::{Client, Config};
//!
//! let config = Config::builder()
//!     .proxy("socks5h://robot:s3cret@10.0.0.1:1080")
//!     .build()?;
//! let ws = Client::connect_with_config("wss://example.com/feed", config)?;
//! # drop(ws);
//! # Ok::<(), nwebsocket::Error>(())
//! ```
//!
//! # Errors
//!
//! One error type, [`Error`]. Calls on the handle return it for bad arguments; a failing
//! connection reports it as [`Event::Error`]. Causes are kept as
//! [`source()`](std::error::Error::source), e.g. each address's I/O error, the TLS alert, the
//! HTTP status and body of a rejected handshake.
//!
//! # Logging
//!
//! Through the `log` crate: `debug` for state changes, `trace` for each message. Payloads and
//! credentials are never logged, by this crate or by tungstenite and rustls (whose `trace`
//! records pass through too): URLs show `***` for user-info and query values, and the upgrade
//! request that goes out, with its query and your headers, is written by this crate;
//! tungstenite only logs a stand-in it checks the answer against (path, host and the
//! handshake's own headers). The same holds for the `Debug` of [`Client`], [`Config`] and
//! [`ConfigBuilder`], and for error messages: values of headers that carry credentials
//! (`Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie`, names with `token`,
//! `key`, `secret`, ...) show as `***` (or `Sensitive` in an `http::HeaderMap`, such as
//! the headers of [`OpenEvent`] and [`Error::Rejected`]).
//!
//! # Feature flags
//!
//! None is on by default.
//!
//! - `webpki-roots`: also trust the Mozilla root certificates bundled in the `webpki-roots`
//!   crate, on top of the platform's. For machines with no certificate store (minimal
//!   containers); the bundle is only as fresh as your build.
//! - `platform-verifier`: offers `ConfigBuilder::platform_verifier`, which checks
//!   certificates with the operating system's verifier (rustls-platform-verifier: the
//!   Keychain on Apple platforms, CryptoAPI on Windows, Android's trust manager; on Linux,
//!   webpki over the same roots as the default).
//!
//! # MSRV
//!
//! Rust 1.85, the highest minimum of the dependencies (tungstenite).

#![doc(test(attr(deny(warnings))))]

// The handle side: what user threads call.
mod client;
mod config;
mod io_threads;
mod proxy;
mod sender;
mod staying_connected;
mod target;
mod tls;
// The I/O side: the background thread and everything it does.
mod io;
// The floor both sides stand on: the event queue, the shared flags, the outgoing buffer and
// the permessage-deflate codec (pure, no I/O).
mod deflate;
mod doorbell;
mod outgoing;
mod queue;
mod shared;
// Leaf types.
mod error;
mod event;
mod redact;

pub mod callback;

pub use client::{Client, Events, TryEvents};
pub use config::{Config, ConfigBuilder, ConnectRequest};
pub use error::{
    ConnectFailures, Error, ProxyErrorKind, RecvError, RecvTimeoutError, Result, TimeoutKind,
    TlsErrorKind, TryRecvError,
};
pub use event::{CloseEvent, Event, Message, OpenEvent, ReadyState, Text};
pub use io_threads::IoThreads;
pub use sender::SendHandle;
pub use staying_connected::OfflineSends;

/// The bytes type of binary payloads, re-exported from the `bytes` crate (1.x).
pub use bytes::Bytes;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
