//! TCP keepalive reaches the I/O thread's socket: the kernel runs a keepalive timer for it
//! (read from `/proc/net/tcp`), with the idle time asked for, and none without the setting.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::Read;
use std::time::Duration;

use common::*;
use nwebsocket::Config;

/// Connects with `config` to a server that keeps the connection open and quiet; returns the
/// kernel's timer for the client's socket as `(kind, ticks left)` from `/proc/net/tcp`.
fn client_socket_timer(config: Config) -> (u8, u64) {
    let (peer_tx, peer) = flume::bounded(1);
    let url = raw_ws_server(move |mut stream| {
        let _ = peer_tx.send((stream.peer_addr().unwrap(), stream.local_addr().unwrap()));
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let _ = stream.read(&mut [0; 64]);
    });
    let ws = common::connect_with_config(&url, config).unwrap();
    expect_open(&ws);
    let (client, server) = peer.recv_timeout(WAIT).unwrap();
    let local = format!("0100007F:{:04X}", client.port());
    let remote = format!("0100007F:{:04X}", server.port());
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    // The established socket of this connection: an earlier one from the same local port may
    // linger in TIME_WAIT (state 06, timer kind 3) with another remote port.
    let line = table
        .lines()
        .find(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&local.as_str())
                && fields.get(2) == Some(&remote.as_str())
                && fields.get(3) == Some(&"01")
        })
        .unwrap_or_else(|| panic!("no established socket {local} -> {remote} in {table}"));
    // Fields: sl local rem st tx:rx tr:when retrnsmt ...
    let timer = line.split_whitespace().nth(5).unwrap();
    let (kind, when) = timer.split_once(':').unwrap();
    (
        u8::from_str_radix(kind, 16).unwrap(),
        u64::from_str_radix(when, 16).unwrap(),
    )
}

#[test]
fn the_kernel_runs_a_keepalive_timer_for_the_socket() {
    let config = Config::builder()
        .tcp_keepalive(Duration::from_secs(5), Duration::from_secs(1), 3)
        .build()
        .unwrap();
    let (kind, ticks) = client_socket_timer(config);
    assert_eq!(kind, 2, "timer kind 2 is keepalive");
    // In clock ticks (USER_HZ, 100 on Linux): at most the 5 s idle time.
    assert!(ticks > 0 && ticks <= 500, "{ticks}");
}

#[test]
fn off_by_default() {
    let (kind, _) = client_socket_timer(Config::default());
    assert_eq!(kind, 0, "no timer on an idle socket without keepalive");
}
