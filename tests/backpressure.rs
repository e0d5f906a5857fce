//! A full event queue stops the reading: the server is pushed back by TCP, the client's memory
//! stays bounded while it waits, and once the consumer takes the events every message arrives,
//! in order. (Its own binary: it measures the process's memory and finds the I/O thread.)
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::Write;
use std::sync::Arc;

use common::*;
use nwebsocket::{Client, Config, Event};

/// The resident memory of this process, in bytes.
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn a_full_queue_stops_reading_bounds_memory_and_loses_nothing() {
    const COUNT: u32 = 48 * 1024;
    // 48 MiB of 1 KiB messages, built before the client exists, so that they are in the
    // baseline: more than this machine's socket buffers hold (a loopback receiver can take
    // up to 32 MiB here).
    let mut data = Vec::new();
    for i in 0..COUNT {
        let mut payload = i.to_be_bytes().to_vec();
        payload.resize(1024, b'x');
        data.extend(frame(true, 2, &payload));
    }
    let data = Arc::new(data);
    let (blocked_tx, blocked_rx) = flume::bounded(1);
    let url = raw_ws_server(move |mut stream| {
        // Write without blocking until the client stops reading and TCP pushes back.
        stream.set_nonblocking(true).unwrap();
        let mut written = 0;
        while written < data.len() {
            match stream.write(&data[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        blocked_tx.send(written < data.len()).unwrap();
        stream.set_nonblocking(false).unwrap();
        stream.write_all(&data[written..]).unwrap();
        std::thread::park();
    });
    let before = resident_bytes();
    let config = Config::builder().event_queue_capacity(16).build().unwrap();
    let ws = Client::connect_with_config(&url, config).unwrap();
    // Nothing is taken from the queue until the server reports that it cannot write more.
    assert!(
        blocked_rx.recv_timeout(WAIT).unwrap(),
        "the server was never blocked"
    );
    wait_until_io_asleep();
    let grown = resident_bytes().saturating_sub(before);
    // The queue holds 16 messages of 1 KiB (and the read buffers they share); reading on
    // would have taken tens of MiB out of the socket buffers.
    assert!(
        grown < 8 << 20,
        "the client grew by {} KiB while paused",
        grown >> 10
    );
    expect_open(&ws);
    for i in 0..COUNT {
        match next(&ws) {
            Event::Message(m) => {
                assert_eq!(m.len(), 1024);
                assert_eq!(
                    m.as_bytes()[..4],
                    i.to_be_bytes(),
                    "message {i} out of order"
                );
            }
            other => panic!("message {i}: {other:?}"),
        }
    }
    assert!(matches!(
        ws.try_recv(),
        Err(nwebsocket::TryRecvError::Empty)
    ));
}
