//! `nwebsocket._nwebsocket`: the native half of the Python package `nwebsocket`.
//!
//! The package's `WebSocket` class (in `pysrc/nwebsocket/websocket.py`) keeps the 1.0 API and
//! wraps a [`connection::Connection`] from here, which owns one core `nwebsocket::Client`.
//!
//! # Threads and the GIL
//!
//! - The core's I/O thread never touches Python.
//! - Every call that can block (`recv`, `close`, `wait_closed`) releases the GIL; on the main
//!   thread it waits in 50 ms slices with a signal check between them, so Ctrl-C interrupts it.
//!   Waits are the core's blocking ones (`recv`, `recv_deadline`): the thread parks until an
//!   event comes, and never spins.
//! - Callbacks run on one dispatcher thread per connection ([`dispatch`]), a native thread
//!   started only once a callback is set, attached to the interpreter for its whole life
//!   (`threading` knows it by name). It waits for events without the GIL and without waking
//!   up, takes up to 256 at once, and takes the GIL once per batch.

#![forbid(unsafe_code)]

mod connect_hook;
mod connection;
mod dispatch;
mod errors;
mod events;
mod headers;
mod io_threads;
mod option_values;
mod options;
mod payload;
mod taking;
mod wait;

use pyo3::prelude::*;

/// The extension module.
///
/// `gil_used = false` (PyO3 0.30's default, spelled out): on a free-threaded CPython (3.14t
/// and later; PyO3 0.30 no longer supports 3.13t) importing it does not turn the GIL back on.
/// It needs no GIL for its own safety: every class is `frozen` and keeps its state behind
/// atomics and `Mutex`es (PyO3 requires such classes to be `Sync`), the statics are
/// `PyOnceLock`s, and no code relies on the GIL to exclude another thread.
#[pymodule(gil_used = false)]
fn _nwebsocket(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<connection::Connection>()?;
    module.add_class::<io_threads::IoThreads>()?;
    module.add_class::<events::Open>()?;
    module.add_class::<events::Message>()?;
    module.add_class::<events::Error>()?;
    module.add_class::<events::Close>()?;
    module.add("OPTIONS", options::KEYS.to_vec())?;
    Ok(())
}
