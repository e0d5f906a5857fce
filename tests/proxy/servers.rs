//! Our own small proxies for tests/proxy.rs, on 127.0.0.1: an HTTP CONNECT proxy and a SOCKS5
//! server, each recording what clients asked so that tests can check the wire, and scriptable
//! to refuse, close, stall or answer with extra bytes. A TLS echo server with an rcgen
//! certificate is the `wss://` target. Every thread ends when its client goes; nothing
//! blocks for longer than [`WAIT`].
#![allow(
    dead_code,
    unreachable_pub,
    reason = "some helpers serve some tests only"
)]

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};

use super::common::{WAIT, echo, read_request, spawn, tcp_server};

/// What an HTTP proxy does with a `CONNECT`.
#[derive(Clone)]
pub enum Http {
    /// Tunnels, after checking `Proxy-Authorization` against these credentials if any: a
    /// missing header gets 407, a wrong one `wrong_status`. `extra` follows the 200 head in
    /// the same write.
    Tunnel {
        credentials: Option<(&'static str, &'static str)>,
        wrong_status: u16,
        extra: Vec<u8>,
    },
    /// Answers these bytes, then holds the connection until the client closes it.
    Answer(Vec<u8>),
    /// Closes the connection after reading the request.
    Close,
    /// Reads the request and never answers.
    Stall,
}

impl Http {
    pub fn open() -> Self {
        Http::Tunnel {
            credentials: None,
            wrong_status: 407,
            extra: Vec::new(),
        }
    }
}

/// A running proxy: its port and every request head (HTTP) or request (SOCKS5) it received.
pub struct Proxy<T> {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<T>>>,
}

impl<T: Clone> Proxy<T> {
    pub fn seen(&self) -> Vec<T> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts an HTTP proxy that behaves as `behaviour` says.
pub fn http_proxy(behaviour: Http) -> Proxy<String> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let port = tcp_server(move |mut client| {
        client.set_read_timeout(Some(WAIT)).unwrap();
        let Some(head) = read_request(&mut client) else {
            return;
        };
        log.lock().unwrap().push(head.clone());
        match &behaviour {
            Http::Tunnel {
                credentials,
                wrong_status,
                extra,
            } => {
                if let Some((user, password)) = credentials {
                    let want = format!("basic {}", base64(format!("{user}:{password}").as_bytes()));
                    let got = header(&head, "proxy-authorization").map(|v| v.to_ascii_lowercase());
                    let status = match got {
                        None => 407,
                        Some(got) if got != want.to_ascii_lowercase() => *wrong_status,
                        Some(_) => 200,
                    };
                    if status != 200 {
                        let answer = format!(
                            "HTTP/1.1 {status} Denied\r\nProxy-Authenticate: Basic realm=\"test\"\r\n\
                             Content-Length: 0\r\n\r\n"
                        );
                        let _ = client.write_all(answer.as_bytes());
                        return;
                    }
                }
                let authority = head.split(' ').nth(1).unwrap_or_default().to_owned();
                let Ok(server) = TcpStream::connect(authority.as_str()) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                let mut answer = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
                answer.extend_from_slice(extra);
                if client.write_all(&answer).is_ok() {
                    relay(client, server);
                }
            }
            Http::Answer(bytes) => {
                if client.write_all(bytes).is_ok() {
                    hold(&mut client);
                }
            }
            Http::Close => {}
            Http::Stall => hold(&mut client),
        }
    });
    Proxy { port, seen }
}

/// Reads until the client closes, the connection fails or [`WAIT`] passes.
fn hold(client: &mut TcpStream) {
    let _ = client.set_read_timeout(Some(WAIT));
    let _ = client.read_to_end(&mut Vec::new());
}

/// The value of header `name` in a request head.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, value) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// Copies both ways until each side closes.
fn relay(client: TcpStream, server: TcpStream) {
    let _ = client.set_read_timeout(None);
    let (mut client_in, mut server_out) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upstream = spawn(move || {
        let _ = io::copy(&mut client_in, &mut server_out);
        let _ = server_out.shutdown(Shutdown::Write);
    });
    let (mut server_in, mut client_out) = (server, client);
    let _ = io::copy(&mut server_in, &mut client_out);
    let _ = client_out.shutdown(Shutdown::Write);
    let _ = upstream.join();
}

/// Where a SOCKS5 client asked to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Ip(IpAddr, u16),
    Name(String, u16),
}

/// What a SOCKS5 server does.
#[derive(Clone)]
pub struct Socks {
    /// Requires RFC 1929 with these credentials (else offers "no authentication").
    pub credentials: Option<(&'static str, &'static str)>,
    /// Replies this code to `CONNECT` instead of connecting (0: connect).
    pub reply: u8,
    /// Closes the connection right after the client's greeting.
    pub close_after_greeting: bool,
    /// Never answers the greeting.
    pub stall: bool,
}

impl Socks {
    pub fn open() -> Self {
        Socks {
            credentials: None,
            reply: 0,
            close_after_greeting: false,
            stall: false,
        }
    }
}

/// Starts a SOCKS5 server. It resolves names itself, and connects any loopback address to
/// 127.0.0.1 (where the test servers listen), whichever loopback the client resolved.
pub fn socks5_proxy(behaviour: Socks) -> Proxy<Destination> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let port = tcp_server(move |mut client| {
        client.set_read_timeout(Some(WAIT)).unwrap();
        let _ = serve_socks(&mut client, &behaviour, &log);
    });
    Proxy { port, seen }
}

fn serve_socks(
    client: &mut TcpStream,
    behaviour: &Socks,
    log: &Mutex<Vec<Destination>>,
) -> io::Result<()> {
    let mut greeting = [0u8; 2];
    client.read_exact(&mut greeting)?;
    let mut methods = vec![0u8; usize::from(greeting[1])];
    client.read_exact(&mut methods)?;
    if behaviour.close_after_greeting {
        return Ok(());
    }
    if behaviour.stall {
        hold(client);
        return Ok(());
    }
    match behaviour.credentials {
        None if methods.contains(&0) => client.write_all(&[5, 0])?,
        Some((user, password)) if methods.contains(&2) => {
            client.write_all(&[5, 2])?;
            let mut version_len = [0u8; 2];
            client.read_exact(&mut version_len)?;
            let mut got_user = vec![0u8; usize::from(version_len[1])];
            client.read_exact(&mut got_user)?;
            let mut len = [0u8; 1];
            client.read_exact(&mut len)?;
            let mut got_password = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut got_password)?;
            if got_user != user.as_bytes() || got_password != password.as_bytes() {
                return client.write_all(&[1, 1]);
            }
            client.write_all(&[1, 0])?;
        }
        _ => return client.write_all(&[5, 0xff]),
    }
    let mut head = [0u8; 4];
    client.read_exact(&mut head)?;
    let destination = match head[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip)?;
            Destination::Ip(IpAddr::from(ip), read_port(client)?)
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip)?;
            Destination::Ip(IpAddr::from(ip), read_port(client)?)
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name)?;
            Destination::Name(
                String::from_utf8_lossy(&name).into_owned(),
                read_port(client)?,
            )
        }
        _ => return client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]),
    };
    log.lock().unwrap().push(destination.clone());
    if behaviour.reply != 0 {
        return client.write_all(&[5, behaviour.reply, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
    let addr: Option<SocketAddr> = match &destination {
        Destination::Ip(ip, port) if ip.is_loopback() => {
            Some(SocketAddr::from(([127, 0, 0, 1], *port)))
        }
        Destination::Ip(ip, port) => Some(SocketAddr::new(*ip, *port)),
        Destination::Name(name, port) => (name.as_str(), *port)
            .to_socket_addrs()?
            .find(SocketAddr::is_ipv4),
    };
    let Some(server) = addr.and_then(|addr| TcpStream::connect(addr).ok()) else {
        return client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
    };
    // The bound address, as a domain name, to exercise the client's reply parsing.
    client.write_all(&[5, 0, 0, 3, 5, b'p', b'r', b'o', b'x', b'y', 0x04, 0x38])?;
    relay(client.try_clone()?, server);
    Ok(())
}

fn read_port(client: &mut TcpStream) -> io::Result<u16> {
    let mut port = [0u8; 2];
    client.read_exact(&mut port)?;
    Ok(u16::from_be_bytes(port))
}

/// A TLS WebSocket echo server on 127.0.0.1 whose self-signed certificate names localhost
/// and 127.0.0.1. Returns its port and the certificate (DER) to trust.
pub fn tls_echo_server() -> (u16, Vec<u8>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let der = certified.cert.der().to_vec();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone().into()], key.into())
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let config = config.clone();
            spawn(move || {
                let _ = stream.set_read_timeout(Some(WAIT));
                let conn = rustls::ServerConnection::new(config).unwrap();
                let tls = rustls::StreamOwned::new(conn, stream);
                if let Ok(ws) = tungstenite::accept(tls) {
                    echo(ws);
                }
            });
        }
    });
    (port, der)
}

/// Standard base64 with padding.
pub fn base64(input: &[u8]) -> String {
    data_encoding::BASE64.encode(input)
}

/// Every `log` record of this process, formatted, from the moment [`capture_logs`] is first
/// called, at every level.
static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        RECORDS.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

/// Installs the capturing logger (once per process) at trace level.
pub fn capture_logs() {
    static LOGGER: Capture = Capture;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

/// The log records captured so far.
pub fn log_records() -> Vec<String> {
    RECORDS.lock().unwrap().clone()
}
