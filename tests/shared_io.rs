//! Many connections on a few shared I/O threads (`IoThreads`): every event stream stays right
//! at 2,000 connections on 2 threads, a flood does not starve a quiet neighbour, a panic ends
//! one connection only, the timers of hundreds of connections fire, hundreds reconnect, idle
//! connections cost no wake-ups, and dropping the `IoThreads` ends nothing.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

mod common;
#[path = "tls/servers.rs"]
mod servers;

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::restartable::RestartableServer;
use common::{
    WAIT, check_contract, echo_server, error_of, expect_open, frame, next, raw_ws_server,
    until_close, wait_for,
};
use nwebsocket::{Client, Config, Error, Event, IoThreads, Message, TimeoutKind};

/// Held by each test: they count this process's shared threads, descriptors and wake-ups,
/// so they run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    let guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // A test before may have dropped clients still closing (at most the 5 s close timeout):
    // their thread exits once they have.
    wait_for("the shared threads of the test before gone", || {
        shared_io_threads().is_empty()
    });
    guard
}

/// The ids of this process's shared I/O threads (`nwebsocket-io-N`).
fn shared_io_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let path = task.ok()?.path();
            let comm = std::fs::read_to_string(path.join("comm")).ok()?;
            comm.trim()
                .starts_with("nwebsocket-io-")
                .then(|| path.file_name().unwrap().to_string_lossy().into_owned())
        })
        .collect()
}

/// The voluntary and involuntary context switches of thread `tid` so far: each wake-up of a
/// sleeping thread is one.
fn context_switches(tid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    let count = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Some(count("voluntary_ctxt_switches:") + count("nonvoluntary_ctxt_switches:"))
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Raises this process's soft limit on open files to the hard one: a test with thousands of
/// sockets on both ends must not depend on the shell's `ulimit -n`.
fn raise_open_files_limit() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (fields[3], fields[4]);
    if soft == hard {
        return;
    }
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={hard}:{hard}"))
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "could not raise the open files limit ({soft} of {hard}): run `ulimit -n {hard}` first"
    );
}

#[test]
fn two_thousand_connections_on_two_threads_each_get_their_own_events_in_order() {
    let _serial = one_at_a_time();
    raise_open_files_limit();
    const N: usize = 2000;
    let io = IoThreads::new(2).unwrap();
    let url = echo_server();
    let started = Instant::now();
    let clients: Vec<Client> = (0..N).map(|_| io.connect(&url).unwrap()).collect();
    assert_eq!(io.connections(), N);
    assert_eq!(
        shared_io_threads().len(),
        2,
        "two threads for {N} connections"
    );
    for (i, ws) in clients.iter().enumerate() {
        expect_open(ws);
        ws.send_text(format!("{i}-a")).unwrap();
        ws.send_binary(i.to_be_bytes().to_vec()).unwrap();
        ws.send_text(format!("{i}-b")).unwrap();
    }
    for (i, ws) in clients.iter().enumerate() {
        assert_eq!(next_message(ws), Message::from(format!("{i}-a")));
        assert_eq!(next_message(ws), Message::from(i.to_be_bytes().to_vec()));
        assert_eq!(next_message(ws), Message::from(format!("{i}-b")));
    }
    for ws in &clients {
        ws.close().unwrap();
    }
    for ws in &clients {
        let close = check_contract(&until_close(ws));
        assert_eq!((close.code, close.was_clean), (1000, true));
        assert!(ws.wait_closed(WAIT));
    }
    assert_eq!(io.connections(), 0);
    eprintln!(
        "{N} connections opened, echoed and closed in {:?}",
        started.elapsed()
    );
}

fn next_message(ws: &Client) -> Message {
    match next(ws) {
        Event::Message(message) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn a_flooding_connection_does_not_starve_a_quiet_one_on_the_same_thread() {
    let _serial = one_at_a_time();
    // The flood: 64-byte binary messages, framed before the clock starts and written in
    // large chunks, as fast as the socket takes them, for as long as the test lasts.
    let chunk: Arc<Vec<u8>> = Arc::new(
        std::iter::repeat_with(|| frame(true, 2, &[7; 64]))
            .take(4096)
            .flatten()
            .collect(),
    );
    let flood_url = raw_ws_server(move |mut stream| {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline && stream.write_all(&chunk).is_ok() {}
    });
    let io = IoThreads::new(1).unwrap();
    let flood = io.connect(&flood_url).unwrap();
    expect_open(&flood);
    // Its consumer keeps up, so the flood never pauses on a full queue.
    let (stop_tx, stop) = flume::bounded::<()>(1);
    let consumer = common::spawn(move || {
        let mut messages = 0u64;
        while stop.is_empty() {
            if let Ok(Event::Message(_)) = flood.recv_timeout(Duration::from_millis(100)) {
                messages += 1;
            }
        }
        messages
    });
    let quiet = io.connect(&echo_server()).unwrap();
    expect_open(&quiet);
    let mut round_trips = Vec::new();
    for i in 0..200u32 {
        let sent = Instant::now();
        quiet.send_binary(i.to_be_bytes().to_vec()).unwrap();
        assert_eq!(
            next_message(&quiet),
            Message::from(i.to_be_bytes().to_vec())
        );
        round_trips.push(sent.elapsed());
    }
    stop_tx.send(()).unwrap();
    let flooded = consumer.join().unwrap();
    round_trips.sort();
    let (median, worst) = (round_trips[100], round_trips[199]);
    eprintln!("flood: {flooded} messages; quiet round trips: median {median:?}, worst {worst:?}");
    assert!(flooded > 10_000, "the flood was on: {flooded} messages");
    assert!(
        median < Duration::from_millis(50),
        "median round trip {median:?}"
    );
    assert!(worst < Duration::from_secs(2), "worst round trip {worst:?}");
}

/// A certificate verifier that panics: a fault on the shared thread, while stepping one
/// connection's TLS handshake.
#[derive(Debug)]
struct PanickingVerifier;

impl rustls::client::danger::ServerCertVerifier for PanickingVerifier {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        panic!("injected fault: the verifier panics");
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        panic!("injected fault: the verifier panics");
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        panic!("injected fault: the verifier panics");
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[test]
fn a_panic_while_stepping_one_connection_ends_that_one_only() {
    let _serial = one_at_a_time();
    let ca = servers::Ca::new();
    let port = servers::tls_server("127.0.0.1:0", &ca.leaf(&["127.0.0.1"]), servers::PLAIN);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PanickingVerifier))
        .with_no_client_auth();
    let faulty = Config::builder()
        .unversioned_rustls_config(Arc::new(tls))
        .build()
        .unwrap();
    let io = IoThreads::new(1).unwrap();
    let url = echo_server();
    let neighbours: Vec<Client> = (0..20).map(|_| io.connect(&url).unwrap()).collect();
    for ws in &neighbours {
        expect_open(ws);
    }
    let victim = io
        .connect_with_config(&format!("wss://127.0.0.1:{port}/"), faulty)
        .unwrap();
    let events = until_close(&victim);
    let close = check_contract(&events);
    assert_eq!((close.code, close.was_clean), (1006, false));
    assert!(
        matches!(error_of(&events), Some(Error::Internal(why)) if why.contains("injected fault")),
        "{events:?}"
    );
    assert!(victim.wait_closed(WAIT));
    assert!(
        victim.send_text("after").is_err(),
        "sends end with the connection"
    );
    // The thread and every other connection on it go on.
    assert_eq!(shared_io_threads().len(), 1);
    for (i, ws) in neighbours.iter().enumerate() {
        ws.send_text(format!("still here {i}")).unwrap();
        assert_eq!(next_message(ws), Message::from(format!("still here {i}")));
    }
    let late = io.connect(&url).unwrap();
    expect_open(&late);
    for ws in neighbours.iter().chain([&late]) {
        ws.close().unwrap();
        assert!(check_contract(&until_close(ws)).was_clean);
    }
}

#[test]
fn keepalive_and_dead_peer_timers_of_500_connections_on_one_thread() {
    let _serial = one_at_a_time();
    raise_open_files_limit();
    // Half the servers answer pings (tungstenite does, while it reads); half go silent after
    // the handshake, while their kernel still acknowledges every byte.
    let live_url = echo_server();
    let (hold_tx, hold) = flume::unbounded();
    let silent_url = raw_ws_server(move |stream| {
        let _ = hold_tx.send(stream);
    });
    let config = Config::builder()
        .ping_interval(Duration::from_millis(100))
        .dead_peer_timeout(Duration::from_millis(600))
        .build()
        .unwrap();
    let io = IoThreads::new(1).unwrap();
    let started = Instant::now();
    let live: Vec<Client> = (0..250)
        .map(|_| io.connect_with_config(&live_url, config.clone()).unwrap())
        .collect();
    let silent: Vec<Client> = (0..250)
        .map(|_| io.connect_with_config(&silent_url, config.clone()).unwrap())
        .collect();
    for ws in live.iter().chain(&silent) {
        expect_open(ws);
    }
    for ws in &silent {
        let events = until_close(ws);
        let close = check_contract(&events);
        assert_eq!(close.code, 1006);
        assert!(
            matches!(
                error_of(&events),
                Some(Error::Timeout {
                    kind: TimeoutKind::DeadPeer,
                    ..
                })
            ),
            "{events:?}"
        );
    }
    let silent_done = started.elapsed();
    assert!(
        silent_done < Duration::from_secs(8),
        "250 dead peers found in {silent_done:?}"
    );
    // Well past the dead-peer timeout, the pinged live ones are all still open, with no event.
    let quiet_until = Instant::now() + Duration::from_millis(800);
    for ws in &live {
        let left = quiet_until.saturating_duration_since(Instant::now());
        if let Ok(event) = ws.recv_timeout(left) {
            panic!("a live connection got {event:?}");
        }
    }
    for ws in &live {
        ws.close().unwrap();
        assert!(check_contract(&until_close(ws)).was_clean);
    }
    drop(hold);
}

#[test]
fn two_hundred_connections_reconnect_after_their_server_restarts() {
    let _serial = one_at_a_time();
    let server = RestartableServer::start();
    let url = server.url();
    let config = Config::builder()
        .reconnect(true)
        .reconnect_delays(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .unwrap();
    let io = IoThreads::new(2).unwrap();
    let clients: Vec<Client> = (0..200)
        .map(|_| io.connect_with_config(&url, config.clone()).unwrap())
        .collect();
    for ws in &clients {
        expect_open(ws);
    }
    let addr = server.stop();
    let server = RestartableServer::start_on(addr);
    for (i, ws) in clients.iter().enumerate() {
        // The reset: one error and a close that says a reconnect follows; then open again
        // (possibly after refused attempts, while the listener was down).
        loop {
            match next(ws) {
                Event::Open(_) => break,
                Event::Error(_) | Event::Close(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        ws.send_text(format!("back {i}")).unwrap();
        assert_eq!(next_message(ws), Message::from(format!("back {i}")));
    }
    // The restartable server keeps a clone of each socket (to reset it on stop), so its TCP
    // close comes only when the close timer runs out: close them all at once.
    for ws in &clients {
        ws.close().unwrap();
    }
    for ws in &clients {
        let events = until_close(ws);
        assert!(check_contract(&events).was_clean);
    }
    drop(server);
}

#[test]
fn dropping_the_io_threads_ends_no_connection_and_they_exit_after_the_last() {
    let _serial = one_at_a_time();
    let io = IoThreads::new(1).unwrap();
    let url = echo_server();
    let first = io.connect(&url).unwrap();
    let second = io.connect(&url).unwrap();
    drop(io);
    expect_open(&first);
    expect_open(&second);
    first.send_text("one").unwrap();
    assert_eq!(next_message(&first), Message::from("one"));
    first.close().unwrap();
    assert!(check_contract(&until_close(&first)).was_clean);
    // One client is still served: the thread is there.
    assert_eq!(shared_io_threads().len(), 1);
    second.send_text("two").unwrap();
    assert_eq!(next_message(&second), Message::from("two"));
    drop(second);
    wait_for("the shared thread exits after its last connection", || {
        shared_io_threads().is_empty()
    });
}

#[test]
fn idle_connections_cost_one_descriptor_each_and_no_wake_ups() {
    let _serial = one_at_a_time();
    raise_open_files_limit();
    const N: usize = 1000;
    // The server end of each connection is in this process too: one descriptor each.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (accepted_tx, accepted) = flume::unbounded();
    common::spawn(move || {
        for stream in listener.incoming().take(N) {
            let mut stream = stream.unwrap();
            common::accept_handshake(&mut stream).unwrap();
            accepted_tx.send(stream).unwrap();
        }
    });
    let io = IoThreads::new(2).unwrap();
    let before = open_files();
    let clients: Vec<Client> = (0..N).map(|_| io.connect(&url).unwrap()).collect();
    for ws in &clients {
        expect_open(ws);
    }
    let servers: Vec<_> = accepted.iter().take(N).collect();
    let added = open_files() - before;
    assert!(
        added <= 2 * N + 8,
        "{added} descriptors for {N} connections (both ends)"
    );
    let threads = shared_io_threads();
    assert_eq!(threads.len(), 2);
    // Settle, then count wake-ups over a second.
    wait_for("the shared threads asleep", || {
        threads
            .iter()
            .all(|tid| common::thread_sleeps_in_epoll(tid) == Some(true))
    });
    let counts = |threads: &[String]| -> Vec<u64> {
        threads
            .iter()
            .map(|t| context_switches(t).unwrap())
            .collect()
    };
    let first = counts(&threads);
    std::thread::sleep(Duration::from_secs(1));
    let second = counts(&threads);
    assert_eq!(
        first, second,
        "the shared threads woke up with {N} idle connections"
    );
    drop(clients);
    drop(servers);
}

#[test]
fn a_connection_that_fails_to_connect_on_a_shared_thread_reports_it_by_the_contract() {
    let _serial = one_at_a_time();
    let io = IoThreads::new(1).unwrap();
    let ws = io
        .connect(&format!("ws://127.0.0.1:{}/", common::closed_port()))
        .unwrap();
    let events = until_close(&ws);
    assert_eq!(check_contract(&events).code, 1006);
    assert!(
        matches!(error_of(&events), Some(Error::Connect(_))),
        "{events:?}"
    );
    assert!(matches!(IoThreads::new(0), Err(Error::InvalidConfig(_))));
}

#[test]
fn a_thousand_connects_to_a_host_name_share_a_few_resolver_threads() {
    let _serial = one_at_a_time();
    raise_open_files_limit();
    let port = echo_server()
        .trim_start_matches("ws://127.0.0.1:")
        .trim_end_matches('/')
        .to_owned();
    let url = format!("ws://localhost:{port}/");
    let io = IoThreads::new(2).unwrap();
    let resolvers = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim() == "nwebsocket-dns")
            .count()
    };
    let clients: Vec<Client> = (0..1000).map(|_| io.connect(&url).unwrap()).collect();
    let mut most = resolvers();
    for ws in &clients {
        most = most.max(resolvers());
        match ws.recv_timeout(WAIT).unwrap() {
            Event::Open(_) => {}
            // localhost may resolve to ::1 first, where nothing listens: Happy Eyeballs then
            // falls back to 127.0.0.1 and still opens. Anything else fails the test.
            other => panic!("expected Open, got {other:?}"),
        }
    }
    eprintln!("at most {most} resolver threads seen");
    assert!(most <= 8, "{most} resolver threads for 1,000 connects");
    assert!(
        shared_io_threads().len() == 2,
        "no thread per connection either"
    );
    for ws in &clients {
        ws.close().unwrap();
    }
    for ws in &clients {
        assert!(check_contract(&until_close(ws)).was_clean);
    }
}
