//! Every failure mode ends the documented way: the right `Error`, then exactly one `Close`
//! with the right code and `was_clean`, then the end of the stream, with the I/O thread gone
//! (`wait_closed`) and the socket closed (the server sees EOF).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::*;
use nwebsocket::{Client, Config, Error, Event, TimeoutKind};

/// Runs `client` to its end and checks the contract, the thread and the close code.
fn ends_uncleanly(ws: &Client) -> Vec<Event> {
    let events = until_close(ws);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false), "{events:?}");
    assert!(ws.wait_closed(WAIT), "the I/O thread is still running");
    events
}

/// A raw server that answers the upgrade request with `response`, then reports EOF.
fn answering(response: Vec<u8>) -> (String, flume::Receiver<()>) {
    let (eof_tx, eof_rx) = flume::unbounded();
    let port = tcp_server(move |mut stream: TcpStream| {
        if read_request(&mut stream).is_some() {
            let _ = stream.write_all(&response);
        }
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
        let _ = eof_tx.send(());
    });
    (format!("ws://127.0.0.1:{port}/"), eof_rx)
}

/// A raw server that completes the handshake, sends `bytes`, then reads until EOF and
/// reports it.
fn sending(bytes: Vec<u8>) -> (String, flume::Receiver<()>) {
    let (eof_tx, eof_rx) = flume::unbounded();
    let url = raw_ws_server(move |mut stream: TcpStream| {
        let _ = stream.write_all(&bytes);
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
        let _ = eof_tx.send(());
    });
    (url, eof_rx)
}

#[test]
fn unresolvable_host() {
    // glibc refuses this name without asking a DNS server, so no query leaves the machine.
    let ws = common::connect("ws://bad!host.invalid:80/").unwrap();
    let events = ends_uncleanly(&ws);
    let Some(Error::Connect(source)) = error_of(&events) else {
        panic!("{events:?}")
    };
    assert!(source.to_string().contains("bad!host.invalid"), "{source}");
}

#[test]
fn handshake_statuses_are_kept() {
    for status in [400u16, 404, 500] {
        let response =
            format!("HTTP/1.1 {status} Nope\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbody");
        let (url, eof) = answering(response.into_bytes());
        let ws = common::connect(&url).unwrap();
        let events = ends_uncleanly(&ws);
        match error_of(&events) {
            Some(Error::Rejected {
                status: got,
                headers,
                body,
            }) => {
                assert_eq!(*got, status);
                assert_eq!(headers["retry-after"], "7");
                assert_eq!(&body[..], b"body");
            }
            other => panic!("{status}: {other:?}"),
        }
        eof.recv_timeout(WAIT).unwrap();
    }
}

#[test]
fn handshake_answered_with_garbage() {
    let (url, eof) = answering(b"\x16\x03\x01 this is not HTTP at all\r\n\r\n".to_vec());
    let ws = common::connect(&url).unwrap();
    let events = ends_uncleanly(&ws);
    assert!(
        matches!(error_of(&events), Some(Error::Handshake(_))),
        "{events:?}"
    );
    eof.recv_timeout(WAIT).unwrap();
}

#[test]
fn handshake_with_a_wrong_accept_key() {
    let (url, eof) = answering(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"
            .to_vec(),
    );
    let ws = common::connect(&url).unwrap();
    let events = ends_uncleanly(&ws);
    let Some(Error::Handshake(source)) = error_of(&events) else {
        panic!("{events:?}")
    };
    assert!(source.to_string().contains("Accept"), "{source}");
    eof.recv_timeout(WAIT).unwrap();
}

#[test]
fn handshake_cut_short() {
    let (url, _) = answering(b"HTTP/1.1 101 Switching".to_vec());
    // The server sends half a status line and keeps the socket open: the connect timeout ends it.
    let config = Config::builder()
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let ws = common::connect_with_config(&url, config).unwrap();
    let events = ends_uncleanly(&ws);
    assert!(
        matches!(
            error_of(&events),
            Some(Error::Timeout {
                kind: TimeoutKind::Connect,
                ..
            })
        ),
        "{events:?}"
    );
}

#[test]
fn server_closes_tcp_mid_message() {
    let url = raw_ws_server(|mut stream: TcpStream| {
        let whole = frame(true, 0x2, &[7u8; 1000]);
        let _ = stream.write_all(&whole[..500]);
        // Then close: the message is cut in half.
    });
    let ws = common::connect(&url).unwrap();
    let events = ends_uncleanly(&ws);
    assert!(messages(&events).is_empty());
    match error_of(&events) {
        Some(Error::Io(err)) => assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tcp_reset() {
    let (got_tx, got_rx) = flume::bounded(1);
    let url = raw_ws_server(move |mut stream: TcpStream| {
        // Wait for the client's message and close without reading all of it: the kernel
        // answers with a reset.
        let mut one = [0u8; 1];
        let _ = stream.read_exact(&mut one);
        let _ = got_tx.send(());
        drop(stream);
    });
    let ws = common::connect(&url).unwrap();
    expect_open(&ws);
    ws.send_binary(vec![0u8; 4096]).unwrap();
    got_rx.recv_timeout(WAIT).unwrap();
    let events = ends_uncleanly(&ws);
    let Some(Error::Io(err)) = error_of(&events) else {
        panic!("{events:?}")
    };
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
        ),
        "{err:?}"
    );
}

#[test]
fn rsv_bits_fail_with_protocol_error() {
    let mut bytes = frame(true, 0x1, b"rsv");
    bytes[0] |= 0x40;
    let (url, eof) = sending(bytes);
    let ws = common::connect(&url).unwrap();
    let events = ends_uncleanly(&ws);
    assert!(matches!(error_of(&events), Some(Error::Protocol(_))));
    eof.recv_timeout(WAIT).unwrap();
}

#[test]
fn fragmented_control_frame_fails_with_protocol_error() {
    let (url, eof) = sending(frame(false, 0x9, b"ping"));
    let ws = common::connect(&url).unwrap();
    let events = ends_uncleanly(&ws);
    assert!(matches!(error_of(&events), Some(Error::Protocol(_))));
    eof.recv_timeout(WAIT).unwrap();
}

#[test]
fn reserved_opcode_fails_with_protocol_error() {
    let (url, eof) = sending(frame(true, 0xb, b""));
    let ws = common::connect(&url).unwrap();
    let events = ends_uncleanly(&ws);
    assert!(matches!(error_of(&events), Some(Error::Protocol(_))));
    eof.recv_timeout(WAIT).unwrap();
}

#[test]
fn server_half_closes_and_goes_silent() {
    let (eof_tx, eof_rx) = flume::bounded(1);
    let url = raw_ws_server(move |mut stream: TcpStream| {
        let _ = stream.shutdown(Shutdown::Write);
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
        let _ = eof_tx.send(());
    });
    let ws = common::connect(&url).unwrap();
    let events = ends_uncleanly(&ws);
    assert!(
        matches!(error_of(&events), Some(Error::Io(_))),
        "{events:?}"
    );
    eof_rx
        .recv_timeout(WAIT)
        .expect("the client kept its socket open");
}

#[test]
fn close_while_a_large_send_is_being_written() {
    let (go_tx, go_rx) = flume::bounded::<()>(1);
    let (got_tx, got_rx) = flume::unbounded();
    let url = ws_server(move |mut ws| {
        go_rx.recv().unwrap();
        while let Ok(msg) = ws.read() {
            let _ = got_tx.send(msg);
        }
    });
    let ws = common::connect(&url).unwrap();
    expect_open(&ws);
    // 24 MiB cannot leave before the server reads (each message under the server's 16 MiB
    // frame limit).
    ws.send_binary(vec![1u8; 12 << 20]).unwrap();
    ws.send_binary(vec![2u8; 12 << 20]).unwrap();
    ws.close_with(4000, "after the big ones").unwrap();
    assert!(ws.buffered_amount() > 0);
    go_tx.send(()).unwrap();
    for fill in [1u8, 2] {
        match got_rx.recv_timeout(WAIT).unwrap() {
            tungstenite::Message::Binary(b) => assert!(b.len() == 12 << 20 && b[0] == fill),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        got_rx.recv_timeout(WAIT).unwrap(),
        tungstenite::Message::Close(_)
    ));
    let close = check_contract(&until_close(&ws));
    assert_eq!((close.code, close.was_clean), (4000, true));
    assert!(ws.wait_closed(WAIT));
}
