//! Many connections on a few shared I/O threads: opens N connections on one `IoThreads`, has
//! each send a message and wait for its echo, then closes them all, and prints one JSON line:
//! connections, threads, open files, RSS per connection, and how long connecting, echoing
//! (p50 and p99 per connection) and closing took.
//!
//! ```text
//! cargo run --release --example fan_in                        # 100 connections, 2 threads
//! cargo run --release --example fan_in -- --connections 2000 --threads 1
//! cargo run --release --example fan_in -- --serve 127.0.0.1:9001   # only the echo server
//! cargo run --release --example fan_in -- --connections 10000 ws://127.0.0.1:9001/
//! ```
//!
//! Without a URL it talks to an echo server embedded in this process (a thread per
//! connection); with thousands of connections, run the server in another process with
//! `--serve`, so that each side has its own limit on open files. It raises its own soft limit
//! to the hard one where it can (`prlimit`).

#![allow(clippy::print_stdout, reason = "an example prints what it does")]

#[path = "support/echo_server.rs"]
mod echo_server;

use std::time::{Duration, Instant};

use nwebsocket::{Client, Event, IoThreads};

/// How long one connection may take for any step before the run fails.
const WAIT: Duration = Duration::from_secs(60);

struct Args {
    connections: usize,
    threads: usize,
    url: Option<String>,
    serve: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        connections: 100,
        threads: 2,
        url: None,
        serve: None,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut value = |name: &str| given.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--connections" => {
                args.connections = value("--connections")?
                    .parse()
                    .map_err(|e| format!("{e}"))?;
            }
            "--threads" => {
                args.threads = value("--threads")?.parse().map_err(|e| format!("{e}"))?;
            }
            "--serve" => args.serve = Some(value("--serve")?),
            url if url.starts_with("ws://") || url.starts_with("wss://") => {
                args.url = Some(url.to_owned());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    raise_open_files_limit();
    if let Some(addr) = args.serve {
        let url = echo_server::serve(&addr)?;
        eprintln!("echo server on {url} (Ctrl-C to stop)");
        loop {
            std::thread::park();
        }
    }
    // With the server embedded, its threads' memory counts in RSS too: measure memory with
    // `--serve` in another process.
    let (url, server) = match args.url {
        Some(url) => (url, "external"),
        None => (echo_server::start()?, "embedded"),
    };
    let rss_before = rss_kib();
    let files_before = open_files();
    let io = IoThreads::new(args.threads)?;

    let started = Instant::now();
    let clients = (0..args.connections)
        .map(|_| io.connect(&url))
        .collect::<Result<Vec<Client>, _>>()?;
    for ws in &clients {
        expect(ws, |event| matches!(event, Event::Open(_)), "Open")?;
    }
    let connect_all = started.elapsed();
    let rss_per_connection = rss_kib().saturating_sub(rss_before) as f64 / clients.len() as f64;
    let files = open_files() - files_before;

    let echo_started = Instant::now();
    let mut sent = Vec::with_capacity(clients.len());
    for (i, ws) in clients.iter().enumerate() {
        ws.send_text(format!("hello from {i}"))?;
        sent.push(Instant::now());
    }
    let mut round_trips = Vec::with_capacity(clients.len());
    for (ws, sent) in clients.iter().zip(&sent) {
        expect(ws, |event| matches!(event, Event::Message(_)), "the echo")?;
        round_trips.push(sent.elapsed());
    }
    let echo_all = echo_started.elapsed();
    round_trips.sort();
    let percentile = |p: f64| round_trips[((round_trips.len() - 1) as f64 * p) as usize];

    let close_started = Instant::now();
    for ws in &clients {
        ws.close()?;
    }
    let mut clean = 0;
    for ws in &clients {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match ws.recv_timeout(left)? {
                Event::Close(close) => {
                    clean += usize::from(close.was_clean);
                    break;
                }
                Event::Error(err) => eprintln!("error: {err}"),
                _ => {}
            }
        }
    }
    let close_all = close_started.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{{\"server\": \"{server}\", \"connections\": {}, \"threads\": {}, \"fds\": {}, \"rss_per_connection_kib\": {:.1}, \
         \"connect_all_ms\": {:.1}, \"echo_all_ms\": {:.1}, \"echo_p50_ms\": {:.2}, \
         \"echo_p99_ms\": {:.2}, \"close_all_ms\": {:.1}, \"closed_clean\": {}}}",
        clients.len(),
        io.threads(),
        files,
        rss_per_connection,
        ms(connect_all),
        ms(echo_all),
        ms(percentile(0.5)),
        ms(percentile(0.99)),
        ms(close_all),
        clean,
    );
    if clean != clients.len() {
        return Err(format!(
            "{} of {} closed uncleanly",
            clients.len() - clean,
            clients.len()
        )
        .into());
    }
    Ok(())
}

/// Takes events from `ws` until one matches; an Error or Close first fails the run.
fn expect(ws: &Client, wanted: impl Fn(&Event) -> bool, what: &str) -> Result<(), String> {
    match ws.recv_timeout(WAIT) {
        Ok(event) if wanted(&event) => Ok(()),
        Ok(other) => Err(format!("expected {what}, got {other:?}")),
        Err(err) => Err(format!("expected {what}: {err}")),
    }
}

/// This process's resident memory, in KiB (Linux; 0 elsewhere).
fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// This process's open file descriptors (Linux; 0 elsewhere).
fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// Raises the soft limit on open files to the hard one with `prlimit`, if it is there.
fn raise_open_files_limit() {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let Some(line) = limits.lines().find(|l| l.starts_with("Max open files")) else {
        return;
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    if let [.., soft, hard, _] = fields.as_slice() {
        if soft != hard {
            let _ = std::process::Command::new("prlimit")
                .arg(format!("--pid={}", std::process::id()))
                .arg(format!("--nofile={hard}:{hard}"))
                .status();
        }
    }
}
