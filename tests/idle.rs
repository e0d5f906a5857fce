//! Waiting costs nothing: the I/O thread uses no CPU and does not wake up while a connection
//! is idle (also right after a long burst of sends), while a handshake is pending with sends
//! queued behind it, or while reading is paused by a full event queue; with keepalive on, it
//! wakes once per interval (and once for the pong). (Its own binary: it finds the I/O thread
//! by name.)
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use common::*;
use nwebsocket::{Client, Config};

/// CPU clock ticks and voluntary context switches of each `nwebsocket-io` thread, by id.
fn io_thread_usage() -> HashMap<String, (u64, u64)> {
    let mut usage = HashMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        let (Ok(stat), Ok(status)) = (
            std::fs::read_to_string(path.join("stat")),
            std::fs::read_to_string(path.join("status")),
        ) else {
            continue; // the thread has just exited
        };
        if comm.trim() != "nwebsocket-io" {
            continue;
        }
        // Fields after the command name, which is in parentheses: utime and stime are the
        // 12th and 13th of them.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("voluntary_ctxt_switches"))
            .unwrap();
        let switches = line
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap();
        let tid = path.file_name().unwrap().to_string_lossy().into_owned();
        usage.insert(tid, (ticks, switches));
    }
    usage
}

/// Asserts that the I/O threads alive throughout stay asleep for a while. The sleep is the
/// measuring window, not a synchronisation.
fn assert_asleep(what: &str) {
    // Measure only once the I/O thread has finished what it had to do (the handshake, the
    // queued sends) and sleeps: the window must not include that work.
    wait_until_io_asleep();
    let before = io_thread_usage();
    std::thread::sleep(Duration::from_millis(300));
    let after = io_thread_usage();
    let mut measured = 0;
    for (tid, (ticks, switches)) in &after {
        let Some((ticks_before, switches_before)) = before.get(tid) else {
            continue;
        };
        measured += 1;
        assert!(
            ticks - ticks_before <= 1,
            "{what}: {} CPU ticks",
            ticks - ticks_before
        );
        assert!(
            switches - switches_before <= 1,
            "{what}: {} wake-ups",
            switches - switches_before
        );
    }
    assert!(measured > 0, "{what}: no I/O thread found");
}

/// Runs the tests of this binary one at a time: each measures every I/O thread of the process.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

#[test]
fn waiting_costs_no_cpu_and_no_wake_ups() {
    let _one_at_a_time = one_at_a_time();
    // An open connection with nothing to do.
    let ws = Client::connect(&echo_server()).unwrap();
    expect_open(&ws);
    ws.send_text("warm up").unwrap();
    next(&ws);
    assert_asleep("idle connection");
    end(ws);

    // After a long burst of sends, which gathered into larger writes with a short timer. The
    // server reads everything and never answers the close.
    let url = raw_ws_server(|mut stream: TcpStream| {
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    });
    let ws = open_with_close_timeout(&url, Duration::from_millis(300));
    for _ in 0..20_000 {
        ws.send_binary(vec![0x5a; 512]).unwrap();
    }
    assert!(ws.wait_buffered_below(1, WAIT).unwrap());
    assert_asleep("after a long burst of sends");
    end(ws);

    // A handshake that is never answered, with sends queued behind it.
    let (accepted_tx, accepted_rx) = flume::bounded(1);
    let port = tcp_server(move |mut stream: TcpStream| {
        let _ = accepted_tx.send(());
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    });
    let ws = Client::connect(&format!("ws://127.0.0.1:{port}/")).unwrap();
    for i in 0..10 {
        ws.send_text(i.to_string()).unwrap();
    }
    accepted_rx.recv_timeout(WAIT).unwrap();
    assert_asleep("pending handshake with queued sends");
    end(ws);

    // Reading paused: the queue is full and nobody takes from it.
    let (sent_tx, sent_rx) = flume::bounded(1);
    let url = raw_ws_server(move |mut stream: TcpStream| {
        for i in 0..64u32 {
            stream.write_all(&frame(true, 2, &i.to_be_bytes())).unwrap();
        }
        let _ = sent_tx.send(());
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    });
    let config = Config::builder()
        .event_queue_capacity(4)
        .close_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let ws = Client::connect_with_config(&url, config).unwrap();
    sent_rx.recv_timeout(WAIT).unwrap();
    expect_open(&ws);
    assert_asleep("reading paused by a full queue");
    end(ws);
}

#[test]
fn keepalive_costs_a_wake_up_per_interval() {
    let _one_at_a_time = one_at_a_time();
    let interval = Duration::from_millis(100);
    let config = Config::builder().ping_interval(interval).build().unwrap();
    let ws = Client::connect_with_config(&echo_server(), config).unwrap();
    expect_open(&ws);
    wait_until_io_asleep();
    let before = io_thread_usage();
    // The measuring window: ten intervals.
    std::thread::sleep(interval * 10);
    let after = io_thread_usage();
    let (tid, (_, switches_after)) = after.iter().next().unwrap();
    let (_, switches_before) = before[tid];
    let wake_ups = switches_after - switches_before;
    // One timer wake-up to send each ping, and one to read its pong.
    assert!(
        (8..=24).contains(&wake_ups),
        "{wake_ups} wake-ups in ten intervals"
    );
    end(ws);
}

#[test]
fn keepalive_does_not_spin_while_the_close_handshake_waits() {
    let _one_at_a_time = one_at_a_time();
    // The server never answers the close frame: the client waits out its close timeout with a
    // ping long overdue, which it may not send after its close frame.
    let url = raw_ws_server(|stream: TcpStream| {
        let _ = std::io::copy(&mut &stream, &mut std::io::sink());
    });
    let config = Config::builder()
        .ping_interval(Duration::from_millis(20))
        .close_timeout(Duration::from_millis(600))
        .build()
        .unwrap();
    let ws = Client::connect_with_config(&url, config).unwrap();
    expect_open(&ws);
    wait_until_io_asleep();
    let before = io_thread_usage();
    ws.close().unwrap();
    // The measuring window: most of the close timeout.
    std::thread::sleep(Duration::from_millis(400));
    let after = io_thread_usage();
    let (tid, (ticks_after, _)) = after.iter().next().unwrap();
    let ticks = ticks_after - before[tid].0;
    // A spinning I/O thread would burn the whole window: 40 ticks at 100 Hz.
    assert!(ticks <= 2, "{ticks} CPU ticks while waiting for the close");
    assert_eq!(check_contract(&until_close(&ws)).code, 1006);
    assert!(ws.wait_closed(WAIT));
}

#[test]
fn sends_left_queued_by_a_server_close_do_not_spin_the_close_handshake() {
    let _one_at_a_time = one_at_a_time();
    // The server reads, then sends its close frame and keeps TCP open (and reads on): the
    // client's reply goes out and it waits for the server's TCP close, while a sender on
    // another thread is still adding messages that this connection will not take.
    let (closed_tx, closed_rx) = flume::bounded::<()>(1);
    let url = raw_ws_server(move |mut stream: TcpStream| {
        let mut buf = vec![0u8; 1 << 20];
        let _ = std::io::Read::read(&mut stream, &mut buf);
        stream
            .write_all(&frame(true, 0x8, &1000u16.to_be_bytes()))
            .unwrap();
        closed_tx.send(()).unwrap();
        let _ = std::io::copy(&mut &stream, &mut std::io::sink());
    });
    let ws = open_with_close_timeout(&url, Duration::from_millis(1500));
    let sender = ws.sender();
    let sending = spawn(move || {
        // Until the connection refuses: the last sends wait in the queue, unsent.
        while sender.send_binary(vec![1u8; 512]).is_ok() {}
    });
    closed_rx.recv_timeout(WAIT).unwrap();
    sending.join().unwrap();
    let before = io_thread_usage();
    // The measuring window: most of the close timeout.
    std::thread::sleep(Duration::from_millis(1000));
    let after = io_thread_usage();
    let (tid, (ticks_after, _)) = after.iter().next().unwrap();
    let ticks = ticks_after - before[tid].0;
    assert!(
        ticks <= 2,
        "{ticks} CPU ticks while waiting for the server's TCP close"
    );
    check_contract(&until_close(&ws));
    assert!(ws.wait_closed(WAIT));
}

/// A client of `url`, open, that waits at most `close_timeout` for the server's close frame.
fn open_with_close_timeout(url: &str, close_timeout: Duration) -> Client {
    let config = Config::builder()
        .close_timeout(close_timeout)
        .build()
        .unwrap();
    let ws = Client::connect_with_config(url, config).unwrap();
    expect_open(&ws);
    ws
}

/// Closes and waits for the I/O thread to be gone, so that the next scenario sees only its own.
fn end(ws: Client) {
    ws.close().unwrap();
    assert!(ws.wait_closed(WAIT), "the I/O thread is still running");
}
