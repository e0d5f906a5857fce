//! `IoThreads`: the core's [`nwebsocket::IoThreads`] as Python sees it, a few shared I/O
//! threads that serve many `WebSocket`s (given as `WebSocket(url, io_threads=io)` or the
//! `io_threads` option).

use pyo3::prelude::*;

use crate::errors::to_pyerr;
use crate::option_values::{expected, size};

/// A few shared native I/O threads, each serving many connections with one poller.
#[pyclass(frozen, module = "nwebsocket._nwebsocket", name = "IoThreads")]
#[derive(Debug)]
pub(crate) struct IoThreads {
    pub(crate) inner: nwebsocket::IoThreads,
}

#[pymethods]
impl IoThreads {
    /// Starts `threads` I/O threads, named `nwebsocket-io-0`, `nwebsocket-io-1`, ...
    ///
    /// Raises `OptionsError` (a `ValueError` and a `TypeError`) when `threads` is not a
    /// positive int, `IOThreadError` when a thread, its poller or its waker cannot be made.
    #[new]
    #[pyo3(signature = (threads))]
    fn new(py: Python<'_>, threads: &Bound<'_, PyAny>) -> PyResult<Self> {
        let threads = size(py, "threads", threads)?;
        let inner = nwebsocket::IoThreads::new(threads).map_err(|err| to_pyerr(py, &err))?;
        Ok(IoThreads { inner })
    }

    /// The number of threads.
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    /// The connections on these threads that have not finished yet (their last `Close` is
    /// not queued).
    #[getter]
    fn connections(&self) -> usize {
        self.inner.connections()
    }

    fn __repr__(&self) -> String {
        format!(
            "<IoThreads threads={} connections={}>",
            self.inner.threads(),
            self.inner.connections()
        )
    }
}

/// The core's `IoThreads` of the `io_threads` option or argument: an `IoThreads`, or `None`
/// for a thread of the connection's own.
///
/// # Errors
/// `OptionsError` naming `key` when `value` is neither.
pub(crate) fn from_option(
    py: Python<'_>,
    key: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<Option<nwebsocket::IoThreads>> {
    if value.is_none() {
        return Ok(None);
    }
    match value.cast::<IoThreads>() {
        Ok(io) => Ok(Some(io.get().inner.clone())),
        Err(_) => Err(expected(
            py,
            key,
            "an nwebsocket.IoThreads (or None)",
            value,
        )),
    }
}
