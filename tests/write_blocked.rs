//! A close or a drop while the socket pushes back (the server stopped reading) still ends the
//! connection: after the close timeout, `Error` (a close timeout), then `Close` 1006, the
//! socket closed and the thread gone. (Its own binary: it finds the I/O thread by name.)

#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use nwebsocket::{Client, Config, Error, TimeoutKind};

/// A server that completes the handshake and then never reads, until told to; then it reads
/// to the end and reports the client's EOF (the client closed its socket).
fn stalled_server() -> (String, flume::Sender<()>, flume::Receiver<()>) {
    let (drain_tx, drain_rx) = flume::unbounded::<()>();
    let (eof_tx, eof_rx) = flume::unbounded::<()>();
    let url = raw_ws_server(move |mut stream: TcpStream| {
        let _ = drain_rx.recv_timeout(WAIT * 3);
        let mut buf = vec![0u8; 1 << 20];
        while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
        let _ = eof_tx.send(());
    });
    (url, drain_tx, eof_rx)
}

/// Opens a connection and sends until the I/O thread sleeps with bytes it cannot write.
fn write_blocked_client(url: &str) -> Client {
    let config = Config::builder()
        .close_timeout(Duration::from_millis(300))
        .max_buffered_amount(256 << 20)
        .build()
        .unwrap();
    let ws = Client::connect_with_config(url, config).unwrap();
    expect_open(&ws);
    // More than the socket buffers hold on any machine (this one lets a loopback receiver
    // take up to 32 MiB); one shared buffer, so that the test itself stays small.
    let chunk = Bytes::from(vec![0u8; 1 << 20]);
    for _ in 0..128 {
        ws.send_binary(chunk.clone()).unwrap();
    }
    wait_until_io_asleep();
    assert!(ws.buffered_amount() > 0, "the socket never pushed back");
    ws
}

/// The connection ends by its close timer: `Error` (a close timeout), then `Close` 1006, and
/// the I/O thread is gone.
fn expect_close_timeout(ws: &Client) {
    let events = until_close(ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false), "{events:?}");
    assert!(
        matches!(
            error_of(&events),
            Some(Error::Timeout {
                kind: TimeoutKind::Close,
                ..
            })
        ),
        "{events:?}"
    );
    assert!(ws.wait_closed(WAIT), "the I/O thread is still running");
}

#[test]
fn close_and_drop_while_write_blocked_end_the_connection() {
    // close(): the close timer runs although the close frame cannot be written.
    let (url, drain, eof) = stalled_server();
    let ws = write_blocked_client(&url);
    let started = Instant::now();
    ws.close().unwrap();
    expect_close_timeout(&ws);
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
    drain.send(()).unwrap();
    eof.recv_timeout(WAIT).expect("the socket was not closed");
    drop(ws);

    // The drop of the last handle: the same, with nobody left to see the events.
    let (url, drain, eof) = stalled_server();
    let ws = write_blocked_client(&url);
    drop(ws);
    wait_for("the I/O thread gone after the drop", || {
        io_threads().is_empty()
    });
    drain.send(()).unwrap();
    eof.recv_timeout(WAIT).expect("the socket was not closed");
}

#[test]
fn a_close_whose_reply_never_left_is_not_clean() {
    // The server sends its close frame and then never reads: our reply waits behind a 64 MiB
    // message that the socket has started on and can never finish, and the close timer runs
    // out. Our close frame did not go over, so the close is not clean.
    let (close_tx, close_rx) = flume::bounded::<()>(1);
    let url = raw_ws_server(move |mut stream: TcpStream| {
        close_rx.recv_timeout(WAIT).unwrap();
        std::io::Write::write_all(&mut stream, &frame(true, 0x8, &1000u16.to_be_bytes())).unwrap();
        // Keeps the socket open, unread, until the client closes it.
        let _ = close_rx.recv_timeout(WAIT * 3);
    });
    let config = Config::builder()
        .close_timeout(Duration::from_millis(300))
        .max_buffered_amount(128 << 20)
        .build()
        .unwrap();
    let ws = Client::connect_with_config(&url, config).unwrap();
    expect_open(&ws);
    // One frame, larger than any socket buffers here: it stays started and unfinished.
    ws.send_binary(vec![0u8; 64 << 20]).unwrap();
    wait_until_io_asleep();
    close_tx.send(()).unwrap();
    expect_close_timeout(&ws);
}
