//! Nothing accepted is lost: a send that returned `Ok` reaches the server, on this connection or,
//! with reconnection on, on the next one, also when the server closes while it has stopped
//! reading (a restart); concurrent senders cannot pass the send queue's bound together; and
//! compressed messages stranded by a reset are sent again, compressed anew, on the next
//! connection.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::deflate::read_frame;
use common::*;
use nwebsocket::{Config, Error, Event, OfflineSends};

const COUNT: u32 = 8_000;
const SIZE: usize = 4 << 10;

/// A listener whose accepted sockets have a small receive buffer, so that what the kernel
/// holds of a server that stopped reading is little and known.
fn small_buffer_listener() -> TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 << 10).unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(8).unwrap();
    socket.into()
}

/// The most bytes the kernel can hold for one connection on this machine: the client's
/// largest send buffer (`tcp_wmem`) and the server's receive buffer (twice what was asked,
/// for the kernel's bookkeeping).
fn kernel_window(server: &TcpStream) -> usize {
    let wmem = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem").unwrap();
    let wmem_max: usize = wmem.split_whitespace().nth(2).unwrap().parse().unwrap();
    let rcvbuf = socket2::SockRef::from(server).recv_buffer_size().unwrap();
    wmem_max + rcvbuf
}

fn seq(payload: &[u8]) -> u32 {
    u32::from_be_bytes(payload[..4].try_into().unwrap())
}

#[test]
fn sends_accepted_before_a_server_restart_arrive_on_the_next_connection() {
    let listener = small_buffer_listener();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (go_tx, go_rx) = flume::bounded::<()>(1);
    let (window_tx, window_rx) = flume::bounded(1);
    let server = spawn(move || {
        // First connection: the server has stopped reading; when told, it says 1012
        // ("service restart") and closes its side, never reading a byte.
        let (mut first, _) = listener.accept().unwrap();
        accept_handshake(&mut first).unwrap();
        window_tx.send(kernel_window(&first)).unwrap();
        go_rx.recv().unwrap();
        use std::io::Write;
        let mut close = 1012u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"restart");
        first.write_all(&frame(true, 0x8, &close)).unwrap();
        first.shutdown(std::net::Shutdown::Write).unwrap();
        // Second connection: reads everything.
        let (mut second, _) = listener.accept().unwrap();
        accept_handshake(&mut second).unwrap();
        // Lost messages never come: the read ends after a quiet `WAIT` instead.
        second.set_read_timeout(Some(WAIT)).unwrap();
        let mut received = Vec::new();
        while let Some(frame) = read_frame(&mut second) {
            assert_eq!(frame.opcode, 2, "a binary message");
            assert_eq!(frame.payload.len(), SIZE);
            let n = seq(&frame.payload);
            received.push(n);
            if n == COUNT - 1 {
                break;
            }
        }
        second
            .write_all(&common::frame(true, 0x8, &1000u16.to_be_bytes()))
            .unwrap();
        drop(first);
        received
    });
    let config = Config::builder()
        .reconnect(true)
        .reconnect_on_close_code(1012)
        .reconnect_delays(Duration::from_millis(10), Duration::from_millis(10))
        .max_buffered_amount(64 << 20)
        .build()
        .unwrap();
    let ws = common::connect_with_config(&url, config).unwrap();
    expect_open(&ws);
    for i in 0..COUNT {
        let mut payload = i.to_be_bytes().to_vec();
        payload.resize(SIZE, b'x');
        ws.send_binary(payload).unwrap();
    }
    let accepted = COUNT as usize * SIZE;
    // Most of it still waits: the server is not reading.
    assert!(
        ws.buffered_amount() > accepted / 2,
        "{}",
        ws.buffered_amount()
    );
    go_tx.send(()).unwrap();
    match next(&ws) {
        Event::Close(close) => {
            assert_eq!(close.code, 1012);
            assert!(close.reconnect.is_some(), "a reconnection follows");
        }
        other => panic!("expected the restart's Close, got {other:?}"),
    }
    // Everything not yet written waits for the next connection.
    let waiting = ws.buffered_amount();
    expect_open(&ws);
    let received = server.join().unwrap();
    let window = window_rx.recv().unwrap();
    let first = *received
        .first()
        .expect("the second connection got messages");
    eprintln!(
        "{} of {COUNT} messages lost; the second connection got {} from #{first} on; the \
         kernel's window is {window} bytes; {waiting} bytes waited for the second connection",
        COUNT as usize - received.len(),
        received.len()
    );
    let expected: Vec<u32> = (first..COUNT).collect();
    assert!(
        received == expected,
        "gaps or reordering on the second connection"
    );
    // Only what the kernel had taken on the first connection is gone.
    let lost = first as usize * SIZE;
    assert!(
        lost <= window + SIZE,
        "lost {lost} bytes, more than the kernel's {window}"
    );
    assert!(waiting >= accepted - window - SIZE, "{waiting}");
    match next(&ws) {
        Event::Close(close) => assert!(close.was_clean && close.code == 1000),
        other => panic!("expected Close, got {other:?}"),
    }
    assert_eq!(ws.buffered_amount(), 0);
}

#[test]
fn concurrent_offline_senders_never_pass_the_queue_limit() {
    // A server that accepts TCP and never answers the upgrade: each client stays connecting,
    // so every send meets the offline limit. The race is at the crossing of the limit, once
    // per client: 100 clients, 8 sending threads each.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    const LIMIT: usize = 64 << 10;
    const SIZE: usize = 100;
    let mut worst = 0;
    for _ in 0..100 {
        let config = Config::builder()
            .offline_sends(OfflineSends::Queue { max_bytes: LIMIT })
            .build()
            .unwrap();
        let ws = common::connect_with_config(&url, config).unwrap();
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let senders: Vec<_> = (0..8)
            .map(|_| {
                let (sender, start) = (ws.sender(), start.clone());
                spawn(move || {
                    start.wait();
                    let mut accepted = 0usize;
                    for _ in 0..LIMIT / SIZE {
                        match sender.send_binary(vec![0u8; SIZE]) {
                            Ok(()) => accepted += SIZE,
                            Err(Error::QueueFull(_)) => {}
                            Err(other) => panic!("{other}"),
                        }
                    }
                    accepted
                })
            })
            .collect();
        let accepted: usize = senders.into_iter().map(|s| s.join().unwrap()).sum();
        assert_eq!(ws.buffered_amount(), accepted);
        worst = worst.max(accepted);
    }
    assert!(worst <= LIMIT, "accepted {worst} over the limit {LIMIT}");
}

#[test]
fn compressed_messages_stranded_by_a_reset_are_resent_and_decode_on_the_next_connection() {
    use common::deflate::{self, Inflate};
    use std::sync::atomic::{AtomicUsize, Ordering};
    const MESSAGES: u32 = 3_000;
    // Text that compresses to about half (hex digits of a pseudo-random stream), different in
    // every message, so that a frame compressed against the first connection's window would
    // not decode against the second's; 12 MiB in all, more than the kernel holds.
    let text = |i: u32| {
        let mut x = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let pad: String = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_digit((x & 0xf) as u32, 16).unwrap()
            })
            .collect();
        format!("{{\"seq\":{i},\"pad\":\"{pad}\"}}")
    };
    let (reset_tx, reset_rx) = flume::bounded::<()>(1);
    let (got_tx, got_rx) = flume::unbounded();
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let url = deflate::server(Some("permessage-deflate"), move |mut stream, _| {
        if connections.fetch_add(1, Ordering::SeqCst) == 0 {
            // First connection: reads nothing, then resets (no close frame, no FIN).
            reset_rx.recv().unwrap();
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            return;
        }
        // Second connection: inflates every message with one window, in order.
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut inflater = Inflate::new(15);
        while let Some(frame) = read_frame(&mut stream) {
            assert_eq!(frame.opcode, 1, "a text message");
            let payload = if frame.rsv1 {
                inflater.inflate(&frame.payload)
            } else {
                frame.payload
            };
            let message = String::from_utf8(payload).expect("valid UTF-8 after inflating");
            let done = message.starts_with(&format!("{{\"seq\":{},", MESSAGES - 1));
            got_tx.send(message).unwrap();
            if done {
                // Until the client's close.
                while read_frame(&mut stream).is_some_and(|frame| frame.opcode != 8) {}
                break;
            }
        }
    });
    let config = Config::builder()
        .reconnect(true)
        .reconnect_delays(Duration::from_millis(10), Duration::from_millis(10))
        .max_buffered_amount(64 << 20)
        .build()
        .unwrap();
    let ws = common::connect_with_config(&url, config).unwrap();
    expect_open(&ws);
    for i in 0..MESSAGES {
        ws.send_text(text(i)).unwrap();
    }
    reset_tx.send(()).unwrap();
    match next(&ws) {
        Event::Error(_) => {}
        other => panic!("expected the reset's Error, got {other:?}"),
    }
    assert!(matches!(next(&ws), Event::Close(c) if c.reconnect.is_some()));
    expect_open(&ws);
    let last = format!("{{\"seq\":{},", MESSAGES - 1);
    let mut got = Vec::new();
    while got.last().is_none_or(|m: &String| !m.starts_with(&last)) {
        got.push(got_rx.recv_timeout(WAIT).expect("the rest of the messages"));
    }
    let first: u32 = got[0]["{\"seq\":".len()..]
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let expected: Vec<String> = (first..MESSAGES).map(text).collect();
    assert!(
        got == expected,
        "gaps, reordering or bad content on the second connection"
    );
    eprintln!(
        "{} of {MESSAGES} compressed messages resent and decoded",
        got.len()
    );
    // The scenario did strand compressed messages (the kernel took the rest).
    assert!(got.len() >= 100, "only {} resent", got.len());
    ws.close().unwrap();
}
