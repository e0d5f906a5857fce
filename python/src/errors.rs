//! Exceptions: the classes live in `nwebsocket/errors.py` (they need two bases, e.g.
//! `WebSocketError` and `ConnectionError`); this module picks one for each core error and raises
//! it.

use nwebsocket::{ConnectFailures, Error, ProxyErrorKind, TimeoutKind, TlsErrorKind};
use pyo3::prelude::*;

use crate::connect_hook::HookFailed;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyModule};

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
/// `Error.error`. Some carry what a caller may act on, as attributes (see `errors.py`):
/// `WebSocketTimeoutError.kind`, `TLSError.kind` and `.alert`, `HandshakeRejectedError.status`,
/// `.headers` and `.body`, `ConnectFailedError.failures`, `IOThreadError.errno`,
/// `ProxyError.kind` and `.reply`, `ProxyRejectedError.status` and `.headers`,
/// `QueueFullError.queued`.
pub(crate) fn to_exception<'py>(py: Python<'py>, err: &Error) -> Bound<'py, PyAny> {
    let exc = match exception(py, class_of(err), describe(err)) {
        Ok(exc) => exc,
        Err(import_failed) => return import_failed.into_value(py).into_bound(py).into_any(),
    };
    if let Err(failed) = set_attributes(py, &exc, err) {
        // Only a broken interpreter (out of memory) gets here; the exception still says what
        // happened, without its details.
        failed.write_unraisable(py, Some(&exc));
    }
    exc
}

/// `status` and `headers` of a refusal (the server's or the proxy's), as the exception's
/// attributes.
fn set_status_and_headers<'a, N, V>(
    py: Python<'_>,
    exc: &Bound<'_, PyAny>,
    status: u16,
    headers: impl Iterator<Item = (&'a N, &'a V)>,
) -> PyResult<()>
where
    N: AsRef<str> + 'a,
    V: AsRef<[u8]> + 'a,
{
    exc.setattr("status", status)?;
    let headers =
        headers.map(|(name, value)| (name.as_ref(), String::from_utf8_lossy(value.as_ref())));
    exc.setattr("headers", crate::headers::header_dict(py, headers)?)
}

fn set_attributes(py: Python<'_>, exc: &Bound<'_, PyAny>, err: &Error) -> PyResult<()> {
    match err {
        Error::Timeout { kind, during } => {
            exc.setattr("kind", timeout_kind(*kind))?;
            exc.setattr("during", *during)?;
        }
        Error::Tls { kind, .. } => {
            exc.setattr("kind", tls_kind(*kind))?;
            if let TlsErrorKind::Alert(alert) = kind {
                exc.setattr("alert", *alert)?;
            }
        }
        Error::Rejected {
            status,
            headers,
            body,
        } => {
            set_status_and_headers(py, exc, *status, headers.iter())?;
            exc.setattr("body", PyBytes::new(py, body))?;
        }
        Error::ProxyRejected { status, headers } => {
            set_status_and_headers(py, exc, *status, headers.iter())?;
        }
        Error::Proxy { kind, .. } => {
            exc.setattr("kind", proxy_kind(*kind))?;
            if let ProxyErrorKind::Reply(code) = kind {
                exc.setattr("reply", *code)?;
            }
        }
        Error::ConnectHook(source) => {
            // The exception the hook raised becomes the cause, with its traceback.
            if let Some(raised) = source
                .downcast_ref::<HookFailed>()
                .and_then(|failed| failed.raised.as_ref())
            {
                exc.setattr("__cause__", raised.value(py))?;
            }
        }
        Error::QueueFull(queued) => {
            exc.setattr("queued", *queued)?;
        }
        Error::Connect(source) => {
            let failures = PyList::empty(py);
            if let Some(tried) = source.downcast_ref::<ConnectFailures>() {
                for (addr, why) in tried.iter() {
                    let address = (addr.ip().to_string(), addr.port());
                    failures.append((address, os_error(py, why)?))?;
                }
            }
            exc.setattr("failures", failures)?;
        }
        Error::Runtime(io) => {
            exc.setattr("errno", io.raw_os_error())?;
        }
        _ => {}
    }
    Ok(())
}

/// `TimeoutKind` as Python sees it: `"connect"`, `"close"` or `"dead_peer"`.
fn timeout_kind(kind: TimeoutKind) -> String {
    match kind {
        TimeoutKind::Connect => "connect".into(),
        TimeoutKind::Close => "close".into(),
        TimeoutKind::DeadPeer => "dead_peer".into(),
        // A kind added to the core later: its name, as the ones above are spelled.
        other => snake_case(&format!("{other:?}")),
    }
}

/// `TlsErrorKind` as Python sees it: `"unknown_issuer"`, `"wrong_name"`, `"expired"`,
/// `"certificate_required"`, `"alert"` (the number in `alert`) or `"other"`.
fn tls_kind(kind: TlsErrorKind) -> String {
    match kind {
        TlsErrorKind::UnknownIssuer => "unknown_issuer".into(),
        TlsErrorKind::WrongName => "wrong_name".into(),
        TlsErrorKind::Expired => "expired".into(),
        TlsErrorKind::CertificateRequired => "certificate_required".into(),
        TlsErrorKind::Alert(_) => "alert".into(),
        TlsErrorKind::Other => "other".into(),
        other => {
            let debug = format!("{other:?}");
            snake_case(debug.split('(').next().unwrap_or("other"))
        }
    }
}

/// `ProxyErrorKind` as Python sees it: `"auth_required"`, `"auth_failed"`, the SOCKS5 replies
/// (`"general_failure"`, `"not_allowed"`, `"network_unreachable"`, `"host_unreachable"`,
/// `"connection_refused"`, `"ttl_expired"`, `"command_not_supported"`,
/// `"address_type_not_supported"`, `"reply"` for an unassigned one, its number in `reply`),
/// `"disconnected"` or `"protocol"`.
fn proxy_kind(kind: ProxyErrorKind) -> String {
    match kind {
        ProxyErrorKind::AuthRequired => "auth_required".into(),
        ProxyErrorKind::AuthFailed => "auth_failed".into(),
        ProxyErrorKind::GeneralFailure => "general_failure".into(),
        ProxyErrorKind::NotAllowed => "not_allowed".into(),
        ProxyErrorKind::NetworkUnreachable => "network_unreachable".into(),
        ProxyErrorKind::HostUnreachable => "host_unreachable".into(),
        ProxyErrorKind::ConnectionRefused => "connection_refused".into(),
        ProxyErrorKind::TtlExpired => "ttl_expired".into(),
        ProxyErrorKind::CommandNotSupported => "command_not_supported".into(),
        ProxyErrorKind::AddressTypeNotSupported => "address_type_not_supported".into(),
        ProxyErrorKind::Reply(_) => "reply".into(),
        ProxyErrorKind::Disconnected => "disconnected".into(),
        ProxyErrorKind::Protocol => "protocol".into(),
        other => {
            let debug = format!("{other:?}");
            snake_case(debug.split('(').next().unwrap_or("other"))
        }
    }
}

/// `UnknownIssuer` -> `unknown_issuer`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The `OSError` Python would raise for `err`: `OSError(errno, strerror)`, which Python turns
/// into its subclass for that errno (`ConnectionRefusedError` for `ECONNREFUSED`, ...).
fn os_error<'py>(py: Python<'py>, err: &std::io::Error) -> PyResult<Bound<'py, PyAny>> {
    let os_error = py.get_type::<pyo3::exceptions::PyOSError>();
    match err.raw_os_error() {
        Some(code) => {
            let text = err.to_string();
            let suffix = format!(" (os error {code})");
            let strerror = text.strip_suffix(&suffix).unwrap_or(&text);
            os_error.call1((code, strerror))
        }
        None => os_error.call1((err.to_string(),)),
    }
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
        Error::ProxyRejected { .. } => "ProxyRejectedError",
        Error::Proxy { .. } => "ProxyError",
        Error::Handshake(_) => "HandshakeError",
        Error::Protocol(_) => "ProtocolError",
        Error::Io(_) => "ConnectionLostError",
        Error::Aborted => "AbortedError",
        Error::Closed | Error::NotOpen => "InvalidStateError",
        Error::QueueFull(_) => "QueueFullError",
        Error::Runtime(_) => "IOThreadError",
        Error::Internal(_) => "InternalError",
        Error::ConnectHook(_) => "ConnectHookError",
        Error::Redirect(_) => "RedirectError",
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
