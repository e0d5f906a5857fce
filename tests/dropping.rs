//! Dropping the last handle, in every state, closes the connection and ends the I/O thread:
//! the server sees its connection end, and no `nwebsocket-io` thread is left. (Its own binary,
//! one test at a time: it counts the I/O threads by name.)
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::sync::{Mutex, MutexGuard, PoisonError};

use common::*;
use nwebsocket::{Client, Config};

/// Runs the tests of this binary one at a time, so that each sees only its own I/O thread.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The dropped client's I/O thread is gone. (A dropped handle leaves no event to wait on.)
fn thread_ends() {
    wait_for("no nwebsocket-io thread left", || io_threads().is_empty());
}

/// A server that answers the close handshake only when told, and reports its end.
fn slow_closing_server() -> (String, flume::Sender<()>, flume::Receiver<()>) {
    let (go_tx, go_rx) = flume::unbounded::<()>();
    let (end_tx, end_rx) = flume::unbounded();
    let url = ws_server(move |mut ws| {
        let _ = go_rx.recv();
        while ws.read().is_ok() {}
        let _ = end_tx.send(());
    });
    (url, go_tx, end_rx)
}

#[test]
fn handle_dropped_while_open_closes_and_ends_the_thread() {
    let _one_at_a_time = one_at_a_time();
    let (url, go, end) = slow_closing_server();
    let ws = Client::connect(&url).unwrap();
    expect_open(&ws);
    drop(ws);
    go.send(()).unwrap();
    end.recv_timeout(WAIT)
        .expect("the server's connection did not end");
    thread_ends();
}

#[test]
fn handle_dropped_while_closing() {
    let _one_at_a_time = one_at_a_time();
    let (url, go, end) = slow_closing_server();
    let ws = Client::connect(&url).unwrap();
    expect_open(&ws);
    ws.close().unwrap();
    drop(ws);
    go.send(()).unwrap();
    end.recv_timeout(WAIT)
        .expect("the server's connection did not end");
    thread_ends();
}

#[test]
fn handle_dropped_after_close() {
    let _one_at_a_time = one_at_a_time();
    let (url, go, end) = slow_closing_server();
    let ws = Client::connect(&url).unwrap();
    expect_open(&ws);
    ws.close().unwrap();
    go.send(()).unwrap();
    until_close(&ws);
    assert!(ws.wait_closed(WAIT));
    drop(ws);
    end.recv_timeout(WAIT).unwrap();
    thread_ends();
}

#[test]
fn handle_dropped_with_unread_events_does_not_hang_the_thread() {
    let _one_at_a_time = one_at_a_time();
    // The server floods; the client never reads and is dropped with a full queue.
    let (end_tx, end_rx) = flume::bounded(1);
    let url = ws_server(move |mut ws| {
        for i in 0..100_000u32 {
            if ws
                .send(tungstenite::Message::Binary(
                    i.to_be_bytes().to_vec().into(),
                ))
                .is_err()
            {
                break;
            }
        }
        while ws.read().is_ok() {}
        let _ = end_tx.send(());
    });
    let config = Config::builder().event_queue_capacity(8).build().unwrap();
    let ws = Client::connect_with_config(&url, config).unwrap();
    expect_open(&ws);
    drop(ws);
    end_rx
        .recv_timeout(WAIT)
        .expect("the connection was not closed");
    thread_ends();
}
