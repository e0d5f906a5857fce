//! The workloads, each written twice: for a plain blocking tungstenite client (the baseline:
//! no thread hop, no queue) and for nwebsocket. Both talk to the same loopback server.

use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nwebsocket::{Client, Config, Event, IoThreads, TryRecvError};
use tungstenite::Message;

use crate::meter::{Measured, Meter};
use crate::server::Server;
use crate::sys;

pub(crate) type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long any single wait may take before the round fails.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Round trips made before measuring, on a fresh connection.
const WARMUP: usize = 200;

/// The 32-byte text of the round-trip workload.
const RTT_TEXT: &str = "0123456789abcdef0123456789abcdef";

/// The name of the environment variable that makes the binary a many-connections child.
pub(crate) const CHILD_ENV: &str = "NWS_BENCH_CHILD";

/// The client under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// A plain blocking tungstenite client.
    Raw,
    /// nwebsocket.
    Nws,
}

impl Side {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::Raw => "tungstenite",
            Side::Nws => "nwebsocket",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Side::Raw => "raw",
            Side::Nws => "nws",
        }
    }
}

/// How many of everything one round does.
#[derive(Debug, Clone)]
pub(crate) struct Counts {
    pub(crate) rtt: usize,
    pub(crate) inbound: usize,
    pub(crate) outbound: usize,
    pub(crate) large: usize,
    pub(crate) bursts: usize,
    pub(crate) connect: usize,
    pub(crate) many: usize,
    pub(crate) json_1k: usize,
    pub(crate) json_64k: usize,
    pub(crate) idle: Duration,
}

/// What every workload needs.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) server: Server,
    pub(crate) counts: Counts,
    pub(crate) config: Config,
    /// With `NWS_BENCH_IO_THREADS`: nwebsocket's connections run on these shared threads.
    pub(crate) io: Option<IoThreads>,
}

/// Shared I/O threads for nwebsocket's connections if `NWS_BENCH_IO_THREADS` asks for them.
pub(crate) fn io_threads_from_env() -> BenchResult<Option<IoThreads>> {
    match std::env::var("NWS_BENCH_IO_THREADS") {
        Ok(threads) => Ok(Some(IoThreads::new(threads.parse()?)?)),
        Err(_) => Ok(None),
    }
}

/// Opens a connection, on the shared threads if there are some.
fn nws_connect(io: Option<&IoThreads>, url: &str, config: Config) -> nwebsocket::Result<Client> {
    match io {
        Some(io) => io.connect_with_config(url, config),
        None => Client::connect_with_config(url, config),
    }
}

/// nwebsocket's config: the default, or with `NWS_BENCH_BUFFER` (read and write buffer bytes)
/// and `NWS_BENCH_QUEUE` (event queue capacity) to try other settings.
pub(crate) fn config_from_env() -> BenchResult<Config> {
    let mut builder = Config::builder();
    if let Ok(bytes) = std::env::var("NWS_BENCH_BUFFER") {
        let bytes = bytes.parse()?;
        builder = builder.read_buffer_size(bytes).write_buffer_size(bytes);
    }
    if let Ok(capacity) = std::env::var("NWS_BENCH_QUEUE") {
        builder = builder.event_queue_capacity(capacity.parse()?);
    }
    Ok(builder.build()?)
}

pub(crate) type RawWs = tungstenite::WebSocket<TcpStream>;

pub(crate) fn raw_open(url: &str) -> BenchResult<RawWs> {
    let addr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or("not a ws:// URL")?;
    let stream = TcpStream::connect(addr)?;
    // As nwebsocket does by default.
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(WAIT))?;
    let (ws, _response) = tungstenite::client(url, stream).map_err(|err| err.to_string())?;
    Ok(ws)
}

/// The next text or binary message.
fn raw_data(ws: &mut RawWs) -> BenchResult<Message> {
    loop {
        let message = ws.read()?;
        if message.is_text() || message.is_binary() {
            return Ok(message);
        }
    }
}

/// Closes and reads until the server has answered and closed TCP.
pub(crate) fn raw_close(mut ws: RawWs) -> BenchResult<()> {
    ws.close(None)?;
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(());
            }
            Err(err) => return Err(err.into()),
        }
    }
}

fn nws_open(ctx: &Ctx, url: &str) -> BenchResult<Client> {
    let ws = nws_connect(ctx.io.as_ref(), url, ctx.config.clone())?;
    match ws.recv_timeout(WAIT)? {
        Event::Open(_) => Ok(ws),
        other => Err(format!("expected Open, got {other:?}").into()),
    }
}

fn nws_data(ws: &Client) -> BenchResult<nwebsocket::Message> {
    match ws.recv_timeout(WAIT)? {
        Event::Message(message) => Ok(message),
        other => Err(format!("expected a message, got {other:?}").into()),
    }
}

/// Closes, waits for the close event and for the I/O thread to finish.
fn nws_close(ws: Client) -> BenchResult<()> {
    ws.close()?;
    loop {
        match ws.recv_timeout(WAIT)? {
            Event::Message(_) => {}
            Event::Close(_) => break,
            other => return Err(format!("expected Close, got {other:?}").into()),
        }
    }
    if ws.wait_closed(WAIT) {
        Ok(())
    } else {
        Err("the I/O thread did not finish".into())
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort_unstable();
    let last = samples.len().saturating_sub(1);
    let index = ((p / 100.0) * last as f64).round() as usize;
    samples
        .get(index.min(last))
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
}

/// Sequential round trips of 32-byte text: p50 and p99 in µs, waiting blocking and then by
/// polling (as a game loop would, yielding between polls), and the client's CPU ns per round
/// trip while blocking (polling spends the whole wait on the CPU by design).
pub(crate) fn rtt(side: Side, ctx: &Ctx) -> BenchResult<Vec<f64>> {
    let url = ctx.server.url("/echo");
    let n = ctx.counts.rtt;
    let mut blocking = Vec::with_capacity(n);
    let mut polling = Vec::with_capacity(n);
    let mut meter = None;
    let blocking_cpu;
    match side {
        Side::Raw => {
            let mut ws = raw_open(&url)?;
            for i in 0..WARMUP + n {
                if i == WARMUP {
                    meter = Some(Meter::start());
                }
                let start = Instant::now();
                ws.send(Message::text(RTT_TEXT))?;
                raw_data(&mut ws)?;
                if i >= WARMUP {
                    blocking.push(start.elapsed());
                }
            }
            blocking_cpu = meter.ok_or("no round trips")?.stop().client_ns_per(n);
            ws.get_mut().set_nonblocking(true)?;
            for i in 0..WARMUP + n {
                let start = Instant::now();
                raw_send_nonblocking(&mut ws, Message::text(RTT_TEXT))?;
                raw_poll_data(&mut ws)?;
                if i >= WARMUP {
                    polling.push(start.elapsed());
                }
            }
            ws.get_mut().set_nonblocking(false)?;
            raw_close(ws)?;
        }
        Side::Nws => {
            let ws = nws_open(ctx, &url)?;
            for i in 0..WARMUP + n {
                if i == WARMUP {
                    meter = Some(Meter::start());
                }
                let start = Instant::now();
                ws.send_text(RTT_TEXT)?;
                nws_data(&ws)?;
                if i >= WARMUP {
                    blocking.push(start.elapsed());
                }
            }
            blocking_cpu = meter.ok_or("no round trips")?.stop().client_ns_per(n);
            for i in 0..WARMUP + n {
                let start = Instant::now();
                ws.send_text(RTT_TEXT)?;
                loop {
                    match ws.try_recv() {
                        Ok(Event::Message(_)) => break,
                        Ok(other) => {
                            return Err(format!("expected a message, got {other:?}").into());
                        }
                        Err(TryRecvError::Empty) => std::thread::yield_now(),
                        Err(err) => return Err(err.into()),
                    }
                }
                if i >= WARMUP {
                    polling.push(start.elapsed());
                }
            }
            nws_close(ws)?;
        }
    }
    Ok(vec![
        percentile(&mut blocking, 50.0),
        percentile(&mut blocking, 99.0),
        percentile(&mut polling, 50.0),
        percentile(&mut polling, 99.0),
        blocking_cpu,
    ])
}

/// Sends, and when the send queue is at its bound (`QueueFull`), waits for it to drain to half
/// and sends again: how a producer that outruns the socket paces itself.
fn nws_send_paced(ws: &Client, payload: &Bytes) -> BenchResult<()> {
    loop {
        match ws.send_binary(payload.clone()) {
            Ok(()) => return Ok(()),
            Err(nwebsocket::Error::QueueFull(_)) => {
                ws.wait_buffered_below(16 << 20, Duration::from_secs(30))?;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

fn would_block(err: &tungstenite::Error) -> bool {
    matches!(err, tungstenite::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock)
}

/// Sends on a non-blocking socket: the message is buffered on `WouldBlock`; flush until out.
fn raw_send_nonblocking(ws: &mut RawWs, message: Message) -> BenchResult<()> {
    let mut result = ws.send(message);
    loop {
        match result {
            Ok(()) => return Ok(()),
            Err(err) if would_block(&err) => {
                std::thread::yield_now();
                result = ws.flush();
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// Polls a non-blocking socket for the next data message, yielding between polls.
fn raw_poll_data(ws: &mut RawWs) -> BenchResult<Message> {
    loop {
        match ws.read() {
            Ok(message) if message.is_text() || message.is_binary() => return Ok(message),
            Ok(_) => {}
            Err(err) if would_block(&err) => std::thread::yield_now(),
            Err(err) => return Err(err.into()),
        }
    }
}

/// How nwebsocket takes the messages of an inbound workload.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Intake {
    /// One message per call, as most users write it: `try_recv`, and `recv_timeout` when
    /// nothing is queued.
    Recv,
    /// The blocking iterator, `events()`.
    Events,
}

/// The server pushes `n` binary messages of 64 bytes, pre-encoded and written in large chunks
/// (`/push`); the client counts them. tungstenite reads one message per `read` call; nwebsocket
/// takes them as `intake` says. Figures as [`Measured::throughput`].
pub(crate) fn inbound(side: Side, ctx: &Ctx, intake: Intake) -> BenchResult<Vec<f64>> {
    let n = ctx.counts.inbound;
    let measured = match side {
        Side::Raw => raw_inbound(ctx, n)?,
        Side::Nws => {
            let ws = nws_open(ctx, &ctx.server.url(&format!("/push/{n}/64")))?;
            nws_ready(&ws)?;
            let meter = Meter::start();
            ws.send_binary(Bytes::from_static(b"go"))?;
            match intake {
                Intake::Recv => nws_take_by_recv(&ws, n)?,
                Intake::Events => nws_take_by_events(&ws, n)?,
            }
            let measured = meter.stop();
            nws_close(ws)?;
            measured
        }
    };
    Ok(measured.throughput(n))
}

pub(crate) fn inbound_recv(side: Side, ctx: &Ctx) -> BenchResult<Vec<f64>> {
    inbound(side, ctx, Intake::Recv)
}

pub(crate) fn inbound_events(side: Side, ctx: &Ctx) -> BenchResult<Vec<f64>> {
    inbound(side, ctx, Intake::Events)
}

/// tungstenite's side of [`inbound`]: one message per `read`, as its users write it.
pub(crate) fn raw_inbound(ctx: &Ctx, n: usize) -> BenchResult<Measured> {
    let mut ws = raw_open(&ctx.server.url(&format!("/push/{n}/64")))?;
    raw_ready(&mut ws)?;
    let meter = Meter::start();
    ws.send(Message::Binary(Bytes::from_static(b"go")))?;
    let mut count = 0;
    while count < n {
        if ws.read()?.is_binary() {
            count += 1;
        }
    }
    let measured = meter.stop();
    raw_close(ws)?;
    Ok(measured)
}

/// Waits for the push or sink server's `ready`: the clock may start.
pub(crate) fn raw_ready(ws: &mut RawWs) -> BenchResult<()> {
    match raw_data(ws)? {
        Message::Text(text) if text.as_str() == "ready" => Ok(()),
        other => Err(format!("expected ready, got {other:?}").into()),
    }
}

fn nws_ready(ws: &Client) -> BenchResult<()> {
    match nws_data(ws)?.as_text() {
        Some("ready") => Ok(()),
        other => Err(format!("expected ready, got {other:?}").into()),
    }
}

/// Takes `n` messages one per call: `try_recv`, and `recv_timeout` when the queue is empty.
fn nws_take_by_recv(ws: &Client, n: usize) -> BenchResult<()> {
    let mut count = 0;
    while count < n {
        let event = match ws.try_recv() {
            Ok(event) => event,
            Err(TryRecvError::Empty) => ws.recv_timeout(WAIT)?,
            Err(err) => return Err(err.into()),
        };
        match event {
            Event::Message(_) => count += 1,
            other => return Err(format!("expected a message, got {other:?}").into()),
        }
    }
    Ok(())
}

/// Takes `n` messages through `events()`.
fn nws_take_by_events(ws: &Client, n: usize) -> BenchResult<()> {
    let mut count = 0;
    for event in ws.events() {
        match event {
            Event::Message(_) => {
                count += 1;
                if count == n {
                    return Ok(());
                }
            }
            other => return Err(format!("expected a message, got {other:?}").into()),
        }
    }
    Err(format!("only {count} of {n} messages arrived").into())
}

/// The client sends `n` binary messages of 64 bytes; timed until the server has counted all of
/// them and said so. Figures as [`Measured::throughput`] (the server counts frames from their
/// headers, so that it keeps up), and how long the send calls took (for tungstenite that includes writing to
/// the socket; nwebsocket's only queue).
pub(crate) fn outbound(side: Side, ctx: &Ctx) -> BenchResult<Vec<f64>> {
    let n = ctx.counts.outbound;
    let (measured, sent) = match side {
        Side::Raw => raw_outbound(ctx, n)?,
        Side::Nws => {
            let ws = nws_open(ctx, &ctx.server.url(&format!("/sink/{n}")))?;
            nws_ready(&ws)?;
            let payload = Bytes::from_static(&[0x5a; 64]);
            let meter = Meter::start();
            let start = Instant::now();
            for _ in 0..n {
                nws_send_paced(&ws, &payload)?;
            }
            let sent = start.elapsed();
            let done = nws_data(&ws)?;
            let measured = meter.stop();
            if !done.is_text() {
                return Err("expected the server's done".into());
            }
            nws_close(ws)?;
            (measured, sent)
        }
    };
    let mut figures = measured.throughput(n);
    figures.push(sent.as_secs_f64() * 1e9 / n as f64);
    Ok(figures)
}

/// The messages of one burst in [`bursts`]: 640 KB of 64-byte messages, past the 64 KiB
/// from which nwebsocket lets a burst gather into larger writes.
pub(crate) const BURST_MESSAGES: usize = 10_000;

/// Bursts of [`BURST_MESSAGES`] binary messages of 64 bytes, each answered by the server
/// (`/bursts`) once it has counted the whole burst, before the next: how long a burst takes
/// from its first send to the answer (p50, p99), the tail (from the last send returning, or
/// tungstenite's flush, to the answer: what gathering the end of a burst costs), in µs, and
/// the client's CPU per message.
pub(crate) fn bursts(side: Side, ctx: &Ctx) -> BenchResult<Vec<f64>> {
    let n = ctx.counts.bursts;
    let url = ctx.server.url(&format!("/bursts/{n}/{BURST_MESSAGES}"));
    let payload = Bytes::from_static(&[0x5a; 64]);
    let mut whole = Vec::with_capacity(n);
    let mut tails = Vec::with_capacity(n);
    let measured = match side {
        Side::Raw => {
            let mut ws = raw_open(&url)?;
            raw_ready(&mut ws)?;
            let meter = Meter::start();
            for _ in 0..n {
                let start = Instant::now();
                for _ in 0..BURST_MESSAGES {
                    ws.write(Message::Binary(payload.clone()))?;
                }
                ws.flush()?;
                let sent = Instant::now();
                raw_data(&mut ws)?;
                whole.push(start.elapsed());
                tails.push(sent.elapsed());
            }
            let measured = meter.stop();
            raw_close(ws)?;
            measured
        }
        Side::Nws => {
            let ws = nws_open(ctx, &url)?;
            nws_ready(&ws)?;
            let meter = Meter::start();
            for _ in 0..n {
                let start = Instant::now();
                for _ in 0..BURST_MESSAGES {
                    nws_send_paced(&ws, &payload)?;
                }
                let sent = Instant::now();
                nws_data(&ws)?;
                whole.push(start.elapsed());
                tails.push(sent.elapsed());
            }
            let measured = meter.stop();
            nws_close(ws)?;
            measured
        }
    };
    Ok(vec![
        percentile(&mut whole, 50.0),
        percentile(&mut whole, 99.0),
        percentile(&mut tails, 50.0),
        measured.client_ns_per(n * BURST_MESSAGES),
    ])
}

/// tungstenite's side of [`outbound`]: buffered writes (tungstenite writes to the socket
/// whenever its write buffer is full), then one flush. Also gives how long the writes took.
pub(crate) fn raw_outbound(ctx: &Ctx, n: usize) -> BenchResult<(Measured, Duration)> {
    let mut ws = raw_open(&ctx.server.url(&format!("/sink/{n}")))?;
    raw_ready(&mut ws)?;
    let payload = Bytes::from_static(&[0x5a; 64]);
    let meter = Meter::start();
    let start = Instant::now();
    for _ in 0..n {
        ws.write(Message::Binary(payload.clone()))?;
    }
    ws.flush()?;
    let sent = start.elapsed();
    let done = raw_data(&mut ws)?;
    let measured = meter.stop();
    if !done.is_text() {
        return Err("expected the server's done".into());
    }
    raw_close(ws)?;
    Ok((measured, sent))
}

/// Round trips of 1 MiB binary messages: MiB/s echoed (payload one way), and the client's CPU
/// ns per message echoed (sent and received).
pub(crate) fn large(side: Side, ctx: &Ctx) -> BenchResult<Vec<f64>> {
    const WARM: usize = 2;
    let n = ctx.counts.large;
    let url = ctx.server.url("/echo");
    let payload = Bytes::from(vec![0x3c; 1 << 20]);
    let mut meter = None;
    match side {
        Side::Raw => {
            let mut ws = raw_open(&url)?;
            for i in 0..WARM + n {
                if i == WARM {
                    meter = Some(Meter::start());
                }
                ws.send(Message::Binary(payload.clone()))?;
                if raw_data(&mut ws)?.len() != payload.len() {
                    return Err("echo of the wrong size".into());
                }
            }
            let measured = meter.ok_or("no echoes")?.stop();
            raw_close(ws)?;
            Ok(vec![measured.rate(n), measured.client_ns_per(n)])
        }
        Side::Nws => {
            let ws = nws_open(ctx, &url)?;
            for i in 0..WARM + n {
                if i == WARM {
                    meter = Some(Meter::start());
                }
                ws.send_binary(payload.clone())?;
                if nws_data(&ws)?.len() != payload.len() {
                    return Err("echo of the wrong size".into());
                }
            }
            let measured = meter.ok_or("no echoes")?.stop();
            nws_close(ws)?;
            Ok(vec![measured.rate(n), measured.client_ns_per(n)])
        }
    }
}

/// Sequential connect, handshake, close handshake, end of the connection: µs each (p50,
/// p99, mean). For nwebsocket that includes the I/O thread's start and its exit (`wait_closed`).
pub(crate) fn connect_close(side: Side, ctx: &Ctx) -> BenchResult<Vec<f64>> {
    let url = ctx.server.url("/echo");
    let n = ctx.counts.connect;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        match side {
            Side::Raw => raw_close(raw_open(&url)?)?,
            Side::Nws => nws_close(nws_open(ctx, &url)?)?,
        }
        samples.push(start.elapsed());
    }
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / n as f64;
    Ok(vec![
        percentile(&mut samples, 50.0),
        percentile(&mut samples, 99.0),
        mean,
    ])
}

/// One open connection without traffic: CPU µs and wake-ups of the thread that waits for the
/// server (nwebsocket's I/O thread; for tungstenite a thread blocked in `read`).
pub(crate) fn idle(side: Side, ctx: &Ctx) -> BenchResult<Vec<f64>> {
    const SETTLE: Duration = Duration::from_millis(200);
    let url = ctx.server.url("/echo");
    let idle = ctx.counts.idle;
    let used = match side {
        Side::Raw => {
            let ws = raw_open(&url)?;
            ws.get_ref().set_read_timeout(Some(idle + WAIT))?;
            let socket = ws.get_ref().try_clone()?;
            let reader = std::thread::Builder::new()
                .name("raw-reader".into())
                .spawn(move || {
                    let mut ws = ws;
                    while ws.read().is_ok() {}
                })?;
            std::thread::sleep(SETTLE);
            let tid = only(sys::threads_named("raw-reader"))?;
            let before = sys::task_stat(tid);
            std::thread::sleep(idle);
            let used = sys::task_stat(tid).since(before);
            socket.shutdown(Shutdown::Both)?;
            reader.join().map_err(|_| "the reader panicked")?;
            used
        }
        Side::Nws => {
            // Its own thread, or the shared one it was given (`nwebsocket-io-N`); with shared
            // threads, no other connection is open meanwhile.
            let named = || sys::threads_named_like("nwebsocket-io");
            let earlier = if ctx.io.is_some() {
                Vec::new()
            } else {
                named()
            };
            let ws = nws_open(ctx, &url)?;
            std::thread::sleep(SETTLE);
            let mut io_threads = named();
            if let Some(io) = &ctx.io {
                if io.threads() != 1 {
                    return Err("idle on shared threads needs NWS_BENCH_IO_THREADS=1".into());
                }
            }
            io_threads.retain(|tid| !earlier.contains(tid));
            let tid = only(io_threads)?;
            let before = sys::task_stat(tid);
            std::thread::sleep(idle);
            let used = sys::task_stat(tid).since(before);
            nws_close(ws)?;
            used
        }
    };
    Ok(vec![used.cpu_ns as f64 / 1e3, used.switches as f64])
}

fn only(tids: Vec<u32>) -> BenchResult<u32> {
    match tids.as_slice() {
        [tid] => Ok(*tid),
        _ => Err(format!("expected one thread, found {tids:?}").into()),
    }
}

/// Many idle connections, opened by a child process so that its memory is the client's alone
/// (the server stays in this process): RSS MiB, KiB per connection, threads, CPU ms and
/// wake-ups of all threads but the main one while idle.
pub(crate) fn many(side: Side, ctx: &Ctx) -> BenchResult<Vec<f64>> {
    let mut child = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, side.key())
        .env("NWS_BENCH_CHILD_URL", ctx.server.url("/echo"))
        .env("NWS_BENCH_CHILD_COUNT", ctx.counts.many.to_string())
        .env(
            "NWS_BENCH_CHILD_IDLE_MS",
            ctx.counts.idle.as_millis().to_string(),
        )
        .stdout(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            return Err("the many-connections child timed out".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .ok_or("no stdout from the child")?
        .read_to_string(&mut out)?;
    if !status.success() {
        return Err(format!("the many-connections child failed: {status}").into());
    }
    let line = out
        .lines()
        .find_map(|line| line.strip_prefix("many-result "))
        .ok_or("no result from the child")?;
    let field = |key: &str| -> BenchResult<f64> {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .ok_or_else(|| format!("no {key} in the child's result"))?
            .parse::<f64>()
            .map_err(Into::into)
    };
    let (before, after) = (field("rss_before_kib")?, field("rss_after_kib")?);
    Ok(vec![
        after / 1024.0,
        (after - before) / ctx.counts.many as f64,
        field("threads_after")?,
        field("idle_cpu_ns")? / 1e6,
        field("idle_switches")?,
    ])
}

/// The child's side of [`many`]: opens the connections, measures, prints one result line.
pub(crate) fn many_child(side: &str) -> BenchResult<()> {
    let url = std::env::var("NWS_BENCH_CHILD_URL")?;
    let count: usize = std::env::var("NWS_BENCH_CHILD_COUNT")?.parse()?;
    let idle = Duration::from_millis(std::env::var("NWS_BENCH_CHILD_IDLE_MS")?.parse()?);
    sys::raise_open_files_limit();
    let (rss_before, threads_before) = sys::rss_kib_and_threads();
    let measure = || {
        std::thread::sleep(Duration::from_millis(300));
        let (rss_after, threads_after) = sys::rss_kib_and_threads();
        let main = sys::main_tid();
        let others = |tid: u32, _: &str| tid != main;
        let before = sys::tasks_stat(others);
        std::thread::sleep(idle);
        let used = sys::tasks_stat(others).since(before);
        #[expect(clippy::print_stdout, reason = "the parent reads this line")]
        {
            println!(
                "many-result rss_before_kib={rss_before} rss_after_kib={rss_after} \
                 threads_before={threads_before} threads_after={threads_after} \
                 idle_cpu_ns={} idle_switches={}",
                used.cpu_ns, used.switches
            );
        }
    };
    match side {
        "raw" => {
            let conns = (0..count)
                .map(|_| raw_open(&url))
                .collect::<BenchResult<Vec<_>>>()?;
            measure();
            drop(conns);
        }
        "nws" => {
            let config = config_from_env()?;
            let io = io_threads_from_env()?;
            let clients = (0..count)
                .map(|_| nws_connect(io.as_ref(), &url, config.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            for client in &clients {
                match client.recv_timeout(WAIT)? {
                    Event::Open(_) => {}
                    other => return Err(format!("expected Open, got {other:?}").into()),
                }
            }
            measure();
            // Dropping starts each close; exiting right after ends the threads.
            drop(clients);
        }
        other => return Err(format!("unknown side {other:?}").into()),
    }
    Ok(())
}

/// The server pushes `n` JSON-like text messages of `size` bytes, compressed for nwebsocket
/// (which offers permessage-deflate) and plain for tungstenite (which cannot): payload MB/s,
/// the bytes on the wire per message, the client's CPU per message (inflating and checking
/// the text included) and the server's CPU share (percent of one CPU; it writes frames made
/// before the clock starts).
pub(crate) fn json(side: Side, ctx: &Ctx, n: usize, size: usize) -> BenchResult<Vec<f64>> {
    let url = ctx.server.url(&format!("/json/{n}/{size}"));
    let go = Bytes::from_static(b"go");
    let (measured, wire) = match side {
        Side::Raw => {
            let mut ws = raw_open(&url)?;
            raw_data(&mut ws)?; // ready
            let meter = Meter::start();
            ws.send(Message::Binary(go))?;
            for _ in 0..n {
                let message = raw_data(&mut ws)?;
                if message.len() != size {
                    return Err("a message of the wrong size".into());
                }
            }
            let measured = meter.stop();
            let wire = raw_data(&mut ws)?.into_text()?.to_string();
            raw_close(ws)?;
            (measured, wire)
        }
        Side::Nws => {
            let ws = nws_open(ctx, &url)?;
            if ws.extensions().is_empty() {
                return Err("the server did not agree to permessage-deflate".into());
            }
            ws.recv_timeout(WAIT)?; // ready
            let meter = Meter::start();
            ws.send_binary(go)?;
            let mut count = 0;
            while count < n {
                match ws.recv_timeout(WAIT)? {
                    Event::Message(message) if message.len() == size => count += 1,
                    other => return Err(format!("expected a message, got {other:?}").into()),
                }
            }
            let measured = meter.stop();
            let wire = match ws.recv_timeout(WAIT)? {
                Event::Message(message) => message.as_text().unwrap_or_default().to_owned(),
                other => return Err(format!("expected the wire count, got {other:?}").into()),
            };
            nws_close(ws)?;
            (measured, wire)
        }
    };
    let wire: f64 = wire
        .strip_prefix("wire=")
        .and_then(|bytes| bytes.parse().ok())
        .ok_or("no wire count")?;
    let n_f = n as f64;
    Ok(vec![
        measured.rate(n) * size as f64 / 1e6,
        wire / n_f,
        measured.client_ns_per(n),
        measured.server_share(),
    ])
}

pub(crate) fn json_1k(side: Side, ctx: &Ctx) -> BenchResult<Vec<f64>> {
    json(side, ctx, ctx.counts.json_1k, 1 << 10)
}

pub(crate) fn json_64k(side: Side, ctx: &Ctx) -> BenchResult<Vec<f64>> {
    json(side, ctx, ctx.counts.json_64k, 64 << 10)
}
