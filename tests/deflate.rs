//! permessage-deflate (RFC 7692) against a scripted flate2 server: the offer, every edge of
//! the negotiation, both directions compressed with each window size and with and without
//! context takeover, uncompressed frames after agreement, and the failures a server can
//! cause (a decompression bomb, corrupt data, RSV1 where it may not be) with their codes.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::io::Write;

use common::deflate::{self, Deflate, Inflate, close_code, frame_rsv1, read_frame};
use common::*;
use nwebsocket::{Config, Error, Event, Message};

fn config() -> nwebsocket::ConfigBuilder {
    Config::builder().close_timeout(std::time::Duration::from_secs(2))
}

/// JSON-like text that compresses well, of about `len` bytes.
fn json(i: usize, len: usize) -> String {
    let item = format!(r#"{{"id":{i},"symbol":"BTC-USD","price":"42000.{i}","side":"buy"}},"#);
    item.repeat(len / item.len() + 1)[..len].to_owned()
}

#[test]
fn deflate_is_offered_by_default_and_not_when_off() {
    let (tx, rx) = flume::unbounded();
    let url = deflate::server(None, move |mut stream, request| {
        let offer = deflate::header(&request, "sec-websocket-extensions").map(str::to_owned);
        tx.send(offer).unwrap();
        close_code(&mut stream);
    });
    for (config, want) in [
        (
            config().build().unwrap(),
            Some("permessage-deflate; client_max_window_bits"),
        ),
        (
            config()
                .deflate_server_max_window_bits(10)
                .deflate_server_no_context_takeover(true)
                .build()
                .unwrap(),
            Some(
                "permessage-deflate; client_max_window_bits; server_max_window_bits=10; \
                 server_no_context_takeover",
            ),
        ),
        (config().deflate(false).build().unwrap(), None),
    ] {
        let ws = common::connect_with_config(&url, config).unwrap();
        expect_open(&ws);
        assert_eq!(ws.extensions(), "");
        ws.close().unwrap();
        check_contract(&until_close(&ws));
        assert_eq!(rx.recv_timeout(WAIT).unwrap().as_deref(), want);
    }
}

#[test]
fn every_invalid_answer_fails_the_handshake() {
    let answers = [
        "x-webkit-deflate-frame",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate; unknown_parameter",
        "permessage-deflate; server_no_context_takeover=yes",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=99",
    ];
    for answer in answers {
        let url = deflate::server(Some(answer), |_, _| {});
        let ws = common::connect_with_config(&url, config().build().unwrap()).unwrap();
        let events = until_close(&ws);
        let close = check_contract(&events);
        assert_eq!(close.code, 1006, "{answer}");
        assert!(
            matches!(error_of(&events), Some(Error::Handshake(_))),
            "{answer}: {events:?}"
        );
    }
    // What was asked for must be in the answer; nothing may come back when nothing was offered.
    let asked = [
        (
            config().deflate_server_no_context_takeover(true),
            "permessage-deflate",
        ),
        (
            config().deflate_server_max_window_bits(10),
            "permessage-deflate",
        ),
        (
            config().deflate_server_max_window_bits(10),
            "permessage-deflate; server_max_window_bits=11",
        ),
        (
            config().deflate_client_max_window_bits(10),
            "permessage-deflate; client_max_window_bits=12",
        ),
        (config().deflate(false), "permessage-deflate"),
    ];
    for (builder, answer) in asked {
        let url = deflate::server(Some(answer), |_, _| {});
        let ws = common::connect_with_config(&url, builder.build().unwrap()).unwrap();
        let events = until_close(&ws);
        assert!(
            matches!(error_of(&events), Some(Error::Handshake(_))),
            "{answer}: {events:?}"
        );
    }
}

/// An echo server with deflate: inflates what the client sends (reporting whether each
/// message came compressed), sends each message back compressed with its own window.
fn echo(
    answer: &str,
    server_bits: u8,
    client_bits: u8,
    server_reset: bool,
) -> (String, flume::Receiver<(bool, Vec<u8>)>) {
    let (tx, rx) = flume::unbounded();
    let url = deflate::server(Some(answer), move |mut stream, _| {
        let mut deflater = Deflate::new(server_bits, server_reset);
        let mut inflater = Inflate::new(client_bits);
        while let Some(frame) = read_frame(&mut stream) {
            match frame.opcode {
                0x8 => {
                    let _ =
                        stream.write_all(&deflate::frame_rsv1(true, false, 0x8, &frame.payload));
                    return;
                }
                0x1 | 0x2 => {
                    assert!(frame.fin);
                    let message = if frame.rsv1 {
                        inflater.inflate(&frame.payload)
                    } else {
                        frame.payload
                    };
                    tx.send((frame.rsv1, message.clone())).unwrap();
                    let compressed = deflater.compress(&message);
                    stream
                        .write_all(&frame_rsv1(true, true, frame.opcode, &compressed))
                        .unwrap();
                }
                _ => {}
            }
        }
    });
    (url, rx)
}

fn echo_through(url: &str, config: Config, rx: &flume::Receiver<(bool, Vec<u8>)>) -> String {
    let ws = common::connect_with_config(url, config).unwrap();
    let Event::Open(open) = next(&ws) else {
        panic!("no open")
    };
    let extensions = open.extensions().to_owned();
    assert_eq!(ws.extensions(), extensions);
    let sent: Vec<String> = (0..20)
        .map(|i| json(i, [10, 100, 1000, 70_000][i % 4]))
        .collect();
    for text in &sent {
        ws.send(text.as_str()).unwrap();
    }
    ws.send(vec![7u8; 5000]).unwrap();
    for text in &sent {
        let Event::Message(Message::Text(got)) = next(&ws) else {
            panic!("no text")
        };
        assert_eq!(got.as_str(), text);
        let (compressed, at_server) = rx.recv_timeout(WAIT).unwrap();
        assert_eq!(at_server, text.as_bytes());
        // Below the threshold, messages go out as they are.
        assert_eq!(compressed, text.len() >= 64, "{}", text.len());
    }
    let Event::Message(Message::Binary(got)) = next(&ws) else {
        panic!("no binary")
    };
    assert_eq!(got, vec![7u8; 5000]);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (true, vec![7u8; 5000]));
    ws.close().unwrap();
    let close = check_contract(&until_close(&ws));
    assert!(close.was_clean);
    extensions
}

#[test]
fn messages_flow_compressed_both_ways_with_every_window_size() {
    for bits in 9..=15u8 {
        let answer = format!(
            "permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
        );
        let (url, rx) = echo(&answer, bits, bits, false);
        let agreed = echo_through(&url, config().build().unwrap(), &rx);
        assert_eq!(agreed, answer);
    }
}

#[test]
fn no_context_takeover_either_way() {
    // The server resets its window per message; the client is told to reset its own.
    let answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    let (url, rx) = echo(answer, 15, 15, true);
    echo_through(&url, config().build().unwrap(), &rx);
    // Asked for by the client, both ways.
    let (url, rx) = echo(answer, 15, 15, true);
    let asking = config()
        .deflate_client_no_context_takeover(true)
        .deflate_server_no_context_takeover(true)
        .build()
        .unwrap();
    echo_through(&url, asking, &rx);
}

#[test]
fn a_server_allowing_only_8_bit_windows_gets_uncompressed_messages() {
    let (tx, rx) = flume::unbounded();
    let url = deflate::server(
        Some("permessage-deflate; client_max_window_bits=8; server_max_window_bits=8"),
        move |mut stream, _| {
            // An 8-bit window is inflated with a 9-bit one.
            let mut deflater = Deflate::new(9, false);
            let frame = read_frame(&mut stream).unwrap();
            tx.send(frame.rsv1).unwrap();
            let compressed = deflater.compress(&frame.payload);
            stream
                .write_all(&frame_rsv1(true, true, 0x1, &compressed))
                .unwrap();
            close_code(&mut stream);
        },
    );
    let ws = common::connect_with_config(&url, config().build().unwrap()).unwrap();
    expect_open(&ws);
    let text = json(1, 500);
    ws.send(text.as_str()).unwrap();
    let Event::Message(got) = next(&ws) else {
        panic!("no message")
    };
    assert_eq!(got.as_text(), Some(text.as_str()));
    assert!(
        !rx.recv_timeout(WAIT).unwrap(),
        "compressed with an 8-bit window"
    );
    ws.close().unwrap();
    assert!(check_contract(&until_close(&ws)).was_clean);
}

/// A server that agrees to deflate, sends `bytes`, and reports the client's close code.
fn sending(bytes: Vec<u8>) -> (String, flume::Receiver<Option<u16>>) {
    let (tx, rx) = flume::unbounded();
    let url = deflate::server(Some("permessage-deflate"), move |mut stream, _| {
        stream.write_all(&bytes).unwrap();
        let _ = tx.send(close_code(&mut stream));
    });
    (url, rx)
}

fn outcome(bytes: Vec<u8>, config: Config) -> (Vec<Event>, Option<u16>) {
    let (url, rx) = sending(bytes);
    let ws = common::connect_with_config(&url, config).unwrap();
    let events = until_close(&ws);
    check_contract(&events);
    (events, rx.recv_timeout(WAIT).unwrap())
}

#[test]
fn uncompressed_and_fragmented_messages_after_agreement_with_pings_between() {
    let mut deflater = Deflate::new(15, false);
    let text = json(3, 3000);
    let compressed = deflater.compress(text.as_bytes());
    let (a, b) = compressed.split_at(compressed.len() / 3);
    let (b, c) = b.split_at(b.len() / 2);
    let mut bytes = frame_rsv1(true, false, 0x1, b"plain, as Node's ws sends small ones");
    bytes.extend(frame_rsv1(false, true, 0x1, a));
    bytes.extend(frame_rsv1(true, false, 0x9, b"ping one"));
    bytes.extend(frame_rsv1(false, false, 0x0, b));
    bytes.extend(frame_rsv1(true, false, 0x9, b"ping two"));
    bytes.extend(frame_rsv1(true, false, 0x0, c));
    // The context carries over into the next message.
    bytes.extend(frame_rsv1(
        true,
        true,
        0x2,
        &deflater.compress(text.as_bytes()),
    ));
    bytes.extend(frame_rsv1(true, false, 0x8, &1000u16.to_be_bytes()));

    let (tx, rx) = flume::unbounded();
    let url = deflate::server(Some("permessage-deflate"), move |mut stream, _| {
        stream.write_all(&bytes).unwrap();
        while let Some(frame) = read_frame(&mut stream) {
            let done = frame.opcode == 0x8;
            tx.send(frame).unwrap();
            if done {
                break;
            }
        }
    });
    let ws = common::connect_with_config(&url, config().build().unwrap()).unwrap();
    let events = until_close(&ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1000, true));
    let got = messages(&events);
    assert_eq!(got.len(), 3, "{events:?}");
    assert_eq!(
        got[0].as_text(),
        Some("plain, as Node's ws sends small ones")
    );
    assert_eq!(got[1].as_text(), Some(text.as_str()));
    assert_eq!(got[2].as_bytes(), text.as_bytes());
    // The server sent everything before it closed TCP, which the clean close waited for.
    let pongs: Vec<Vec<u8>> = rx
        .try_iter()
        .filter(|frame| frame.opcode == 0xA)
        .map(|frame| frame.payload)
        .collect();
    assert_eq!(pongs, [b"ping one".to_vec(), b"ping two".to_vec()]);
}

#[test]
fn a_decompression_bomb_fails_with_1009_without_inflating_it_all() {
    let zeros = vec![0u8; 64 << 20];
    let bomb = Deflate::new(15, false).compress(&zeros);
    assert!(bomb.len() < 100_000);
    let config = config()
        .max_message_size(1 << 20)
        .max_frame_size(1 << 20)
        .build()
        .unwrap();
    let (events, code) = outcome(frame_rsv1(true, true, 0x2, &bomb), config);
    assert_eq!(code, Some(1009));
    assert!(
        matches!(error_of(&events), Some(Error::Protocol(_))),
        "{events:?}"
    );
    assert!(messages(&events).is_empty());
    // Fragmented, the bomb is counted across frames.
    let config = nwebsocket::Config::builder()
        .max_message_size(1 << 20)
        .max_frame_size(1 << 20)
        .build()
        .unwrap();
    let (a, b) = bomb.split_at(bomb.len() / 2);
    let mut bytes = frame_rsv1(false, true, 0x2, a);
    bytes.extend(frame_rsv1(true, false, 0x0, b));
    assert_eq!(outcome(bytes, config).1, Some(1009));
}

#[test]
fn corrupt_deflate_data_fails_with_1007() {
    let (events, code) = outcome(
        frame_rsv1(true, true, 0x1, &[0xff, 0xfe, 0xfd, 0x00, 0x13]),
        config().build().unwrap(),
    );
    assert_eq!(code, Some(1007));
    assert!(matches!(error_of(&events), Some(Error::Protocol(_))));
    // Valid deflate that inflates to invalid UTF-8 in a text message.
    let bad_text = Deflate::new(15, false).compress(b"ok \xff\xfe not text");
    let (_, code) = outcome(
        frame_rsv1(true, true, 0x1, &bad_text),
        config().build().unwrap(),
    );
    assert_eq!(code, Some(1007));
}

#[test]
fn rsv1_where_it_may_not_be_fails_with_1002() {
    let compressed = Deflate::new(15, false).compress(b"hello hello hello");
    let cases = [
        // On a control frame.
        frame_rsv1(true, true, 0x9, b"ping"),
        // On a continuation frame.
        [
            frame_rsv1(false, true, 0x1, &compressed),
            frame_rsv1(true, true, 0x0, b""),
        ]
        .concat(),
    ];
    for bytes in cases {
        let (events, code) = outcome(bytes, config().build().unwrap());
        assert_eq!(code, Some(1002), "{events:?}");
    }
    // Without agreement, RSV1 is a protocol error on any frame.
    let (tx, rx) = flume::unbounded();
    let url = deflate::server(None, move |mut stream, _| {
        stream
            .write_all(&frame_rsv1(true, true, 0x1, &compressed))
            .unwrap();
        let _ = tx.send(close_code(&mut stream));
    });
    let ws = common::connect(&url).unwrap();
    let events = until_close(&ws);
    check_contract(&events);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Some(1002));
}

#[test]
fn sends_made_while_a_large_message_is_compressed_keep_their_order() {
    let (url, rx) = echo("permessage-deflate", 15, 15, false);
    let ws = common::connect_with_config(&url, config().build().unwrap()).unwrap();
    expect_open(&ws);
    let sent: Vec<String> = (0..200)
        .map(|i| json(i, if i % 10 == 0 { 200_000 } else { 100 + i }))
        .collect();
    for text in &sent {
        ws.send(text.as_str()).unwrap();
    }
    for text in &sent {
        let Event::Message(got) = next(&ws) else {
            panic!("no message")
        };
        assert_eq!(got.as_text(), Some(text.as_str()));
        assert_eq!(rx.recv_timeout(WAIT).unwrap().1, text.as_bytes());
    }
    ws.close().unwrap();
    check_contract(&until_close(&ws));
}
