//! Messages both ways against loopback servers: echo, order, size, queueing while connecting,
//! backpressure from a full event queue, and `buffered_amount`.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::time::Duration;

use common::*;
use nwebsocket::{Event, Message};

#[test]
fn echoes_text_and_binary() {
    let ws = common::connect(&echo_server()).unwrap();
    expect_open(&ws);
    ws.send_text("héllo").unwrap();
    ws.send_binary(vec![0u8, 1, 2, 255]).unwrap();
    ws.send(Message::from("")).unwrap();
    let got: Vec<Message> = (0..3)
        .map(|_| match next(&ws) {
            Event::Message(m) => m,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got[0].as_text(), Some("héllo"));
    assert_eq!(got[1], Message::Binary(vec![0u8, 1, 2, 255].into()));
    assert_eq!(got[2].as_text(), Some(""));
    ws.close().unwrap();
    let close = check_contract(&until_close(&ws));
    assert!(close.was_clean);
    assert_eq!(close.code, 1000);
}

#[test]
fn ten_thousand_messages_arrive_complete_and_in_order() {
    let ws = common::connect(&echo_server()).unwrap();
    for i in 0..10_000 {
        ws.send_text(format!("message {i}")).unwrap();
    }
    expect_open(&ws);
    for i in 0..10_000 {
        match next(&ws) {
            Event::Message(m) => assert_eq!(m.as_text(), Some(format!("message {i}").as_str())),
            other => panic!("{other:?}"),
        }
    }
    ws.close().unwrap();
    assert!(check_contract(&until_close(&ws)).was_clean);
}

#[test]
fn sixteen_mib_message_round_trips() {
    let payload: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
    let ws = common::connect(&echo_server()).unwrap();
    expect_open(&ws);
    ws.send_binary(payload.clone()).unwrap();
    match next(&ws) {
        Event::Message(Message::Binary(bytes)) => assert!(bytes == payload, "payload differs"),
        other => panic!("{other:?}"),
    }
    ws.close().unwrap();
    assert!(check_contract(&until_close(&ws)).was_clean);
}

#[test]
fn sends_made_while_connecting_are_written_in_order_after_the_handshake() {
    let (tx, rx) = flume::unbounded();
    let url = ws_server(move |mut ws| {
        while let Ok(msg) = ws.read() {
            if msg.is_text() {
                tx.send(msg.into_text().unwrap().to_string()).unwrap();
            }
        }
    });
    let ws = common::connect(&url).unwrap();
    for i in 0..100 {
        ws.send_text(i.to_string()).unwrap();
    }
    for i in 0..100 {
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), i.to_string());
    }
    expect_open(&ws);
}

#[test]
fn buffered_amount_counts_unwritten_bytes_and_drains() {
    let (go_tx, go_rx) = flume::bounded::<()>(1);
    let url = ws_server(move |ws| {
        // Hold the handshake's socket without reading until told to.
        go_rx.recv().unwrap();
        echo(ws);
    });
    let ws = common::connect(&url).unwrap();
    expect_open(&ws);
    // 32 MiB do not fit into the socket buffers of an idle reader.
    for _ in 0..32 {
        ws.send_binary(vec![7u8; 1 << 20]).unwrap();
    }
    assert!(ws.buffered_amount() > 0);
    go_tx.send(()).unwrap();
    for _ in 0..32 {
        assert!(matches!(next(&ws), Event::Message(m) if m.len() == 1 << 20));
    }
    assert_eq!(ws.buffered_amount(), 0);
}

#[test]
fn try_recv_tells_empty_from_ended() {
    let ws = common::connect(&echo_server()).unwrap();
    expect_open(&ws);
    assert_eq!(ws.try_recv().unwrap_err(), nwebsocket::TryRecvError::Empty);
    assert_eq!(ws.try_events().count(), 0);
    ws.close().unwrap();
    until_close(&ws);
    assert_eq!(
        ws.try_recv().unwrap_err(),
        nwebsocket::TryRecvError::Disconnected
    );
}

#[test]
fn try_events_drains_without_blocking() {
    let ws = common::connect(&echo_server()).unwrap();
    expect_open(&ws);
    for i in 0..10 {
        ws.send_text(i.to_string()).unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 10 {
        match ws.recv_timeout(WAIT).unwrap() {
            Event::Message(m) => got.push(m.as_text().unwrap().to_owned()),
            other => panic!("{other:?}"),
        }
        got.extend(ws.try_events().map(|e| match e {
            Event::Message(m) => m.as_text().unwrap().to_owned(),
            other => panic!("{other:?}"),
        }));
    }
    assert_eq!(got, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[test]
fn send_handles_work_from_other_threads() {
    let ws = common::connect(&echo_server()).unwrap();
    expect_open(&ws);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let sender = ws.sender();
            spawn(move || {
                for i in 0..250 {
                    sender.send_text(format!("{t}:{i}")).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut last = [None::<u32>; 4];
    for _ in 0..1000 {
        let Event::Message(m) = next(&ws) else {
            panic!()
        };
        let (t, i) = m.as_text().unwrap().split_once(':').unwrap();
        let (t, i): (usize, u32) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(last[t].map_or(0, |l| l + 1), i, "thread {t} out of order");
        last[t] = Some(i);
    }
    let _ = Duration::ZERO;
}
