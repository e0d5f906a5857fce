//! A bounded soak (10 s, `NWS_SOAK_SECS` to change): mixed traffic in both directions with
//! sequence numbers and checksums. Every message sent by either side arrives exactly once, in
//! order, intact, and the client's memory stays flat.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use nwebsocket::{Config, Event, Message};

/// A payload that carries its sequence number, a length that varies, and a checksum.
fn payload(seq: u64) -> Vec<u8> {
    let len = 8 + (seq.wrapping_mul(2_654_435_761) % 4000) as usize;
    let mut bytes: Vec<u8> = (0..len).map(|i| (seq as usize + i * 31) as u8).collect();
    bytes[..8].copy_from_slice(&seq.to_be_bytes());
    let sum = checksum(&bytes[8..]);
    bytes.extend_from_slice(&sum.to_be_bytes());
    bytes
}

fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(16_777_619)
    })
}

/// Checks the checksum and returns the sequence number.
fn verify(bytes: &[u8]) -> u64 {
    let (body, sum) = bytes.split_at(bytes.len() - 4);
    assert_eq!(checksum(&body[8..]).to_be_bytes(), sum, "corrupt payload");
    u64::from_be_bytes(body[..8].try_into().unwrap())
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Echoes binary messages after checking their order, and pushes its own text messages in
/// between. Reports how many it pushed and echoed when the client closes.
fn soak_server() -> (String, flume::Receiver<(u64, u64)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (done_tx, done_rx) = flume::bounded(1);
    spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        let (mut pushed, mut echoed) = (0u64, 0u64);
        loop {
            match ws.read() {
                Ok(tungstenite::Message::Binary(bytes)) => {
                    assert_eq!(verify(&bytes), echoed, "client message out of order");
                    echoed += 1;
                    ws.write(tungstenite::Message::Binary(bytes)).unwrap();
                }
                Ok(tungstenite::Message::Close(_)) => {}
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
            if ws.can_write() && pushed < echoed + 1000 {
                let text = format!("push {pushed} {}", checksum(&pushed.to_be_bytes()));
                ws.write(tungstenite::Message::Text(text.into())).unwrap();
                pushed += 1;
            }
            let _ = ws.flush();
        }
        done_tx.send((pushed, echoed)).unwrap();
    });
    (url, done_rx)
}

#[test]
fn soak_both_directions_nothing_lost_memory_flat() {
    let secs: u64 = std::env::var("NWS_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let (url, done) = soak_server();
    let config = Config::builder().event_queue_capacity(256).build().unwrap();
    let ws = common::connect_with_config(&url, config).unwrap();
    expect_open(&ws);

    let started = Instant::now();
    let (mut sent, mut echoes, mut pushes) = (0u64, 0u64, 0u64);
    let mut rss_after_warmup = None;
    let handle = |event: Event, echoes: &mut u64, pushes: &mut u64| match event {
        Event::Message(Message::Binary(bytes)) => {
            assert_eq!(verify(&bytes), *echoes, "echo out of order");
            *echoes += 1;
        }
        Event::Message(Message::Text(text)) => {
            let mut parts = text.split(' ').skip(1);
            let seq: u64 = parts.next().unwrap().parse().unwrap();
            let sum: u32 = parts.next().unwrap().parse().unwrap();
            assert_eq!(
                (seq, sum),
                (*pushes, checksum(&seq.to_be_bytes())),
                "push out of order"
            );
            *pushes += 1;
        }
        other => panic!("unexpected {other:?}"),
    };
    while started.elapsed() < Duration::from_secs(secs) {
        // Keep about 1 MiB in flight.
        while ws.buffered_amount() < 1 << 20 && sent < echoes + 2000 {
            ws.send_binary(payload(sent)).unwrap();
            sent += 1;
        }
        match ws.recv_timeout(WAIT) {
            Ok(event) => handle(event, &mut echoes, &mut pushes),
            Err(err) => panic!("stalled: {err}"),
        }
        for event in ws.try_events() {
            handle(event, &mut echoes, &mut pushes);
        }
        if rss_after_warmup.is_none() && started.elapsed() > Duration::from_secs(secs / 4) {
            rss_after_warmup = Some(rss_kib());
        }
    }
    ws.close().unwrap();
    let events = until_close(&ws);
    let (last, rest) = events.split_last().unwrap();
    for event in rest {
        handle(
            match event {
                Event::Message(m) => Event::Message(m.clone()),
                other => panic!("unexpected {other:?}"),
            },
            &mut echoes,
            &mut pushes,
        );
    }
    assert!(matches!(last, Event::Close(c) if c.was_clean));
    let (server_pushed, server_echoed) = done.recv_timeout(WAIT).unwrap();
    assert_eq!(server_echoed, sent, "the server did not get every message");
    assert_eq!(echoes, sent, "not every echo came back");
    assert_eq!(pushes, server_pushed, "not every push arrived");
    let growth = rss_kib().saturating_sub(rss_after_warmup.unwrap());
    assert!(growth < 32 * 1024, "RSS grew by {growth} KiB");
    assert!(sent > 1000, "too little traffic: {sent}");
    eprintln!("soak: {sent} sent and echoed, {pushes} pushed, RSS growth {growth} KiB");
}
