//! Starting and stopping the interop peers: each is a child process on 127.0.0.1, stopped by
//! its PID when the test drops it, with its own scratch folder and log.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each peer is used by some tests only"
)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a peer may take to start listening.
const START: Duration = Duration::from_secs(20);

/// The folder of the interop support files (scripts, the Node package).
pub fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// A running peer. Dropping it kills the process (by its PID) and removes its folder.
pub struct Peer {
    pub name: &'static str,
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Child::kill signals this child's PID only, never a process found by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Peer {
    /// The peer's log so far (its stdout and stderr), for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("peer.log")).unwrap_or_default()
    }

    /// The peer's URL on 127.0.0.1 with `scheme` and `path`.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}

/// A fresh scratch folder for one peer.
pub fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "nwebsocket-interop-{}-{name}-{n}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port that was free a moment ago, for peers that cannot bind port 0 and report it.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn spawn(name: &str, command: &mut Command, dir: &Path, stdout: Stdio) -> Child {
    let log = fs::File::create(dir.join("peer.log")).unwrap();
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log);
    command
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {name} ({command:?}): {err}"))
}

/// Starts a peer that binds 127.0.0.1:0 and prints `PORT <n>` as its first line.
pub fn start_announcing(name: &'static str, mut command: Command) -> Peer {
    let dir = scratch(name);
    let mut child = spawn(name, &mut command, &dir, Stdio::piped());
    let stdout = child.stdout.take().expect("stdout was piped");
    let (tx, rx) = flume::bounded(1);
    std::thread::Builder::new()
        .name(format!("{name}-stdout"))
        .spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep draining, so that the peer never blocks on a full pipe.
            for _ in lines {}
        })
        .unwrap();
    let line = rx.recv_timeout(START);
    let port = match &line {
        Ok(Some(Ok(line))) => line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok()),
        _ => None,
    };
    let mut peer = Peer {
        name,
        port: 0,
        dir,
        child,
    };
    match port {
        Some(port) => peer.port = port,
        None => panic!(
            "{name} did not announce its port within {START:?} (got {line:?}); log:\n{}",
            peer.log()
        ),
    }
    peer
}

/// Starts a peer configured to listen on `port`, and waits until it accepts a connection.
pub fn start_on_port(name: &'static str, mut command: Command, port: u16, dir: PathBuf) -> Peer {
    let log = fs::File::create(dir.join("peer-stdout.log")).unwrap();
    let child = spawn(name, &mut command, &dir, log.into());
    let mut peer = Peer {
        name,
        port,
        dir,
        child,
    };
    wait_listening(&mut peer);
    peer
}

/// Polls a TCP connect to the peer until it succeeds, the peer exits, or [`START`] passes.
fn wait_listening(peer: &mut Peer) {
    let addr = SocketAddr::from(([127, 0, 0, 1], peer.port));
    let deadline = Instant::now() + START;
    loop {
        if let Ok(Some(status)) = peer.child.try_wait() {
            panic!(
                "{} exited before listening ({status}); log:\n{}",
                peer.name,
                peer.log()
            );
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "{} did not listen on {addr} within {START:?}; log:\n{}",
                peer.name,
                peer.log()
            );
        }
        // A refused connect returns at once: pace the polling.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `request` to a new connection to `port` and returns what came back up to the end
/// of the first line, within a bounded time.
pub fn exchange(port: u16, request: &[u8]) -> std::io::Result<(TcpStream, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request)?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") && line.len() < 1024 {
        if stream.read(&mut byte)? == 0 {
            break;
        }
        line.push(byte[0]);
    }
    Ok((stream, String::from_utf8_lossy(&line).trim_end().to_owned()))
}

/// Reads exactly `n` bytes within the stream's read timeout.
pub fn read_n(stream: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    stream.read_exact(&mut buf)?;
    Ok(buf)
}

/// Standard base64 with padding, for `Proxy-Authorization: Basic`.
pub fn base64(input: &[u8]) -> String {
    data_encoding::BASE64.encode(input)
}
