//! The event objects of the polling API (`recv`, `try_recv`, `for event in ws`): `Open`,
//! `Message`, `Error` and `Close`, built from the core's [`Event`]s.

use nwebsocket::{CloseEvent, Event, Message as CoreMessage};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::errors::to_exception;

/// The handshake succeeded (JS `open`).
#[pyclass(frozen, module = "nwebsocket", name = "Open")]
#[derive(Debug)]
pub(crate) struct Open {
    /// The subprotocol the server chose, or `""`.
    #[pyo3(get)]
    protocol: String,
    /// The extensions the server agreed to, as it named them, or `""`.
    #[pyo3(get)]
    extensions: String,
    headers: Vec<(String, String)>,
}

#[pymethods]
impl Open {
    /// The headers of the server's `101 Switching Protocols` response, names in lower case
    /// (a repeated header's values joined with `", "`).
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        header_dict(
            py,
            self.headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
    }

    fn __repr__(&self) -> String {
        format!("Open(protocol={:?})", self.protocol)
    }
}

/// A message from the server (JS `message`): `data` is `str` for text, `bytes` for binary.
#[pyclass(frozen, module = "nwebsocket", name = "Message")]
#[derive(Debug)]
pub(crate) struct Message {
    /// The payload: `str` or `bytes`.
    #[pyo3(get)]
    data: Py<PyAny>,
}

#[pymethods]
impl Message {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let data = self.data.bind(py);
        let len = data.len()?;
        let kind = if data.is_instance_of::<PyString>() {
            "text"
        } else {
            "binary"
        };
        Ok(format!("Message({kind}, {len} {})", units(kind, len)))
    }
}

fn units(kind: &str, len: usize) -> &'static str {
    match (kind, len) {
        ("text", 1) => "character",
        ("text", _) => "characters",
        (_, 1) => "byte",
        _ => "bytes",
    }
}

/// Why the connection failed (JS `error`); a `Close` always follows.
#[pyclass(frozen, module = "nwebsocket", name = "Error")]
#[derive(Debug)]
pub(crate) struct Error {
    /// The exception that describes the failure (a subclass of `nwebsocket.WebSocketError`).
    #[pyo3(get)]
    error: Py<PyAny>,
}

#[pymethods]
impl Error {
    /// The error's message, with its causes.
    #[getter]
    fn message(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.error.bind(py).str()?.to_cow()?.into_owned())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Error({})", self.error.bind(py).repr()?))
    }
}

/// The connection is over (JS `close`). Nothing follows, unless `reconnect` says when the
/// next attempt starts.
#[pyclass(frozen, module = "nwebsocket", name = "Close")]
#[derive(Debug)]
pub(crate) struct Close {
    /// The close code: the server's, 1005 if its close frame had none, 1006 when the
    /// connection ended without a close handshake.
    #[pyo3(get)]
    code: u16,
    /// The reason from the server's close frame, or `""`.
    #[pyo3(get)]
    reason: String,
    /// Whether close frames were exchanged; when not, an `Error` came just before.
    #[pyo3(get, name = "wasClean")]
    was_clean: bool,
    /// With the `reconnect` option: in how many seconds the next attempt starts, when one
    /// follows; `None` when this `Close` is the last event.
    #[pyo3(get)]
    reconnect: Option<f64>,
    /// Which attempt follows: 1 after a connection that had stayed open, counting up while
    /// attempts fail; 0 when none follows.
    #[pyo3(get)]
    attempt: u32,
}

#[pymethods]
impl Close {
    /// The same as `wasClean`, by the Python name.
    #[getter(was_clean)]
    fn was_clean_snake(&self) -> bool {
        self.was_clean
    }

    /// Whether this is the last event: no reconnection attempt follows.
    #[getter]
    fn is_final(&self) -> bool {
        self.reconnect.is_none()
    }

    fn __repr__(&self) -> String {
        let python_bool = |b: bool| if b { "True" } else { "False" };
        let next = match self.reconnect {
            Some(delay) => format!(", reconnect={delay:.3}, attempt={}", self.attempt),
            None => String::new(),
        };
        format!(
            "Close(code={}, reason={:?}, wasClean={}{next})",
            self.code,
            self.reason,
            python_bool(self.was_clean)
        )
    }
}

impl Close {
    pub(crate) fn new(close: &CloseEvent) -> Self {
        Close {
            code: close.code,
            reason: close.reason.clone(),
            was_clean: close.was_clean,
            reconnect: close.reconnect.map(|delay| delay.as_secs_f64()),
            attempt: close.attempt,
        }
    }
}

/// A message payload as Python sees it: `str` for text, `bytes` for binary.
pub(crate) fn data(py: Python<'_>, message: &CoreMessage) -> Py<PyAny> {
    match message.as_text() {
        Some(text) => PyString::new(py, text).into_any().unbind(),
        None => PyBytes::new(py, message.as_bytes()).into_any().unbind(),
    }
}

/// The event object for a core event, or `None` for a kind this version does not know.
pub(crate) fn to_python(py: Python<'_>, event: &Event) -> PyResult<Option<Py<PyAny>>> {
    let object = match event {
        Event::Open(open) => Open {
            protocol: open.protocol.clone().unwrap_or_default(),
            extensions: open.extensions().to_owned(),
            headers: open
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        }
        .into_pyobject(py)?
        .into_any(),
        Event::Message(message) => Message {
            data: data(py, message),
        }
        .into_pyobject(py)?
        .into_any(),
        Event::Error(err) => Error {
            error: to_exception(py, err).unbind(),
        }
        .into_pyobject(py)?
        .into_any(),
        Event::Close(close) => Close::new(close).into_pyobject(py)?.into_any(),
        _ => return Ok(None),
    };
    Ok(Some(object.unbind()))
}

/// HTTP headers as a dict: names in lower case (as the core keeps them), a repeated header's
/// values joined with `", "` (as JS `Headers.get` does).
pub(crate) fn header_dict<'py, N, V>(
    py: Python<'py>,
    headers: impl Iterator<Item = (N, V)>,
) -> PyResult<Bound<'py, PyDict>>
where
    N: AsRef<str>,
    V: AsRef<str>,
{
    let dict = PyDict::new(py);
    for (name, value) in headers {
        let (name, value) = (name.as_ref(), value.as_ref());
        let joined = match dict.get_item(name)? {
            Some(previous) => format!("{}, {value}", previous.extract::<String>()?),
            None => value.to_owned(),
        };
        dict.set_item(name, joined)?;
    }
    Ok(dict)
}
