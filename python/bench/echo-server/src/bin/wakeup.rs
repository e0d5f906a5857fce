//! What waking a parked thread costs on this machine: the floor under any round trip whose
//! waiting thread really sleeps (no spinning).
//!
//! One thread blocks on a channel (`recv`, so it parks in the kernel); another sends it the
//! time every 200 µs, a gap long enough for the receiver to be parked again. Each sample is
//! the time from the send to the moment the receiver runs. Prints one JSON line with the
//! p50 and p99 in microseconds.

#![forbid(unsafe_code)]

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SAMPLES: usize = 5_000;
const GAP: Duration = Duration::from_micros(200);

fn main() -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel::<Instant>();
    let receiver = std::thread::Builder::new()
        .name("parked".into())
        .spawn(move || {
            let mut woken = Vec::with_capacity(SAMPLES);
            while let Ok(sent) = rx.recv() {
                woken.push(sent.elapsed());
            }
            woken
        })?;
    for _ in 0..SAMPLES {
        // Spacing, not synchronisation: the receiver must have gone back to sleep.
        std::thread::sleep(GAP);
        if tx.send(Instant::now()).is_err() {
            break;
        }
    }
    drop(tx);
    let mut woken = receiver
        .join()
        .map_err(|_| std::io::Error::other("the receiver panicked"))?;
    woken.sort();
    let pick = |q: f64| {
        let index = ((woken.len() as f64 * q) as usize).min(woken.len().saturating_sub(1));
        woken.get(index).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
    };
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "{{\"wakeup_p50_us\": {:.1}, \"wakeup_p99_us\": {:.1}, \"samples\": {}}}",
        pick(0.5),
        pick(0.99),
        woken.len()
    )?;
    Ok(())
}
