//! Keepalive and dead peers: pings go out when the connection is quiet, at the interval; a
//! blackholed peer is found within interval + timeout; a server that answers slowly, or sends
//! data and never pongs, stays alive; with both off, no ping is ever sent.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::fault_proxy::{Fault, FaultProxy};
use common::restartable::RestartableServer;
use common::*;
use nwebsocket::{Config, Error, Event, TimeoutKind};

/// A tungstenite server that reports when its handshake answer went out, then the arrival
/// time of every ping it gets.
fn ping_counting_server() -> (String, flume::Receiver<Instant>) {
    let (tx, rx) = flume::unbounded();
    let url = ws_server(move |mut ws| {
        let _ = tx.send(Instant::now());
        while let Ok(message) = ws.read() {
            if message.is_ping() {
                let _ = tx.send(Instant::now());
            }
        }
    });
    (url, rx)
}

#[test]
fn pings_go_out_at_the_interval_on_a_quiet_connection() {
    let (url, pings) = ping_counting_server();
    let interval = Duration::from_millis(100);
    let config = Config::builder().ping_interval(interval).build().unwrap();
    let ws = common::connect_with_config(&url, config).unwrap();
    expect_open(&ws);
    // Measured at the server, whose clock cannot run ahead of the client's: the client's
    // timer starts once it has the answer that the server sent at `opened`.
    let opened = pings.recv_timeout(WAIT).unwrap();
    let arrivals: Vec<Instant> = (0..5)
        .map(|_| pings.recv_timeout(WAIT).expect("no ping"))
        .collect();
    let mut previous = opened;
    for (i, at) in arrivals.iter().enumerate() {
        let gap = at.duration_since(previous);
        // Quiet means no bytes from the server; its pong counts, so the next ping comes an
        // interval after the pong, which the server sent after the ping came.
        assert!(
            gap >= interval && gap < interval * 4,
            "ping {i} after {gap:?}"
        );
        previous = *at;
    }
    ws.close().unwrap();
    assert!(check_contract(&until_close(&ws)).was_clean);
}

#[test]
fn no_ping_when_keepalive_is_off() {
    let (url, pings) = ping_counting_server();
    let ws = common::connect(&url).unwrap();
    expect_open(&ws);
    pings.recv_timeout(WAIT).unwrap(); // the handshake
    // The measuring window: a default client stays silent however long it idles.
    assert!(pings.recv_timeout(Duration::from_millis(400)).is_err());
    ws.close().unwrap();
    assert!(check_contract(&until_close(&ws)).was_clean);
    assert!(pings.is_empty());
}

#[test]
fn a_blackholed_peer_is_found_within_interval_plus_timeout() {
    let server = RestartableServer::start();
    let proxy = FaultProxy::start(server.addr());
    let (interval, timeout) = (Duration::from_millis(100), Duration::from_millis(300));
    let config = Config::builder()
        .ping_interval(interval)
        .dead_peer_timeout(timeout)
        .build()
        .unwrap();
    let ws = common::connect_with_config(&proxy.url(), config).unwrap();
    expect_open(&ws);
    ws.send_text("before").unwrap();
    assert!(matches!(next(&ws), Event::Message(m) if m.as_text() == Some("before")));
    // The peer vanishes: no FIN, no RST, nothing comes back.
    proxy.set(Fault::Blackhole);
    let vanished = Instant::now();
    let events = until_close(&ws);
    let found_after = vanished.elapsed();
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false));
    assert!(
        matches!(
            error_of(&events),
            Some(Error::Timeout {
                kind: TimeoutKind::DeadPeer,
                ..
            })
        ),
        "{events:?}"
    );
    assert!(
        found_after <= interval + timeout + Duration::from_millis(150),
        "found after {found_after:?}"
    );
    assert!(ws.wait_closed(WAIT));
}

#[test]
fn a_slow_server_is_alive() {
    // Every byte takes 150 ms each way through the proxy: pongs come late, but they come.
    let server = RestartableServer::start();
    let proxy = FaultProxy::start(server.addr());
    proxy.set(Fault::Latency(Duration::from_millis(150)));
    let config = Config::builder()
        .ping_interval(Duration::from_millis(100))
        .dead_peer_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let ws = common::connect_with_config(&proxy.url(), config).unwrap();
    expect_open(&ws);
    // The measuring window: several intervals and more than one timeout.
    assert!(matches!(
        ws.recv_timeout(Duration::from_millis(1200)),
        Err(nwebsocket::RecvTimeoutError::Timeout)
    ));
    ws.send_text("still here").unwrap();
    assert!(matches!(next(&ws), Event::Message(m) if m.as_text() == Some("still here")));
    ws.close().unwrap();
    assert!(check_contract(&until_close(&ws)).was_clean);
}

#[test]
fn a_server_that_sends_data_and_never_pongs_is_alive() {
    // It never reads (so never pongs), but sends a message every 50 ms for a second, then
    // closes.
    let url = raw_ws_server(|mut stream: TcpStream| {
        for i in 0..20u8 {
            if stream.write_all(&frame(true, 2, &[i])).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = stream.write_all(&frame(true, 8, &1000u16.to_be_bytes()));
        let _ = std::io::Read::read(&mut stream, &mut [0u8; 256]);
    });
    let config = Config::builder()
        .ping_interval(Duration::from_millis(100))
        .dead_peer_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let ws = common::connect_with_config(&url, config).unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1000, true), "{events:?}");
    assert_eq!(messages(&events).len(), 20);
}

#[test]
fn an_upload_over_a_slow_link_is_alive_while_the_peer_acknowledges() {
    // A robot on a slow uplink: megabytes queue in the kernel, the ping waits behind them and
    // nothing comes back for seconds, but room keeps coming back in the full send buffer as
    // the peer acknowledges. (More than the kernel's buffers hold: an upload that fits in
    // them whole gives no such sign; see `dead_peer_timeout`'s docs.)
    const UPLOAD: usize = 12 << 20;
    let (done_tx, done_rx) = flume::bounded(1);
    let url = ws_server(move |mut ws| {
        let mut received = 0;
        while received < UPLOAD {
            match ws.read() {
                Ok(message) => received += message.into_data().len(),
                Err(_) => return,
            }
        }
        let _ = ws.send(tungstenite::Message::text("all here"));
        let _ = done_tx.send(received);
        while ws.read().is_ok() {}
    });
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let proxy = FaultProxy::start(addr);
    proxy.set(Fault::Throttle(4 << 20));
    let config = Config::builder()
        .ping_interval(Duration::from_millis(300))
        .dead_peer_timeout(Duration::from_millis(1200))
        .build()
        .unwrap();
    let ws = common::connect_with_config(&proxy.url(), config).unwrap();
    expect_open(&ws);
    let started = Instant::now();
    for _ in 0..UPLOAD / (64 << 10) {
        ws.send_binary(vec![7u8; 64 << 10]).unwrap();
    }
    match next(&ws) {
        Event::Message(message) => assert_eq!(message.as_text(), Some("all here")),
        other => panic!("declared dead while the upload drained: {other:?}"),
    }
    let took = started.elapsed();
    eprintln!("{UPLOAD} bytes over the slow link in {took:?}");
    // The link really was slow: silence from the server lasted well over the timeout.
    assert!(took > Duration::from_millis(2400), "{took:?}");
    assert_eq!(done_rx.recv_timeout(WAIT).unwrap(), UPLOAD);
    ws.close().unwrap();
    assert!(check_contract(&until_close(&ws)).was_clean);
}
