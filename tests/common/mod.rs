//! Loopback servers for the integration tests: tungstenite servers on threads, a raw-TCP
//! server for misbehaviour, and a TLS server with a freshly generated certificate.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a part")]
#![allow(clippy::unwrap_used, reason = "a test fails loudly on any error")]

pub mod deflate;
pub mod fault_proxy;
pub mod restartable;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nwebsocket::{Client, CloseEvent, Event, Message};
use tungstenite::WebSocket;

/// Every proxy variable of the environment that the client reads.
pub const PROXY_VARIABLES: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// The shared I/O threads of this test binary when `NWS_TEST_IO_THREADS=N` asks for them
/// (`.ci/run` runs the contract tests a second time that way).
fn shared_io() -> Option<&'static nwebsocket::IoThreads> {
    static IO: std::sync::OnceLock<Option<nwebsocket::IoThreads>> = std::sync::OnceLock::new();
    IO.get_or_init(|| {
        let threads = std::env::var("NWS_TEST_IO_THREADS").ok()?;
        let threads = threads.parse().expect("NWS_TEST_IO_THREADS is a number");
        Some(nwebsocket::IoThreads::new(threads).unwrap())
    })
    .as_ref()
}

/// Opens a connection as [`Client::connect`] does: on its own I/O thread, or on shared
/// ones with `NWS_TEST_IO_THREADS`, so that the same tests check both.
pub fn connect(url: &str) -> nwebsocket::Result<Client> {
    connect_with_config(url, nwebsocket::Config::default())
}

/// Opens a connection as [`Client::connect_with_config`] does (see [`connect`]).
pub fn connect_with_config(url: &str, config: nwebsocket::Config) -> nwebsocket::Result<Client> {
    match shared_io() {
        Some(io) => io.connect_with_config(url, config),
        None => Client::connect_with_config(url, config),
    }
}

/// Spawns a named test thread.
pub fn spawn<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::Builder::new()
        .name("test".into())
        .spawn(f)
        .unwrap()
}

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Starts a listener on 127.0.0.1:0 that runs `handler` on its own thread for every accepted
/// connection. Returns the port.
pub fn tcp_server<F>(handler: F) -> u16
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler = Arc::new(handler);
    std::thread::Builder::new()
        .name("test-listener".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                std::thread::Builder::new()
                    .name("test-conn".into())
                    .spawn(move || handler(stream))
                    .unwrap();
            }
        })
        .unwrap();
    port
}

/// A tungstenite server: runs `handler` with each accepted WebSocket. Returns its `ws://` URL.
pub fn ws_server<F>(handler: F) -> String
where
    F: Fn(WebSocket<TcpStream>) + Send + Sync + 'static,
{
    let port = tcp_server(move |stream| {
        if let Ok(ws) = tungstenite::accept(stream) {
            handler(ws);
        }
    });
    format!("ws://127.0.0.1:{port}/")
}

/// Echoes every text and binary message until the client closes.
pub fn echo(mut ws: WebSocket<impl Read + Write>) {
    loop {
        match ws.read() {
            Ok(msg @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_))) => {
                if ws.send(msg).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

pub fn echo_server() -> String {
    ws_server(echo)
}

/// A raw TCP server that completes a valid WebSocket handshake and then hands the socket to
/// `after` for whatever bytes it likes. Returns its `ws://` URL.
pub fn raw_ws_server<F>(after: F) -> String
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let port = tcp_server(move |mut stream| {
        if accept_handshake(&mut stream).is_some() {
            after(stream);
        }
    });
    format!("ws://127.0.0.1:{port}/")
}

/// Reads an upgrade request and answers `101` with the right accept key. Returns the request.
pub fn accept_handshake(stream: &mut TcpStream) -> Option<String> {
    let request = read_request(stream)?;
    let accept = accept_key(&request)?;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).ok()?;
    Some(request)
}

/// The `Sec-WebSocket-Accept` value that answers an upgrade `request` head.
pub fn accept_key(request: &str) -> Option<String> {
    let key = request.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    })?;
    Some(tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// Reads an HTTP request head (up to the blank line).
pub fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

/// An unmasked server frame.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Waits for the next event, failing the test after [`WAIT`].
pub fn next(client: &Client) -> Event {
    match client.recv_timeout(WAIT) {
        Ok(event) => event,
        Err(err) => panic!("no event within {WAIT:?}: {err}"),
    }
}

/// Takes events until `Close`, checks that the stream then ends, and returns them all.
pub fn until_close(client: &Client) -> Vec<Event> {
    let deadline = Instant::now() + WAIT * 2;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.recv_timeout(left) {
            Ok(event) => {
                let done = matches!(event, Event::Close(_));
                events.push(event);
                if done {
                    break;
                }
            }
            Err(err) => panic!("stream ended without Close ({err}); got {events:?}"),
        }
    }
    match client.recv_timeout(WAIT) {
        Err(nwebsocket::RecvTimeoutError::Disconnected) => {}
        Err(nwebsocket::RecvTimeoutError::Timeout) => panic!("the stream did not end after Close"),
        Ok(event) => panic!("an event came after Close: {event:?}"),
    }
    events
}

/// The close event at the end of `events`, after checking the contract's shape:
/// `Open? Message* Error? Close`, with `Error` exactly when the close is not clean.
pub fn check_contract(events: &[Event]) -> CloseEvent {
    let (last, rest) = events.split_last().expect("no events");
    let Event::Close(close) = last else {
        panic!("last event is not Close: {events:?}")
    };
    let mut rest = rest;
    if let [Event::Open(_), tail @ ..] = rest {
        rest = tail;
    }
    let error_count = rest.iter().filter(|e| matches!(e, Event::Error(_))).count();
    if close.was_clean {
        assert_eq!(error_count, 0, "clean close with an error: {events:?}");
    } else {
        assert_eq!(
            error_count, 1,
            "unclean close without exactly one error: {events:?}"
        );
        assert!(
            matches!(rest.last(), Some(Event::Error(_))),
            "error not just before close"
        );
    }
    for event in &rest[..rest.len() - error_count] {
        assert!(
            matches!(event, Event::Message(_)),
            "unexpected {event:?} in {events:?}"
        );
    }
    close.clone()
}

/// The error event in `events`, if any.
pub fn error_of(events: &[Event]) -> Option<&nwebsocket::Error> {
    events.iter().find_map(|e| match e {
        Event::Error(err) => Some(err),
        _ => None,
    })
}

/// The messages in `events`.
pub fn messages(events: &[Event]) -> Vec<Message> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// Waits for `Open`, failing the test otherwise.
pub fn expect_open(client: &Client) {
    match next(client) {
        Event::Open(_) => {}
        other => panic!("expected Open, got {other:?}"),
    }
}

/// Connects to a port where nothing listens: binds, notes the port, closes the listener.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The ids of this process's `nwebsocket-io` threads, each with whether it sleeps in the
/// poller (`epoll_wait`).
pub fn io_threads() -> Vec<(String, bool)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue; // the thread has just exited
        };
        if comm.trim() == "nwebsocket-io" {
            let tid = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(asleep) = sleeps_in_epoll(&path) else {
                continue; // the thread has just exited
            };
            threads.push((tid, asleep));
        }
    }
    threads
}

/// Whether this process's thread `tid` is blocked in `epoll_wait` (`None` once it has exited);
/// see [`io_threads`].
pub fn thread_sleeps_in_epoll(tid: &str) -> Option<bool> {
    sleeps_in_epoll(&std::path::Path::new("/proc/self/task").join(tid))
}

/// Whether the thread at `/proc/self/task/<tid>` is blocked in `epoll_wait`: by its `wchan`,
/// or, where the kernel hides that (it reads "0"), by the system call it is blocked in
/// (`/proc/<tid>/syscall`); `None` when the thread has just exited. Fails the test at once if
/// the kernel shows neither, rather than waiting for a sign that cannot come.
fn sleeps_in_epoll(task: &std::path::Path) -> Option<bool> {
    // A thread that exits while we read: its files are gone (NotFound), or the read of a
    // file opened just before fails with ESRCH (3, "No such process").
    let gone = |err: &std::io::Error| {
        err.kind() == std::io::ErrorKind::NotFound || err.raw_os_error() == Some(3)
    };
    let wchan = match std::fs::read_to_string(task.join("wchan")) {
        Ok(wchan) => wchan,
        Err(err) if gone(&err) => return None,
        Err(_) => String::new(),
    };
    if wchan.trim() == "do_epoll_wait" {
        return Some(true);
    }
    // epoll_wait, epoll_pwait and epoll_pwait2 on x86_64; epoll_pwait(2) on aarch64.
    const EPOLL_WAITS: &[&str] = if cfg!(target_arch = "aarch64") {
        &["22", "441"]
    } else {
        &["232", "281", "441"]
    };
    match std::fs::read_to_string(task.join("syscall")) {
        Ok(syscall) => Some(
            syscall
                .split_whitespace()
                .next()
                .is_some_and(|nr| EPOLL_WAITS.contains(&nr)),
        ),
        Err(err) if gone(&err) => None,
        Err(_) if !wchan.trim().is_empty() && wchan.trim() != "0" => Some(false),
        Err(err) => panic!("the kernel shows neither wchan nor syscall of a thread: {err}"),
    }
}

/// Waits until process state that no event reports holds, looking every millisecond; fails
/// the test after [`WAIT`]. For thread and file descriptor counts and for "the I/O thread is
/// asleep", never for anything a channel or an event can say.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "still not so after {WAIT:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until every `nwebsocket-io` thread of this process sleeps in the poller (and at least
/// one exists): the I/O thread has done all it can for now. Only for test binaries with one
/// connection at a time.
pub fn wait_until_io_asleep() {
    wait_for("every I/O thread asleep in epoll_wait", || {
        let threads = io_threads();
        !threads.is_empty() && threads.iter().all(|(_, asleep)| *asleep)
    });
}
