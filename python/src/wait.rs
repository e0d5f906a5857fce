//! Blocking without holding the GIL, interruptible by Ctrl-C on the main thread.

use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// How long the main thread waits between two checks for signals (Ctrl-C). Only a Python
/// caller that is blocked waits in slices; an idle connection costs no wake-ups.
const SLICE: Duration = Duration::from_millis(50);

/// The main thread's `threading.get_ident()`, and that function, looked up once.
static MAIN_THREAD: PyOnceLock<(u64, Py<PyAny>)> = PyOnceLock::new();

/// Whether the calling thread is the main thread, the only one Python delivers signals to.
fn on_main_thread(py: Python<'_>) -> bool {
    let found = MAIN_THREAD.get_or_try_init(py, || -> PyResult<(u64, Py<PyAny>)> {
        let threading = py.import("threading")?;
        let main: u64 = threading
            .call_method0("main_thread")?
            .getattr("ident")?
            .extract()?;
        Ok((main, threading.getattr("get_ident")?.unbind()))
    });
    match found {
        Ok((main, get_ident)) => get_ident
            .call0(py)
            .and_then(|ident| ident.extract::<u64>(py))
            .is_ok_and(|ident| ident == *main),
        Err(_) => false,
    }
}

/// The deadline `timeout` seconds from now; `None` waits for ever. A negative or NaN timeout
/// raises `ValueError`; one too large to represent is a wait for ever.
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    let Some(seconds) = timeout else {
        return Ok(None);
    };
    if seconds.is_nan() || seconds < 0.0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "timeout must be a non-negative number of seconds",
        ));
    }
    Ok(Duration::try_from_secs_f64(seconds)
        .ok()
        .and_then(|timeout| Instant::now().checked_add(timeout)))
}

/// Runs `step` with the GIL released until it returns `Some`, or until `deadline`.
///
/// `step(until)` blocks at most until `until` (for ever if `None`) and returns `None` if
/// nothing happened by then. On the main thread it is called in slices with a signal check
/// between them, so that Ctrl-C raises `KeyboardInterrupt` here; elsewhere it is called once.
///
/// # Errors
/// Whatever a signal handler raises, usually `KeyboardInterrupt`.
pub(crate) fn block_on<T, F>(
    py: Python<'_>,
    deadline: Option<Instant>,
    step: F,
) -> PyResult<Option<T>>
where
    T: Send,
    F: Fn(Option<Instant>) -> Option<T> + Sync,
{
    if !on_main_thread(py) {
        return Ok(py.detach(|| step(deadline)));
    }
    loop {
        let slice_end = Instant::now() + SLICE;
        let until = match deadline {
            Some(deadline) if deadline <= slice_end => Some(deadline),
            _ => Some(slice_end),
        };
        if let Some(done) = py.detach(|| step(until)) {
            return Ok(Some(done));
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Ok(None);
        }
        py.check_signals()?;
    }
}
