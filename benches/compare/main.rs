//! nwebsocket against a plain blocking tungstenite client, measured in the same run against the
//! same in-process loopback server (issue 5). Every workload runs both clients alternately for
//! several rounds; the table at the end gives the median and the spread (min–max over rounds)
//! of each, their ratio and the target.
//!
//! ```text
//! cargo bench --bench compare                           # the full run, about 80 s
//! NWS_BENCH_SCALE=0.01 cargo bench --bench compare      # a quick smoke run
//! NWS_BENCH_ONLY=inbound,outbound cargo bench --bench compare
//! NWS_BENCH_CHECK=1 cargo bench --bench compare         # are the servers fast enough?
//! ```
//!
//! The server is never the slower side. The push server that feeds the inbound workloads
//! writes frames encoded before the clock starts, in 256 KiB chunks; the sink server of the
//! outbound workload counts messages from the frame headers without unmasking them.
//! `NWS_BENCH_CHECK=1` shows it: each server, with a client that does not parse or that wrote
//! its frames beforehand, must reach twice the rate of the raw tungstenite client. Every
//! throughput row gives the server's CPU share next to the client's CPU per message. The
//! client's CPU (its threads' time on a CPU, from `/proc`) is the steadier figure on a small
//! shared machine: when nwebsocket runs one more busy thread than tungstenite on two CPUs,
//! total CPU bounds the rate ratio. Connect + close gives no CPU figure: each nwebsocket I/O
//! thread ends inside the measured stretch, and `/proc` forgets the time of a thread that
//! ended; idle and many give the CPU of their waiting threads.
//!
//! Environment:
//! - `NWS_BENCH_SCALE` multiplies every count (default 1: 1 M messages, 20 k round trips, ...);
//! - `NWS_BENCH_ROUNDS` rounds per client and workload (default 5; idle and many at most 3);
//! - `NWS_BENCH_IDLE_SECS` the idle time (default 3, scaled down with `NWS_BENCH_SCALE`);
//! - `NWS_BENCH_ONLY` a comma-separated list of workloads: rtt, inbound (both: nwebsocket
//!   taking one message per `try_recv`/`recv_timeout` call, and through `events()`), outbound,
//!   bursts, large, json, connect, idle, many;
//! - `NWS_BENCH_CHECK=1` runs only the server check, for `NWS_BENCH_ROUNDS` rounds, and fails
//!   if the push or the sink server cannot go twice as fast as tungstenite's client;
//! - `NWS_BENCH_SIDE` `raw` or `nws` runs one client only (for a profiler; no table then);
//! - `NWS_BENCH_BUFFER`, `NWS_BENCH_QUEUE` nwebsocket's buffer sizes and queue capacity;
//! - `NWS_BENCH_IO_THREADS=N` runs nwebsocket's connections on N shared I/O threads
//!   (`IoThreads`) instead of a thread each (idle needs N = 1);
//! - `NWS_BENCH_MANY` the number of connections of the many workload (default 1,000): with
//!   10,000, the server (this process) and the client (a child) each raise their soft limit
//!   on open files to the hard one.
//!
//! Only 127.0.0.1 is used. Every wait is bounded, and a watchdog ends the process if a round
//! takes longer than two minutes.

#![allow(clippy::print_stdout, reason = "a bench prints its table")]

mod check;
mod frame_count;
mod meter;
mod server;
mod sys;
mod workloads;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use workloads::{BenchResult, Counts, Ctx, Side};

/// What a metric of nwebsocket must reach, relative to tungstenite's median or absolute.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Information only.
    None,
    /// nwebsocket ≥ factor × tungstenite.
    AtLeastTimes(f64),
    /// nwebsocket ≤ factor × tungstenite.
    AtMostTimes(f64),
    /// nwebsocket ≤ tungstenite + this much.
    AtMostPlus(f64),
    /// nwebsocket ≤ this value.
    AtMost(f64),
}

impl Target {
    fn describe(self, unit: &str) -> String {
        match self {
            Target::None => String::new(),
            Target::AtLeastTimes(f) => format!(">= {f}x"),
            Target::AtMostTimes(f) => format!("<= {f}x"),
            Target::AtMostPlus(d) => format!("<= base + {d} {unit}"),
            Target::AtMost(v) => format!("<= {v} {unit}"),
        }
    }

    fn met(self, raw: f64, nws: f64) -> Option<bool> {
        match self {
            Target::None => None,
            Target::AtLeastTimes(f) => Some(nws >= f * raw),
            Target::AtMostTimes(f) => Some(nws <= f * raw),
            Target::AtMostPlus(d) => Some(nws <= raw + d),
            Target::AtMost(v) => Some(nws <= v),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Metric {
    name: &'static str,
    unit: &'static str,
    target: Target,
}

const fn metric(name: &'static str, unit: &'static str, target: Target) -> Metric {
    Metric { name, unit, target }
}

type Run = fn(Side, &Ctx) -> BenchResult<Vec<f64>>;

#[derive(Debug)]
struct Workload {
    key: &'static str,
    title: String,
    rounds: usize,
    metrics: Vec<Metric>,
    run: Run,
}

/// The measurements of one metric over all rounds.
#[derive(Debug)]
struct Row {
    workload: String,
    metric: Metric,
    raw: Vec<f64>,
    nws: Vec<f64>,
}

/// When the current round must be over, in ms since `START`-relative clock; 0 when disarmed.
static DEADLINE_MS: AtomicU64 = AtomicU64::new(0);

fn main() -> BenchResult<()> {
    if let Ok(side) = std::env::var(workloads::CHILD_ENV) {
        return workloads::many_child(&side);
    }
    let explicit = std::env::var_os("NWS_BENCH_SCALE").is_some();
    if !std::env::args().any(|arg| arg == "--bench") && !explicit {
        // `cargo test --benches` runs bench targets without `--bench`: nothing to check here.
        println!("compare: run with `cargo bench --bench compare`");
        return Ok(());
    }

    let scale: f64 = env_or("NWS_BENCH_SCALE", 1.0)?;
    let rounds: usize = env_or("NWS_BENCH_ROUNDS", 5)?;
    let idle_secs: f64 = env_or("NWS_BENCH_IDLE_SECS", (3.0 * scale).clamp(0.3, 3.0))?;
    let only: Option<Vec<String>> = std::env::var("NWS_BENCH_ONLY")
        .ok()
        .map(|list| list.split(',').map(|s| s.trim().to_owned()).collect());
    let sides: Vec<Side> = match std::env::var("NWS_BENCH_SIDE").as_deref() {
        Ok("raw") => vec![Side::Raw],
        Ok("nws") => vec![Side::Nws],
        Ok(other) => return Err(format!("NWS_BENCH_SIDE must be raw or nws, not {other:?}").into()),
        Err(_) => vec![Side::Raw, Side::Nws],
    };
    let scaled = |n: f64, min: usize| ((n * scale).round() as usize).max(min);
    let counts = Counts {
        rtt: scaled(20_000.0, 200),
        inbound: scaled(1_000_000.0, 1_000),
        outbound: scaled(1_000_000.0, 1_000),
        large: scaled(200.0, 4),
        bursts: scaled(100.0, 4),
        connect: scaled(500.0, 10),
        many: env_or("NWS_BENCH_MANY", scaled(1_000.0, 10))?,
        json_1k: scaled(50_000.0, 100),
        json_64k: scaled(1_000.0, 10),
        idle: Duration::from_secs_f64(idle_secs),
    };
    let config = workloads::config_from_env()?;
    sys::raise_open_files_limit();
    let ctx = Ctx {
        server: server::Server::start()?,
        counts: counts.clone(),
        config,
        io: workloads::io_threads_from_env()?,
    };
    let started = Instant::now();
    start_watchdog(started)?;
    if std::env::var_os("NWS_BENCH_CHECK").is_some_and(|value| value != "0") {
        eprintln!("machine: {}", sys::machine());
        arm(started, Duration::from_secs(120 * 2 * rounds as u64));
        return check::run(&ctx, rounds);
    }

    let workloads = workloads(&counts, rounds);
    let machine = sys::machine();
    eprintln!("machine: {machine}");
    if let Some(io) = &ctx.io {
        eprintln!("nwebsocket on shared I/O threads: {}", io.threads());
    }
    let mut rows: Vec<Row> = Vec::new();
    for workload in &workloads {
        if only
            .as_ref()
            .is_some_and(|only| !only.iter().any(|key| key == workload.key))
        {
            continue;
        }
        let first_row = rows.len();
        for metric in &workload.metrics {
            rows.push(Row {
                workload: workload.title.clone(),
                metric: *metric,
                raw: Vec::new(),
                nws: Vec::new(),
            });
        }
        for round in 0..workload.rounds {
            // Alternate which client goes first, so that neither always runs warm or cold.
            let order = if round % 2 == 0 {
                [Side::Raw, Side::Nws]
            } else {
                [Side::Nws, Side::Raw]
            };
            for side in order.into_iter().filter(|side| sides.contains(side)) {
                arm(started, Duration::from_secs(120));
                let values = (workload.run)(side, &ctx)
                    .map_err(|err| format!("{} with {}: {err}", workload.key, side.name()))?;
                arm_off();
                let mut line = format!(
                    "[{}] round {}/{} {:<11}",
                    workload.key,
                    round + 1,
                    workload.rounds,
                    side.name()
                );
                for (i, value) in values.iter().enumerate() {
                    let row = &mut rows[first_row + i];
                    let _ = write!(line, "  {} {}", row.metric.name, fmt_value(*value));
                    match side {
                        Side::Raw => row.raw.push(*value),
                        Side::Nws => row.nws.push(*value),
                    }
                }
                eprintln!("{line}");
            }
        }
    }

    if sides.len() < 2 {
        return Ok(());
    }
    println!();
    println!("nwebsocket vs tungstenite (blocking, same run, same loopback server)");
    // The load at the start: the many-connections workload raises the average by itself.
    println!("machine: {machine} (load average at the start)");
    println!(
        "rounds: {rounds} (idle, many: {}), scale {scale}, nwebsocket config: {}, took {:.0} s",
        rounds.min(3),
        config_summary(&ctx),
        started.elapsed().as_secs_f64()
    );
    println!(
        "values: median [min-max] over rounds; ratio = nwebsocket / tungstenite (medians); \
         ~ marks a spread over 25% of the median"
    );
    println!();
    print_table(&rows);
    Ok(())
}

fn workloads(counts: &Counts, rounds: usize) -> Vec<Workload> {
    vec![
        Workload {
            key: "rtt",
            title: format!("RTT 32 B text x{}", counts.rtt),
            rounds,
            metrics: vec![
                metric("p50 recv", "us", Target::AtMostPlus(15.0)),
                metric("p99 recv", "us", Target::AtMostTimes(2.0)),
                metric("p50 try_recv", "us", Target::AtMostPlus(15.0)),
                metric("p99 try_recv", "us", Target::AtMostTimes(2.0)),
                metric("client CPU/rtt recv", "ns", Target::None),
            ],
            run: workloads::rtt,
        },
        Workload {
            key: "inbound",
            title: format!(
                "inbound {} x 64 B, nws try_recv/recv_timeout",
                counts.inbound
            ),
            rounds,
            metrics: inbound_metrics(),
            run: workloads::inbound_recv,
        },
        Workload {
            key: "inbound",
            title: format!("inbound {} x 64 B, nws events()", counts.inbound),
            rounds,
            metrics: inbound_metrics(),
            run: workloads::inbound_events,
        },
        Workload {
            key: "outbound",
            title: format!("outbound {} x 64 B", counts.outbound),
            rounds,
            metrics: vec![
                metric("rate", "msg/s", Target::AtLeastTimes(0.8)),
                metric("client CPU/msg", "ns", Target::AtMostTimes(1.5)),
                metric("server CPU", "%", Target::None),
                metric("client sleeps", "/1k msg", Target::None),
                metric("client preempted", "/1k msg", Target::None),
                metric("send calls", "ns/msg", Target::None),
            ],
            run: workloads::outbound,
        },
        Workload {
            key: "bursts",
            title: format!(
                "bursts {} x {} x 64 B",
                counts.bursts,
                workloads::BURST_MESSAGES
            ),
            rounds,
            metrics: vec![
                metric("burst p50", "us", Target::AtMostTimes(1.3)),
                metric("burst p99", "us", Target::None),
                metric("tail p50", "us", Target::AtMostPlus(100.0)),
                metric("client CPU/msg", "ns", Target::None),
            ],
            run: workloads::bursts,
        },
        Workload {
            key: "large",
            title: format!("echo 1 MiB x{}", counts.large),
            rounds,
            metrics: vec![
                metric("throughput", "MiB/s", Target::AtLeastTimes(0.8)),
                metric("client CPU/msg", "ns", Target::None),
            ],
            run: workloads::large,
        },
        Workload {
            key: "json",
            title: format!("JSON 1 KiB x{} (nws: deflate)", counts.json_1k),
            rounds,
            metrics: vec![
                metric("payload", "MB/s", Target::None),
                metric("wire/msg", "B", Target::None),
                metric("client CPU/msg", "ns", Target::None),
                metric("server CPU", "%", Target::None),
            ],
            run: workloads::json_1k,
        },
        Workload {
            key: "json",
            title: format!("JSON 64 KiB x{} (nws: deflate)", counts.json_64k),
            rounds,
            metrics: vec![
                metric("payload", "MB/s", Target::None),
                metric("wire/msg", "B", Target::None),
                metric("client CPU/msg", "ns", Target::None),
                metric("server CPU", "%", Target::None),
            ],
            run: workloads::json_64k,
        },
        Workload {
            key: "connect",
            title: format!("connect+close x{}", counts.connect),
            rounds,
            metrics: vec![
                metric("p50", "us", Target::AtMostTimes(1.5)),
                metric("p99", "us", Target::None),
                metric("mean", "us", Target::None),
            ],
            run: workloads::connect_close,
        },
        Workload {
            key: "idle",
            title: format!("idle {:.1} s", counts.idle.as_secs_f64()),
            rounds: rounds.min(3),
            metrics: vec![
                metric("waiting thread CPU", "us", Target::AtMostPlus(100.0)),
                metric("wake-ups", "", Target::AtMost(0.0)),
            ],
            run: workloads::idle,
        },
        Workload {
            key: "many",
            title: format!("{} idle connections", counts.many),
            rounds: rounds.min(3),
            metrics: vec![
                metric("RSS", "MiB", Target::AtMost(100.0)),
                metric("RSS/conn", "KiB", Target::None),
                metric("threads", "", Target::None),
                metric("CPU idle", "ms", Target::AtMost(1.0)),
                metric("wake-ups idle", "", Target::AtMost(0.0)),
            ],
            run: workloads::many,
        },
    ]
}

/// The figures of both inbound workloads (see `Measured::throughput`).
fn inbound_metrics() -> Vec<Metric> {
    vec![
        metric("rate", "msg/s", Target::AtLeastTimes(0.8)),
        metric("client CPU/msg", "ns", Target::AtMostTimes(1.3)),
        metric("server CPU", "%", Target::None),
        metric("client sleeps", "/1k msg", Target::None),
        metric("client preempted", "/1k msg", Target::None),
    ]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> BenchResult<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match std::env::var(name) {
        Ok(value) => Ok(value.parse()?),
        Err(_) => Ok(default),
    }
}

fn config_summary(ctx: &Ctx) -> String {
    format!(
        "read/write buffer {}/{} KiB, queue {}",
        ctx.config.read_buffer_size() >> 10,
        ctx.config.write_buffer_size() >> 10,
        ctx.config.event_queue_capacity()
    )
}

fn arm(started: Instant, limit: Duration) {
    let at = (started.elapsed() + limit).as_millis();
    DEADLINE_MS.store(u64::try_from(at).unwrap_or(u64::MAX), Ordering::SeqCst);
}

fn arm_off() {
    DEADLINE_MS.store(0, Ordering::SeqCst);
}

/// Ends the process if a round outlives its deadline: no workload may hang the bench.
fn start_watchdog(started: Instant) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("bench-watchdog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(500));
                let deadline = DEADLINE_MS.load(Ordering::SeqCst);
                if deadline != 0 && started.elapsed().as_millis() > u128::from(deadline) {
                    eprintln!("compare: a round took longer than its limit; giving up");
                    std::process::exit(2);
                }
            }
        })?;
    Ok(())
}

/// The median and the min and max of `values`.
fn summary(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let Some((&min, &max)) = sorted.first().zip(sorted.last()) else {
        return (f64::NAN, f64::NAN, f64::NAN);
    };
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    };
    (median, min, max)
}

fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_cell(values: &[f64]) -> (String, bool) {
    let (median, min, max) = summary(values);
    let noisy = median.abs() > 0.0 && (max - min) / median.abs() > 0.25;
    (
        format!(
            "{} [{}-{}]{}",
            fmt_value(median),
            fmt_value(min),
            fmt_value(max),
            if noisy { " ~" } else { "" }
        ),
        noisy,
    )
}

fn print_table(rows: &[Row]) {
    let header = [
        "workload",
        "metric",
        "unit",
        "tungstenite",
        "nwebsocket",
        "ratio",
        "target",
        "met",
    ];
    let mut lines: Vec<[String; 8]> = Vec::new();
    for row in rows {
        let (raw_median, _, _) = summary(&row.raw);
        let (nws_median, _, _) = summary(&row.nws);
        let ratio = if raw_median.abs() > 0.0 {
            format!("{:.2}", nws_median / raw_median)
        } else {
            "-".to_owned()
        };
        let met = match row.metric.target.met(raw_median, nws_median) {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        lines.push([
            row.workload.clone(),
            row.metric.name.to_owned(),
            row.metric.unit.to_owned(),
            fmt_cell(&row.raw).0,
            fmt_cell(&row.nws).0,
            ratio,
            row.metric.target.describe(row.metric.unit),
            met.to_owned(),
        ]);
    }
    let mut widths = header.map(str::len);
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: [&str; 8]| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = width - cell.chars().count();
            if (3..=5).contains(&i) {
                let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
            } else {
                let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.trim_end().to_owned()
    };
    println!("{}", render(header));
    println!(
        "{}",
        render(widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str))
    );
    let mut last_workload = "";
    for line in &lines {
        let mut cells = line.each_ref().map(String::as_str);
        if cells[0] == last_workload {
            cells[0] = "";
        } else {
            last_workload = &line[0];
        }
        println!("{}", render(cells));
    }
}
