//! Reconnection, seen from the I/O thread: messages that the socket had not taken whole when
//! the connection died are written on the next one, in order, none twice; and 100 reconnects
//! run on the one I/O thread of the handle. (Its own binary, one test at a time: it watches the
//! I/O threads by name.)
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use nwebsocket::{Client, Config, Event};

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

fn reconnecting() -> Config {
    Config::builder()
        .reconnect(true)
        .reconnect_delays(Duration::from_millis(1), Duration::from_millis(5))
        // The stranded-messages test queues 64 MiB.
        .max_buffered_amount(128 << 20)
        .build()
        .unwrap()
}

#[test]
fn messages_stranded_in_a_dead_connection_go_out_on_the_next() {
    let _one_at_a_time = one_at_a_time();
    const COUNT: u32 = 64;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (reset_tx, reset_rx) = flume::bounded::<()>(1);
    let (received_tx, received_rx) = flume::unbounded::<u32>();
    spawn(move || {
        // The first connection never reads; when told, it is reset.
        let (mut first, _) = listener.accept().unwrap();
        accept_handshake(&mut first).unwrap();
        reset_rx.recv().unwrap();
        socket2::SockRef::from(&first)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(first);
        // The second reads every message and reports its sequence number.
        let (second, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(second).unwrap();
        while let Ok(message) = ws.read() {
            if let tungstenite::Message::Binary(bytes) = message {
                let _ = received_tx.send(u32::from_be_bytes(bytes[..4].try_into().unwrap()));
            }
        }
    });
    let ws = Client::connect_with_config(&url, reconnecting()).unwrap();
    expect_open(&ws);
    // 64 MiB: more than the socket buffers hold here (up to 32 MiB for a loopback receiver).
    for i in 0..COUNT {
        let mut payload = vec![0u8; 1 << 20];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        ws.send_binary(Bytes::from(payload)).unwrap();
    }
    wait_until_io_asleep();
    let stranded = ws.buffered_amount();
    assert!(stranded > 0, "the socket never pushed back");
    reset_tx.send(()).unwrap();
    // The reset connection, then the next one.
    loop {
        match next(&ws) {
            Event::Open(_) => break,
            Event::Error(_) | Event::Close(_) => {}
            other => panic!("{other:?}"),
        }
    }
    // What the kernel had taken may be lost with the first connection; everything after it
    // comes on the second, in order, none twice, the last one included.
    let first = received_rx.recv_timeout(WAIT).unwrap();
    let mut expected = first + 1;
    while expected < COUNT {
        assert_eq!(received_rx.recv_timeout(WAIT).unwrap(), expected);
        expected += 1;
    }
    assert!(
        (COUNT - first) as usize * (1 << 20) >= stranded,
        "{} messages resent for {stranded} bytes stranded",
        COUNT - first
    );
    wait_for("buffered_amount back to zero", || ws.buffered_amount() == 0);
    ws.close().unwrap();
    assert!(ws.wait_closed(WAIT));
}

#[test]
fn a_hundred_reconnects_run_on_one_io_thread() {
    let _one_at_a_time = one_at_a_time();
    // Accepts, completes the handshake, and drops the connection without a close frame.
    let port = tcp_server(|mut stream: TcpStream| {
        if accept_handshake(&mut stream).is_some() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    });
    let ws =
        Client::connect_with_config(&format!("ws://127.0.0.1:{port}/"), reconnecting()).unwrap();
    let mut opens = 0;
    while opens < 100 {
        if let Event::Open(_) = next(&ws) {
            opens += 1;
            assert_eq!(io_threads().len(), 1, "after {opens} connections");
        }
    }
    ws.close().unwrap();
    assert!(ws.wait_closed(WAIT));
    assert!(io_threads().is_empty());
}
