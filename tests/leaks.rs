//! Opening and closing 1,000 connections leaves no thread and no file descriptor behind.
//! (Its own test binary, so that no other test's threads or sockets blur the counts.)
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;

use std::net::TcpListener;

use common::*;
use nwebsocket::{Client, Event};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// A server that serves `count` connections one after the other, echoing, and then exits.
fn sequential_echo_server(count: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = spawn(move || {
        for _ in 0..count {
            let (stream, _) = listener.accept().unwrap();
            echo(tungstenite::accept(stream).unwrap());
        }
    });
    (url, server)
}

#[test]
fn a_thousand_connections_leave_nothing_behind() {
    const COUNT: usize = 1000;
    const DROPPED: usize = 100;
    // Warm up what is created once per process (the TLS config is not used here; the
    // resolver is not either), then take the baseline.
    let fds_before = open_fds();
    let threads_before = thread_names().len();

    let (url, server) = sequential_echo_server(COUNT + DROPPED);
    for i in 0..COUNT {
        let ws = Client::connect(&url).unwrap();
        expect_open(&ws);
        ws.send_text(i.to_string()).unwrap();
        assert!(matches!(next(&ws), Event::Message(m) if m.as_text() == Some(&*i.to_string())));
        ws.close().unwrap();
        assert!(check_contract(&until_close(&ws)).was_clean);
        assert!(
            ws.wait_closed(WAIT),
            "I/O thread of connection {i} still running"
        );
    }
    // Dropped without close or wait: the threads end by themselves.
    for _ in 0..DROPPED {
        let ws = Client::connect(&url).unwrap();
        expect_open(&ws);
    }
    server.join().unwrap();

    // The dropped clients' threads exit right after closing their sockets, which the server
    // has seen; a dropped handle leaves no event to wait on, so look until they are gone.
    wait_for("every nwebsocket thread gone", || {
        !thread_names().iter().any(|n| n.starts_with("nwebsocket"))
    });
    assert_eq!(thread_names().len(), threads_before, "{:?}", thread_names());
    assert_eq!(open_fds(), fds_before, "file descriptors leaked");
}
