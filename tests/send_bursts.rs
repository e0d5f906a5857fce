//! Long bursts of sends: the I/O thread lets them gather into larger writes (at most 100 µs,
//! see `COALESCED` in `src/outgoing.rs`), and that must cost nothing but those microseconds.
//! Every message arrives, in order; the end of a burst is written without another send to
//! push it out; a close right behind a burst goes after all of it; and burst after burst
//! (each gathering, then going quiet) loses nothing.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use nwebsocket::{Client, Event};

/// Far past the burst length from which sends gather (64 KiB): 512-byte messages (large
/// enough that a sender outpaces the I/O thread's writes in a debug build too).
const BURST: u32 = 20_000;
const SIZE: usize = 512;

/// A message whose first four bytes are its sequence number; `last` marks the end
/// of a burst in its fifth byte (1).
fn numbered(seq: u32, last: bool) -> Vec<u8> {
    let mut payload = vec![0x5a; SIZE];
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    payload[4] = u8::from(last);
    payload
}

/// The server side of a client's frames, read 256 KiB at a time (a server that read frame
/// by frame would be the slow side, and the client's writes would only wait for it).
struct FrameReader {
    stream: TcpStream,
    buffer: Vec<u8>,
    start: usize,
}

impl FrameReader {
    fn new(stream: TcpStream) -> Self {
        FrameReader {
            stream,
            buffer: Vec::with_capacity(512 << 10),
            start: 0,
        }
    }

    /// The next frame's opcode and unmasked payload; `None` when the client closed TCP.
    fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some(frame) = self.parse() {
                return Some(frame);
            }
            self.buffer.drain(..self.start);
            self.start = 0;
            let len = self.buffer.len();
            self.buffer.resize(len + (256 << 10), 0);
            let read = self.stream.read(&mut self.buffer[len..]).unwrap_or(0);
            self.buffer.truncate(len + read);
            if read == 0 {
                return None;
            }
        }
    }

    fn parse(&mut self) -> Option<(u8, Vec<u8>)> {
        let bytes = &self.buffer[self.start..];
        let (&[first, second], rest) = bytes.split_first_chunk::<2>()?;
        assert!(second & 0x80 != 0, "client frame not masked");
        let (len, rest) = match second & 0x7f {
            126 => {
                let (len, rest) = rest.split_first_chunk::<2>()?;
                (usize::from(u16::from_be_bytes(*len)), rest)
            }
            127 => {
                let (len, rest) = rest.split_first_chunk::<8>()?;
                (usize::try_from(u64::from_be_bytes(*len)).unwrap(), rest)
            }
            len => (usize::from(len), rest),
        };
        let (mask, rest) = rest.split_first_chunk::<4>()?;
        // Only what the server looks at is unmasked (a debug build is slow at the rest):
        // a binary frame's first eight bytes, any other frame whole.
        let shown = if first & 0x0f == 2 { len.min(8) } else { len };
        let payload: Vec<u8> = rest
            .get(..len)?
            .iter()
            .take(shown)
            .enumerate()
            .map(|(i, byte)| byte ^ mask[i % 4])
            .collect();
        self.start = self.buffer.len() - (rest.len() - len);
        Some((first & 0x0f, payload))
    }
}

/// A server that checks that each sender's messages come numbered 0, 1, 2, … (the payload's
/// fifth byte names the sender: 0 or 1 for the first, 1 marking the end of a burst, and 2
/// for the second) and
/// answers each burst's end with the count so far, to the client and on `ends` (so that a
/// test can learn it without calling the client); on a close frame it reports the counts on
/// `counted`, answers the close and closes TCP.
fn counting_server(counted: flume::Sender<[u32; 2]>, ends: flume::Sender<u32>) -> String {
    raw_ws_server(move |stream: TcpStream| {
        let mut writer = stream.try_clone().unwrap();
        let mut frames = FrameReader::new(stream);
        let mut expected = [0u32; 2];
        while let Some((opcode, payload)) = frames.next() {
            match opcode {
                2 => {
                    let seq = u32::from_be_bytes(payload[..4].try_into().unwrap());
                    let sender = usize::from(payload[4] == 2);
                    assert_eq!(
                        seq, expected[sender],
                        "sender {sender}: out of order or lost"
                    );
                    expected[sender] += 1;
                    if payload[4] == 1 {
                        let count = expected[0].to_string();
                        writer.write_all(&frame(true, 1, count.as_bytes())).unwrap();
                        let _ = ends.send(expected[0]);
                    }
                }
                8 => {
                    let _ = counted.send(expected);
                    // The reply, then the server closes TCP first (RFC 6455 §7.1.1).
                    writer.write_all(&frame(true, 8, &payload)).unwrap();
                    return;
                }
                _ => {}
            }
        }
    })
}

/// An open client of a [`counting_server`], with the server's reports.
struct Counted {
    ws: Client,
    /// Each sender's count, when the client closed.
    counted: flume::Receiver<[u32; 2]>,
    /// The first sender's count at each end of a burst.
    ends: flume::Receiver<u32>,
}

fn open_counted() -> Counted {
    let (counted_tx, counted) = flume::bounded(1);
    let (ends_tx, ends) = flume::unbounded();
    let ws = connect(&counting_server(counted_tx, ends_tx)).unwrap();
    expect_open(&ws);
    Counted { ws, counted, ends }
}

fn send_burst(ws: &Client, first: u32, count: u32) {
    for seq in first..first + count {
        ws.send_binary(numbered(seq, seq == first + count - 1))
            .unwrap();
    }
}

/// The next text message: the server's count.
fn next_count(ws: &Client) -> u32 {
    match next(ws) {
        Event::Message(message) => message.as_text().unwrap().parse().unwrap(),
        other => panic!("expected the server's count, got {other:?}"),
    }
}

// The first and third tests learn that a burst arrived from the server's side, without any
// call on the client after the last send: a client that waits for an event or for room
// has the I/O thread write what gathers at once, so only a silent client shows that the end
// of a burst goes out by itself (the gathering's timer).

#[test]
fn a_long_burst_then_silence_is_written_whole_without_another_send() {
    let Counted { ws, counted, ends } = open_counted();
    send_burst(&ws, 0, BURST);
    // No more sends, no call on the client: the tail must go out by itself.
    assert_eq!(ends.recv_timeout(WAIT).unwrap(), BURST);
    assert_eq!(next_count(&ws), BURST);
    ws.close().unwrap();
    let close = check_contract(&until_close(&ws));
    assert_eq!((close.code, close.was_clean), (1000, true));
    assert_eq!(counted.recv_timeout(WAIT).unwrap(), [BURST, 0]);
}

#[test]
fn a_close_right_behind_a_burst_goes_after_all_of_it() {
    let Counted { ws, counted, .. } = open_counted();
    send_burst(&ws, 0, BURST);
    ws.close().unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1000, true));
    assert_eq!(counted.recv_timeout(WAIT).unwrap(), [BURST, 0]);
}

#[test]
fn burst_after_burst_loses_nothing_and_each_ends_by_itself() {
    let Counted { ws, counted, ends } = open_counted();
    let mut sent = 0;
    // Bursts long enough to gather, short ones that must not, and single messages, each
    // received whole before the next starts: every end of a burst goes out with nothing
    // behind it and no call on the client.
    let bursts = [
        BURST, 1, 5_000, 3, 9_999, 1, 7_001, 12_345, 2, 3_333, BURST, 1, 6_100, 11_111,
    ];
    for count in bursts {
        send_burst(&ws, sent, count);
        sent += count;
        assert_eq!(ends.recv_timeout(WAIT).unwrap(), sent);
    }
    // And when the client waits for the answer, as most do.
    for count in bursts {
        send_burst(&ws, sent, count);
        sent += count;
        loop {
            // The answers to the first bursts come first.
            if next_count(&ws) == sent {
                break;
            }
        }
    }
    ws.close().unwrap();
    check_contract(&until_close(&ws));
    assert_eq!(counted.recv_timeout(WAIT).unwrap(), [sent, 0]);
}

#[test]
fn two_threads_sending_bursts_at_once_lose_nothing() {
    let Counted { ws, counted, .. } = open_counted();
    let senders: Vec<_> = [0u8, 2]
        .into_iter()
        .map(|sender| {
            let handle = ws.sender();
            spawn(move || {
                for seq in 0..BURST {
                    let mut payload = vec![0x5a; SIZE];
                    payload[..4].copy_from_slice(&seq.to_be_bytes());
                    payload[4] = sender;
                    handle.send_binary(payload).unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    ws.close().unwrap();
    check_contract(&until_close(&ws));
    assert_eq!(counted.recv_timeout(WAIT).unwrap(), [BURST, BURST]);
}
