//! Happy Eyeballs (RFC 8305) on loopback, with `resolve_to_addrs` giving a test host several
//! addresses: a silent first address costs the attempt delay, not the connect timeout; a
//! refusing one is followed at once; the losers are closed; every failure is kept; the same
//! for reaching a proxy; and `socks5h://` leaves the server's name to the proxy.
//!
//! The silent address is a listener whose accept queue is full (backlog 0, filled by
//! connections nobody accepts): Linux then drops further SYNs, so a connect to it stays
//! pending like one to a blackholed route. It needs no root and no network namespace, and
//! [`silent_addr`] checks that it really is silent before a test relies on it.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;
#[path = "proxy/servers.rs"]
mod servers;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use nwebsocket::{Client, Config, ConfigBuilder, ConnectFailures, Error, Event};
use servers::*;
use socket2::{Domain, Socket, Type};

/// A listener that never completes a handshake: its address, and what keeps it silent.
struct Silent {
    addr: SocketAddr,
    _listener: Socket,
    _fillers: Vec<TcpStream>,
}

/// Binds a listener with backlog 0 and connects to it until a connect no longer completes
/// within 200 ms (at most 16 tries): from then on its SYNs are dropped.
fn silent_addr() -> Silent {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => fillers.push(stream),
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {
                return Silent {
                    addr,
                    _listener: listener,
                    _fillers: fillers,
                };
            }
            Err(err) => panic!("unexpected {err}"),
        }
    }
    panic!("a listener with a full backlog still completed handshakes");
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `localhost` is pinned to `addrs`, all on loopback: no resolver is asked, the name stands for
/// exactly these addresses, and no packet leaves the machine.
fn eyeballs(addrs: &[SocketAddr]) -> ConfigBuilder {
    Config::builder()
        .proxy_from_env(false)
        .connect_timeout(Duration::from_secs(20))
        .resolve_to_addrs("localhost", addrs.iter().copied())
}

/// Connects to `ws://localhost:{port}/` and returns how long `Open` took.
fn time_to_open(config: Config, port: u16) -> (Client, Duration) {
    let started = Instant::now();
    let ws = common::connect_with_config(&format!("ws://localhost:{port}/"), config).unwrap();
    expect_open(&ws);
    let took = started.elapsed();
    (ws, took)
}

/// How many of this machine's TCP sockets are still connecting (`SYN_SENT`) to `addr`.
fn connecting_to(addr: SocketAddr) -> usize {
    let remote = format!("0100007F:{:04X}", addr.port());
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(2) == Some(&remote.as_str()) && fields.get(3) == Some(&"02")
        })
        .count()
}

#[test]
fn a_silent_first_address_costs_the_delay_not_the_timeout() {
    let silent = silent_addr();
    let port = port_of(&echo_server());
    let config = eyeballs(&[silent.addr, loopback(port)]).build().unwrap();
    let (ws, took) = time_to_open(config, port);
    eprintln!("silent first address: open after {took:?} (delay 250 ms, timeout 20 s)");
    assert!(took >= Duration::from_millis(240), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The pending connect to the silent address was closed when the other one won.
    wait_for("the losing connect to be closed", || {
        connecting_to(silent.addr) == 0
    });
    ws.send_text("still here").unwrap();
    assert!(matches!(next(&ws), Event::Message(_)));
}

#[test]
fn the_delay_is_a_setting() {
    let silent = silent_addr();
    let port = port_of(&echo_server());
    let config = eyeballs(&[silent.addr, loopback(port)])
        .happy_eyeballs_delay(Duration::from_millis(50))
        .build()
        .unwrap();
    let (_ws, took) = time_to_open(config, port);
    assert!(took >= Duration::from_millis(45), "{took:?}");
    assert!(took < Duration::from_millis(240), "{took:?}");
}

#[test]
fn a_refusing_first_address_is_followed_at_once() {
    let port = port_of(&echo_server());
    // A delay far longer than the test may take: only the failure can start the second.
    let config = eyeballs(&[loopback(closed_port()), loopback(port)])
        .happy_eyeballs_delay(Duration::from_secs(30))
        .build()
        .unwrap();
    let (_ws, took) = time_to_open(config, port);
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn a_slow_address_is_not_cut_off_by_a_share_of_the_timeout() {
    // Every address silent but the last: the winner is reached after 3 delays, well past
    // what a per-address share of the 1 s timeout (250 ms each) would have allowed it.
    let silents = [silent_addr(), silent_addr(), silent_addr()];
    let port = port_of(&echo_server());
    let mut addrs: Vec<SocketAddr> = silents.iter().map(|s| s.addr).collect();
    addrs.push(loopback(port));
    let config = eyeballs(&addrs)
        .connect_timeout(Duration::from_secs(5))
        .happy_eyeballs_delay(Duration::from_millis(300))
        .build()
        .unwrap();
    let (_ws, took) = time_to_open(config, port);
    assert!(took >= Duration::from_millis(880), "{took:?}");
}

#[test]
fn every_failed_address_is_kept() {
    let refusing = [
        loopback(closed_port()),
        loopback(closed_port()),
        loopback(closed_port()),
    ];
    let config = eyeballs(&refusing).build().unwrap();
    let started = Instant::now();
    let ws = common::connect_with_config("ws://localhost:1/", config).unwrap();
    let events = until_close(&ws);
    assert!(started.elapsed() < Duration::from_secs(2));
    let Some(Error::Connect(source)) = error_of(&events) else {
        panic!("{events:?}")
    };
    let failures = source.downcast_ref::<ConnectFailures>().unwrap();
    let tried: Vec<SocketAddr> = failures.iter().map(|(addr, _)| addr).collect();
    assert_eq!(tried, refusing);
    for (_, err) in failures.iter() {
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}

#[test]
fn only_silent_addresses_time_out() {
    let silent = silent_addr();
    let config = eyeballs(&[silent.addr, silent.addr])
        .connect_timeout(Duration::from_millis(600))
        .build()
        .unwrap();
    let started = Instant::now();
    let ws = common::connect_with_config("ws://localhost:1/", config).unwrap();
    let events = until_close(&ws);
    let took = started.elapsed();
    assert!(
        matches!(
            error_of(&events),
            Some(Error::Timeout {
                during: "connecting",
                ..
            })
        ),
        "{events:?}"
    );
    assert!(
        took >= Duration::from_millis(590) && took < Duration::from_secs(3),
        "{took:?}"
    );
    wait_for("both connects to be closed", || {
        connecting_to(silent.addr) == 0
    });
}

#[test]
fn reaching_a_proxy_races_its_addresses_too() {
    let silent = silent_addr();
    let proxy = http_proxy(Http::open());
    let server = echo_server();
    let config = Config::builder()
        .proxy_from_env(false)
        .proxy(format!("http://proxy.test:{}", proxy.port))
        .resolve_to_addrs("proxy.test", [silent.addr, loopback(proxy.port)])
        .build()
        .unwrap();
    let started = Instant::now();
    let ws = common::connect_with_config(&server, config).unwrap();
    expect_open(&ws);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(240) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(proxy.seen().len(), 1);
}

#[test]
fn socks5h_leaves_the_servers_name_to_the_proxy() {
    let proxy = socks5_proxy(Socks::open());
    let port = port_of(&echo_server());
    // Fixed addresses for the server's name would be used by socks5://, never by socks5h://.
    let config = Config::builder()
        .proxy_from_env(false)
        .proxy(format!("socks5h://127.0.0.1:{}", proxy.port))
        .resolve_to_addrs("localhost", [loopback(closed_port())])
        .build()
        .unwrap();
    let ws = common::connect_with_config(&format!("ws://localhost:{port}/"), config).unwrap();
    expect_open(&ws);
    assert_eq!(proxy.seen(), [Destination::Name("localhost".into(), port)]);
}
