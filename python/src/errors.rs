//! Exceptions: the classes live in `nwebsocket/errors.py` (they need two bases, e.g.
//! `WebSocketError` and `ConnectionError`); this module picks one for each core error and raises
//! it.

use nwebsocket::Error;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

/// `nwebsocket.errors`, imported on first use.
static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// A new exception of the class `name` from `nwebsocket.errors`, with `message`.
///
/// If the module or class cannot be found (a broken install), the import error is returned
/// instead, which still says what is wrong.
pub(crate) fn new_error(py: Python<'_>, name: &str, message: impl Into<String>) -> PyErr {
    match exception(py, name, message.into()) {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

fn exception<'py>(py: Python<'py>, name: &str, message: String) -> PyResult<Bound<'py, PyAny>> {
    let module =
        ERRORS.get_or_try_init(py, || py.import("nwebsocket.errors").map(Bound::unbind))?;
    module.bind(py).getattr(name)?.call1((message,))
}

/// The exception instance for a core error: raised by a call, or handed to `onerror` and
/// `Error.error`. A rejected handshake carries `status` and `body` attributes.
pub(crate) fn to_exception<'py>(py: Python<'py>, err: &Error) -> Bound<'py, PyAny> {
    let exc = match exception(py, class_of(err), describe(err)) {
        Ok(exc) => exc,
        Err(import_failed) => return import_failed.into_value(py).into_bound(py).into_any(),
    };
    if let Error::Rejected { status, body, .. } = err {
        // Setting attributes on a fresh exception instance cannot fail.
        let _ = exc.setattr("status", *status);
        let _ = exc.setattr("body", pyo3::types::PyBytes::new(py, body));
    }
    exc
}

/// The core error as a `PyErr`, to raise.
pub(crate) fn to_pyerr(py: Python<'_>, err: &Error) -> PyErr {
    PyErr::from_value(to_exception(py, err))
}

/// The class in `nwebsocket.errors` for each kind of core error.
fn class_of(err: &Error) -> &'static str {
    match err {
        Error::InvalidUrl(_) | Error::CloseReasonTooLong(_) => "DOMSyntaxError",
        Error::InvalidCloseCode(_) => "InvalidAccessError",
        Error::InvalidConfig(_) => "OptionsError",
        Error::PingTooLong(_) => "PayloadTooLongError",
        Error::Connect(_) => "ConnectFailedError",
        Error::Timeout { .. } => "WebSocketTimeoutError",
        Error::Tls { .. } => "TLSError",
        Error::Rejected { .. } => "HandshakeRejectedError",
        Error::Handshake(_) => "HandshakeError",
        Error::Protocol(_) => "ProtocolError",
        Error::Io(_) => "ConnectionLostError",
        Error::Aborted => "AbortedError",
        Error::Closed => "InvalidStateError",
        Error::Internal(_) => "InternalError",
        _ => "WebSocketError",
    }
}

/// The error's message followed by each of its causes: `could not connect: 127.0.0.1:9:
/// Connection refused (os error 111)`.
pub(crate) fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some causes repeat their own source in their message; skip exact repeats.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
