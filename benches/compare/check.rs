//! The check mode (`NWS_BENCH_CHECK=1`): shows that the push server is not what limits the
//! inbound workloads. Each round pushes the inbound count of 64-byte messages twice, in
//! alternating order: into a null reader (the WebSocket handshake, then plain `read`s into one
//! 1 MiB buffer, no parsing), which goes about as fast as the server and the kernel can on
//! this machine, and into the raw tungstenite client of the inbound workload. The server
//! passes when the median null-reader rate is at least twice the median tungstenite rate.

use std::io::Read;

use bytes::Bytes;
use tungstenite::Message;

use crate::meter::{Measured, Meter};
use crate::server;
use crate::workloads::{self, BenchResult, Ctx};
use crate::{fmt_value, summary};

/// How many times faster than tungstenite's client the server must be able to push.
const MARGIN: f64 = 2.0;

/// Runs the check for `rounds` rounds and prints what it saw.
///
/// # Errors
/// When a round fails, or when the server does not push [`MARGIN`] times what tungstenite
/// consumes.
pub(crate) fn run(ctx: &Ctx, rounds: usize) -> BenchResult<()> {
    let n = ctx.counts.inbound;
    let mut null = Vec::new();
    let mut raw = Vec::new();
    for round in 0..rounds {
        for null_first in [round % 2 == 0, round % 2 != 0] {
            let (label, measured) = if null_first {
                ("null reader", null_reader(ctx, n)?)
            } else {
                ("tungstenite", workloads::raw_inbound(ctx, n)?)
            };
            eprintln!(
                "[check] round {}/{rounds} {label:<11}  rate {} msg/s  server CPU {:.0}% \
                 ({} ns/msg)  client CPU {} ns/msg",
                round + 1,
                fmt_value(measured.rate(n)),
                measured.server_share(),
                fmt_value(measured.server.cpu_ns as f64 / n as f64),
                fmt_value(measured.client_ns_per(n)),
            );
            if null_first {
                null.push(measured);
            } else {
                raw.push(measured);
            }
        }
    }
    let rate = |runs: &[Measured]| summary(&runs.iter().map(|m| m.rate(n)).collect::<Vec<_>>());
    let share =
        |runs: &[Measured]| summary(&runs.iter().map(Measured::server_share).collect::<Vec<_>>());
    // What the server could push with a CPU of its own: messages per second of its CPU time.
    let capacity = |runs: &[Measured]| {
        summary(
            &runs
                .iter()
                .map(|m| n as f64 * 1e9 / m.server.cpu_ns.max(1) as f64)
                .collect::<Vec<_>>(),
        )
    };
    let cell = |(median, min, max): (f64, f64, f64)| {
        format!(
            "{} [{}-{}]",
            fmt_value(median),
            fmt_value(min),
            fmt_value(max)
        )
    };
    let ratio = rate(&null).0 / rate(&raw).0;
    println!();
    println!("push server check: {n} x 64 B, {rounds} rounds, median [min-max]");
    for (label, runs) in [("null reader", &null), ("tungstenite", &raw)] {
        println!(
            "  into {label}: {} msg/s, server CPU {} % of one CPU, server capacity {} msg/s \
             per CPU second",
            cell(rate(runs)),
            cell(share(runs)),
            cell(capacity(runs)),
        );
    }
    let verdict = if ratio >= MARGIN { "yes" } else { "NO" };
    println!("  null reader / tungstenite (medians): {ratio:.2}x, target >= {MARGIN}x: {verdict}");
    if ratio >= MARGIN {
        Ok(())
    } else {
        Err(format!("the server pushed only {ratio:.2}x what tungstenite reads").into())
    }
}

/// Takes the push server's `n` messages without parsing them: as fast as it can send.
fn null_reader(ctx: &Ctx, n: usize) -> BenchResult<Measured> {
    let mut ws = workloads::raw_open(&ctx.server.url(&format!("/push/{n}/64")))?;
    workloads::raw_ready(&mut ws)?;
    let expected = server::push_bytes(n, 64);
    let mut buffer = vec![0; 1 << 20];
    let meter = Meter::start();
    ws.send(Message::Binary(Bytes::from_static(b"go")))?;
    // The server sends nothing between `ready` and the frames, so tungstenite holds no bytes
    // of them: all of them come through the socket.
    let socket = ws.get_mut();
    let mut got = 0;
    while got < expected {
        match socket.read(&mut buffer)? {
            0 => return Err(format!("the server closed after {got} of {expected} bytes").into()),
            read => got += read,
        }
    }
    let measured = meter.stop();
    if got != expected {
        return Err(format!("{got} bytes, not {expected}").into());
    }
    workloads::raw_close(ws)?;
    Ok(measured)
}
