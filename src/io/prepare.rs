//! Before a connection attempt: the user's `before_each_connect` hook, on a short-lived thread
//! of its own, so that user code never runs on the I/O thread and a slow hook cannot hold up a
//! `close()` (the attempt just stops listening). Its answer is checked there too: the URL
//! parsed and routed, the headers validated.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use crate::config::{Config, ConnectHook, checked_header};
use crate::error::{Error, Result, panic_message};
use crate::shared::Shared;
use crate::target::Target;

/// What the hook asked for: the attempt's target and the headers that replace the configured
/// ones of the same name.
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) target: Target,
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
}

/// Starts the hook for reconnect attempt `attempt`; the answer arrives on the receiver, and
/// the driver's waker rings then.
///
/// # Errors
/// [`Error::Runtime`] when the thread cannot start.
pub(super) fn call_hook(
    hook: ConnectHook,
    attempt: u32,
    target: Target,
    config: Config,
    shared: &Arc<Shared>,
) -> Result<flume::Receiver<Result<Prepared>>> {
    let (tx, rx) = flume::bounded(1);
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("nwebsocket-hook".into())
        .spawn(move || {
            let prepared = prepare(&hook, attempt, &target, &config);
            // The attempt may be gone (closed, timed out): then nobody listens.
            if tx.send(prepared).is_ok() {
                shared.wake_driver_always();
            }
        })
        .map_err(Error::Runtime)?;
    Ok(rx)
}

fn prepare(hook: &ConnectHook, attempt: u32, base: &Target, config: &Config) -> Result<Prepared> {
    let failed = |err: Error| Error::ConnectHook(Box::new(err));
    let request = match std::panic::catch_unwind(AssertUnwindSafe(|| hook.call(attempt))) {
        Ok(Ok(request)) => request,
        Ok(Err(err)) => return Err(Error::ConnectHook(err)),
        Err(panic) => {
            let why = format!("it panicked: {}", panic_message(&*panic));
            return Err(Error::ConnectHook(why.into()));
        }
    };
    let target = match &request.url {
        Some(url) => base.rerouted(url, config).map_err(failed)?,
        None => base.clone(),
    };
    let headers = request
        .headers
        .iter()
        .map(|(name, value)| checked_header(name, value))
        .collect::<std::result::Result<Vec<_>, String>>()
        .map_err(|why| failed(Error::InvalidConfig(why)))?;
    Ok(Prepared { target, headers })
}
