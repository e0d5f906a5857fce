//! The check mode (`NWS_BENCH_CHECK=1`): shows that the server is not what limits the inbound
//! and outbound workloads. Each round moves the workload's count of 64-byte messages four
//! times, in alternating order:
//!
//! - from the push server into a null reader (the WebSocket handshake, then plain `read`s
//!   into one 1 MiB buffer, no parsing), and into the raw tungstenite client of the inbound
//!   workload;
//! - into the sink server from a null writer (masked frames encoded before the clock starts,
//!   written in 256 KiB chunks), and from the raw tungstenite client of the outbound workload.
//!
//! First it checks the sink's frame counter against frames that tungstenite encodes. The null
//! client goes about as fast as the server and the kernel can on this machine. A
//! server passes when its median rate with the null client is at least twice the median rate
//! with tungstenite's.

use std::io::Read;

use bytes::Bytes;
use tungstenite::Message;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::frame_count::FrameCount;
use crate::meter::{Measured, Meter};
use crate::server::{self, FramesChunk};
use crate::workloads::{self, BenchResult, Ctx};
use crate::{fmt_value, summary};

/// How many times faster than tungstenite's client the server must be able to go.
const MARGIN: f64 = 2.0;

/// One server to check: how to measure it with the null client and with tungstenite's.
struct Pair {
    name: &'static str,
    /// Messages per measurement: the workload's count.
    n: usize,
    null_name: &'static str,
    null: fn(&Ctx, usize) -> BenchResult<Measured>,
    raw: fn(&Ctx, usize) -> BenchResult<Measured>,
}

/// Runs the check for `rounds` rounds and prints what it saw.
///
/// # Errors
/// When a round fails, or when a server does not go [`MARGIN`] times as fast as tungstenite.
pub(crate) fn run(ctx: &Ctx, rounds: usize) -> BenchResult<()> {
    frame_count_agrees()?;
    let pairs = [
        Pair {
            name: "push (inbound)",
            n: ctx.counts.inbound,
            null_name: "null reader",
            null: null_reader,
            raw: workloads::raw_inbound,
        },
        Pair {
            name: "sink (outbound)",
            n: ctx.counts.outbound,
            null_name: "null writer",
            null: null_writer,
            raw: |ctx, n| Ok(workloads::raw_outbound(ctx, n)?.0),
        },
    ];
    let mut failed = Vec::new();
    for pair in &pairs {
        let n = pair.n;
        let (null, raw) = measure(ctx, pair, n, rounds)?;
        let ratio = summary(&rates(&null, n)).0 / summary(&rates(&raw, n)).0;
        println!();
        println!(
            "{} server check: {n} x 64 B, {rounds} rounds, median [min-max]",
            pair.name
        );
        for (label, runs) in [(pair.null_name, &null), ("tungstenite", &raw)] {
            println!("  with {label}: {}", describe(runs, n));
        }
        let met = ratio >= MARGIN;
        println!(
            "  {} / tungstenite (medians): {ratio:.2}x, target >= {MARGIN}x: {}",
            pair.null_name,
            if met { "yes" } else { "NO" }
        );
        if !met {
            failed.push(format!("{} {ratio:.2}x", pair.name));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("too slow to measure tungstenite: {}", failed.join(", ")).into())
    }
}

/// `rounds` measurements with the null client and with tungstenite's, alternating which
/// goes first.
fn measure(
    ctx: &Ctx,
    pair: &Pair,
    n: usize,
    rounds: usize,
) -> BenchResult<(Vec<Measured>, Vec<Measured>)> {
    let mut null = Vec::new();
    let mut raw = Vec::new();
    for round in 0..rounds {
        for null_now in [round % 2 == 0, round % 2 != 0] {
            let (label, measured) = if null_now {
                (pair.null_name, (pair.null)(ctx, n)?)
            } else {
                ("tungstenite", (pair.raw)(ctx, n)?)
            };
            eprintln!(
                "[check {}] round {}/{rounds} {label:<11}  rate {} msg/s  server CPU {:.0}% \
                 ({} ns/msg)  client CPU {} ns/msg",
                pair.name,
                round + 1,
                fmt_value(measured.rate(n)),
                measured.server_share(),
                fmt_value(measured.server.cpu_ns as f64 / n as f64),
                fmt_value(measured.client_ns_per(n)),
            );
            if null_now {
                null.push(measured);
            } else {
                raw.push(measured);
            }
        }
    }
    Ok((null, raw))
}

fn rates(runs: &[Measured], n: usize) -> Vec<f64> {
    runs.iter().map(|m| m.rate(n)).collect()
}

/// The rate, the server's CPU share and what the server could do with a CPU of its own
/// (messages per second of its CPU time).
fn describe(runs: &[Measured], n: usize) -> String {
    let cell = |values: Vec<f64>| {
        let (median, min, max) = summary(&values);
        format!(
            "{} [{}-{}]",
            fmt_value(median),
            fmt_value(min),
            fmt_value(max)
        )
    };
    let shares = runs.iter().map(Measured::server_share).collect();
    let capacity = runs
        .iter()
        .map(|m| n as f64 * 1e9 / m.server.cpu_ns.max(1) as f64)
        .collect();
    format!(
        "{} msg/s, server CPU {} % of one CPU, server capacity {} msg per CPU second",
        cell(rates(runs, n)),
        cell(shares),
        cell(capacity)
    )
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

/// Gives the sink server `n` messages as fast as a client can: frames encoded beforehand,
/// written in large chunks; timed until the server says it counted them.
fn null_writer(ctx: &Ctx, n: usize) -> BenchResult<Measured> {
    let mut ws = workloads::raw_open(&ctx.server.url(&format!("/sink/{n}")))?;
    workloads::raw_ready(&mut ws)?;
    let chunk = FramesChunk::new(64, n, Some(*b"mask"))?;
    let meter = Meter::start();
    chunk.write(ws.get_mut(), n)?;
    match ws.read()? {
        Message::Text(text) if text.as_str() == "done" => {}
        other => return Err(format!("expected done, got {other:?}").into()),
    }
    let measured = meter.stop();
    workloads::raw_close(ws)?;
    Ok(measured)
}

/// The sink's frame counter against frames that tungstenite encodes: payloads of every length
/// class (7-bit, 16-bit, 64-bit), a fragmented message, a ping between its fragments, fed in
/// cuts of 1 byte to all of it; then a close frame, which it must refuse.
fn frame_count_agrees() -> BenchResult<()> {
    let frame = |opcode: OpCode, is_final: bool, len: usize, out: &mut Vec<u8>| {
        let header = FrameHeader {
            is_final,
            opcode,
            mask: Some(*b"mask"),
            ..FrameHeader::default()
        };
        header.format(len as u64, out)?;
        out.resize(out.len() + len, 0x80);
        Ok::<_, tungstenite::Error>(())
    };
    let lengths = [0, 1, 64, 125, 126, 127, 200, 65_535, 65_536, 70_000];
    let mut stream = Vec::new();
    for len in lengths {
        frame(OpCode::Data(Data::Binary), true, len, &mut stream)?;
    }
    frame(OpCode::Data(Data::Text), false, 10, &mut stream)?;
    frame(OpCode::Control(Control::Ping), true, 3, &mut stream)?;
    frame(OpCode::Data(Data::Continue), true, 127, &mut stream)?;
    let expected = lengths.len() + 1;
    for cut in [1, 2, 3, 7, 13, 64, 1000, stream.len()] {
        let mut count = FrameCount::default();
        for piece in stream.chunks(cut) {
            count.feed(piece)?;
        }
        if count.messages() != expected || !count.at_boundary() {
            return Err(format!(
                "the frame counter found {} of {expected} messages in cuts of {cut}",
                count.messages()
            )
            .into());
        }
    }
    let mut close = Vec::new();
    frame(OpCode::Control(Control::Close), true, 2, &mut close)?;
    if FrameCount::default().feed(&close).is_ok() {
        return Err("the frame counter took a close frame for data".into());
    }
    Ok(())
}
