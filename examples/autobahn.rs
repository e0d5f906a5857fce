//! An Autobahn|Testsuite client driven through the public API (the event queue), for
//! conformance runs: `../shared/autobahn/run -- cargo run --release --example autobahn`.
//!
//! Reads `AUTOBAHN_URL` and `AUTOBAHN_AGENT`, asks the fuzzing server for the case count,
//! runs every case echoing each message until the close, and exits 0. With `--io-threads N`
//! the cases run on N shared I/O threads (`IoThreads`) instead of a thread each.
#![allow(clippy::print_stdout, reason = "an example prints what it does")]

use std::error::Error;
use std::time::Duration;

use nwebsocket::{Client, Config, Event, IoThreads};

fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".into());
    let agent = std::env::var("AUTOBAHN_AGENT").unwrap_or_else(|_| "nwebsocket".into());
    let config = Config::builder()
        .max_message_size(64 << 20)
        .max_frame_size(64 << 20)
        .close_timeout(Duration::from_secs(2))
        .build()?;

    let io = match std::env::args().skip_while(|a| a != "--io-threads").nth(1) {
        Some(threads) => Some(IoThreads::new(threads.parse()?)?),
        None => None,
    };

    let count = case_count(&url)?;
    println!("running {count} cases as {agent}");
    for case in 1..=count {
        let case_url = format!("{url}/runCase?case={case}&agent={agent}");
        let ws = match &io {
            Some(io) => io.connect_with_config(&case_url, config.clone())?,
            None => Client::connect_with_config(&case_url, config.clone())?,
        };
        for event in &ws {
            if let Event::Message(message) = event {
                // The server may already be closing: a refused echo is part of some cases.
                let _ = ws.send(message);
            }
        }
    }
    Ok(())
}

fn case_count(url: &str) -> Result<u32, Box<dyn Error>> {
    let ws = Client::connect(&format!("{url}/getCaseCount"))?;
    let mut count = None;
    for event in &ws {
        match event {
            Event::Message(message) => count = message.as_text().and_then(|t| t.parse().ok()),
            Event::Error(err) => return Err(err.into()),
            _ => {}
        }
    }
    count.ok_or_else(|| "the server sent no case count".into())
}
