//! Memory stays bounded in bytes whatever the peer does, measured as this process's resident
//! memory against a peer built to break each bound: a server whose small compressed messages
//! inflate to megabytes while the consumer pauses (the event queue's byte bound), a server that
//! never reads while the client sends (the bound on `buffered_amount`), and a server that
//! floods pings without reading the pongs (one pending pong). In each, every message still
//! arrives, in order. (Its own binary, one test at a time: it measures the process.)
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use common::deflate::{self, Deflate, frame_rsv1, read_frame};
use common::*;
use nwebsocket::{Client, Config, Error, Event, Message};

/// The tests measure the whole process: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const MIB: usize = 1 << 20;

/// The resident memory of this process, in bytes.
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn inflated_messages_stop_the_reading_at_the_queue_byte_bound() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    const COUNT: u32 = 300;
    const QUEUE_BYTES: usize = 16 * MIB;
    // 300 messages of 1 MiB (a sequence number, then zeros), about 1 KiB each compressed:
    // 300 MiB once inflated, from a few hundred KiB on the wire.
    let mut deflater = Deflate::new(15, true);
    let mut wire = Vec::new();
    for i in 0..COUNT {
        let mut message = vec![0u8; MIB];
        message[..4].copy_from_slice(&i.to_be_bytes());
        wire.extend(frame_rsv1(true, true, 0x2, &deflater.compress(&message)));
    }
    let on_the_wire = wire.len();
    let url = deflate::server(Some("permessage-deflate"), move |mut stream, _| {
        stream.write_all(&wire).unwrap();
        let _ = deflate::close_code(&mut stream);
    });
    let config = Config::builder()
        .event_queue_bytes(QUEUE_BYTES)
        .build()
        .unwrap();
    let before = resident_bytes();
    let ws = Client::connect_with_config(&url, config).unwrap();
    expect_open(&ws);
    // The consumer pauses: the I/O thread reads until the queue is full, then sleeps.
    wait_until_io_asleep();
    let grown = resident_bytes().saturating_sub(before);
    eprintln!(
        "{on_the_wire} bytes on the wire ({COUNT} MiB inflated); the client grew by {} KiB",
        grown >> 10
    );
    // The bound: the queue's bytes, one more message, the read buffer; plus slack for the
    // allocator.
    assert!(
        grown < QUEUE_BYTES + MIB + 16 * MIB,
        "grew by {} MiB while paused",
        grown / MIB
    );
    for i in 0..COUNT {
        match next(&ws) {
            Event::Message(Message::Binary(bytes)) => {
                assert_eq!(bytes.len(), MIB);
                assert_eq!(u32::from_be_bytes(bytes[..4].try_into().unwrap()), i);
            }
            other => panic!("message {i}: {other:?}"),
        }
    }
    ws.close().unwrap();
    let close = check_contract(&until_close(&ws));
    assert!(close.was_clean);
}

#[test]
fn sends_to_a_server_that_never_reads_are_refused_past_the_bound() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    const BOUND: usize = 8 * MIB;
    const SIZE: usize = 8 << 10;
    let (read_tx, read_rx) = flume::bounded::<()>(1);
    let (count_tx, count_rx) = flume::bounded(1);
    let url = raw_ws_server(move |mut stream| {
        // Stops reading until told; then reads every message and counts them in order.
        read_rx.recv().unwrap();
        let mut count = 0u32;
        while let Some(frame) = read_frame(&mut stream) {
            if frame.opcode == 0x8 {
                break;
            }
            assert_eq!(
                u32::from_be_bytes(frame.payload[..4].try_into().unwrap()),
                count
            );
            count += 1;
        }
        count_tx.send(count).unwrap();
    });
    let config = Config::builder()
        .max_buffered_amount(BOUND)
        .build()
        .unwrap();
    let ws = Client::connect_with_config(&url, config).unwrap();
    expect_open(&ws);
    let before = resident_bytes();
    let mut accepted = 0u32;
    // Up to 1 GiB of sends: all `Ok` before the bound existed.
    let refused = loop {
        assert!(accepted < (1 << 30) / SIZE as u32, "never refused");
        let mut payload = accepted.to_be_bytes().to_vec();
        payload.resize(SIZE, b'x');
        match ws.send_binary(payload) {
            Ok(()) => accepted += 1,
            Err(Error::QueueFull(waiting)) => break waiting,
            Err(other) => panic!("{other}"),
        }
    };
    let grown = resident_bytes().saturating_sub(before);
    eprintln!(
        "{accepted} sends of 8 KiB accepted, then QueueFull with {refused} bytes waiting; \
         grew by {} KiB",
        grown >> 10
    );
    assert!(refused + SIZE > BOUND && refused <= BOUND);
    assert!(grown < BOUND + 8 * MIB, "grew by {} MiB", grown / MIB);
    // Nothing drains while the server does not read.
    assert!(
        !ws.wait_buffered_below(BOUND / 2, Duration::from_millis(50))
            .unwrap()
    );
    read_tx.send(()).unwrap();
    assert!(ws.wait_buffered_below(BOUND / 2, WAIT).unwrap());
    assert!(ws.wait_buffered_below(1, WAIT).unwrap());
    ws.close().unwrap();
    assert_eq!(count_rx.recv_timeout(WAIT).unwrap(), accepted);
    // After the close, nothing will drain: a waiter hears it at once.
    check_contract(&until_close(&ws));
    assert_eq!(ws.buffered_amount(), 0);
}

#[test]
fn a_ping_flood_that_reads_no_pong_keeps_one_pong() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    const PINGS: u32 = 500_000; // 125 bytes each: 62 MiB of pongs owed
    let mut flood = Vec::with_capacity(PINGS as usize * 127);
    for i in 0..PINGS {
        let mut payload = i.to_be_bytes().to_vec();
        payload.resize(125, b'p');
        flood.extend(frame(true, 0x9, &payload));
    }
    let (flooded_tx, flooded_rx) = flume::bounded::<()>(1);
    let (read_tx, read_rx) = flume::bounded::<()>(1);
    let (pongs_tx, pongs_rx) = flume::bounded(1);
    let url = raw_ws_server(move |mut stream| {
        stream.write_all(&flood).unwrap();
        flooded_tx.send(()).unwrap();
        read_rx.recv().unwrap();
        // Every pong answers a later ping than the one before; the last answers the last.
        let mut last = None;
        while let Some(frame) = read_frame(&mut stream) {
            assert_eq!(frame.opcode, 0xA, "only pongs");
            let n = u32::from_be_bytes(frame.payload[..4].try_into().unwrap());
            assert!(last.is_none_or(|last| n > last), "{n} after {last:?}");
            last = Some(n);
            if n == PINGS - 1 {
                break;
            }
        }
        pongs_tx.send(last).unwrap();
    });
    let before = resident_bytes();
    let ws = Client::connect_with_config(&url, Config::default()).unwrap();
    expect_open(&ws);
    flooded_rx.recv_timeout(WAIT).unwrap();
    wait_until_io_asleep();
    let grown = resident_bytes().saturating_sub(before);
    eprintln!(
        "{PINGS} pings unanswered by TCP: the client grew by {} KiB",
        grown >> 10
    );
    assert!(grown < 8 * MIB, "grew by {} MiB", grown / MIB);
    read_tx.send(()).unwrap();
    assert_eq!(pongs_rx.recv_timeout(WAIT).unwrap(), Some(PINGS - 1));
}
