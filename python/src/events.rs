//! The event objects of the polling API (`recv`, `try_recv`, `for event in ws`): `Open`,
//! `Message`, `Error` and `Close`, built from the core's [`Event`]s.
//!
//! They are values, as a test of a handler wants them: made with keyword arguments
//! (`Message(data="hi")`), equal when their fields are, hashable, printable as their
//! constructor call, matched by position (`case Close(code, reason)`), and picklable.

use nwebsocket::{CloseEvent, Event, Message as CoreMessage};
use pyo3::PyClass;
use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMemoryView, PySlice, PyString, PyTuple, PyType};

use crate::errors::to_exception;
use crate::headers::header_dict;

/// The longest payload, in characters or bytes, that `Message.__repr__` shows whole.
const REPR_DATA: usize = 64;

/// `==` and `!=` between two events of one class, by `fields` (a tuple); `NotImplemented`
/// otherwise.
fn compare<'py, T: PyClass>(
    this: &Bound<'py, T>,
    other: &Bound<'py, PyAny>,
    op: CompareOp,
    fields: impl Fn(&Bound<'py, T>) -> PyResult<Bound<'py, PyTuple>>,
) -> PyResult<Py<PyAny>> {
    let py = this.py();
    let Ok(other) = other.cast::<T>() else {
        return Ok(py.NotImplemented());
    };
    let equal = fields(this)?.eq(fields(other)?)?;
    match op {
        CompareOp::Eq => Ok(equal.into_pyobject(py)?.to_owned().into_any().unbind()),
        CompareOp::Ne => Ok((!equal).into_pyobject(py)?.to_owned().into_any().unbind()),
        _ => Ok(py.NotImplemented()),
    }
}

/// `(type(self), fields)`, for pickle.
fn reduce<'py, T: PyClass>(
    this: &Bound<'py, T>,
    fields: Bound<'py, PyTuple>,
) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
    Ok((this.as_any().get_type(), fields))
}

/// Python's `repr` of a value, for the events' own.
fn repr(value: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(value.repr()?.to_cow()?.into_owned())
}

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
    /// An `Open` event, e.g. for a test of a handler.
    #[new]
    #[pyo3(signature = (protocol = String::new(), extensions = String::new(), headers = None))]
    fn py_new(
        protocol: String,
        extensions: String,
        headers: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let mut pairs = Vec::new();
        if let Some(headers) = headers {
            for (name, value) in headers.iter() {
                let (Ok(name), Ok(value)) = (name.extract::<String>(), value.extract::<String>())
                else {
                    return Err(PyTypeError::new_err("headers must be a dict of str to str"));
                };
                pairs.push((name.to_ascii_lowercase(), value));
            }
        }
        Ok(Open {
            protocol,
            extensions,
            headers: pairs,
        })
    }

    #[classattr]
    fn __match_args__() -> (&'static str, &'static str, &'static str) {
        ("protocol", "extensions", "headers")
    }

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

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let protocol = PyString::new(py, &self.protocol);
        let extensions = PyString::new(py, &self.extensions);
        Ok(format!(
            "Open(protocol={}, extensions={})",
            repr(&protocol)?,
            repr(&extensions)?
        ))
    }

    fn __richcmp__(
        this: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        compare(this, other, op, Open::fields)
    }

    fn __hash__(this: &Bound<'_, Self>) -> PyResult<isize> {
        let open = this.get();
        let headers = PyTuple::new(this.py(), open.headers.iter())?;
        (open.protocol.as_str(), open.extensions.as_str(), headers)
            .into_pyobject(this.py())?
            .hash()
    }

    fn __reduce__<'py>(
        this: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        reduce(this, Open::fields(this)?)
    }
}

impl Open {
    fn fields<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let open = this.get();
        let headers = open.headers(this.py())?;
        (open.protocol.as_str(), open.extensions.as_str(), headers).into_pyobject(this.py())
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
    /// A `Message` event: `data` is `str` (text) or bytes-like (binary, kept as `bytes`).
    #[new]
    fn py_new(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = data.py();
        let data = if data.is_instance_of::<PyString>() || data.is_instance_of::<PyBytes>() {
            data.clone().unbind()
        } else if data.is_instance_of::<PyByteArray>() || data.is_instance_of::<PyMemoryView>() {
            py.get_type::<PyBytes>().call1((data,))?.unbind()
        } else {
            return Err(PyTypeError::new_err(format!(
                "Message data must be str or bytes, not {}",
                data.get_type().name()?
            )));
        };
        Ok(Message { data })
    }

    #[classattr]
    fn __match_args__() -> (&'static str,) {
        ("data",)
    }

    /// `Message(data='hi')`; a payload over 64 characters or bytes is cut, with its length.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let data = self.data.bind(py);
        let len = data.len()?;
        if len <= REPR_DATA {
            return Ok(format!("Message(data={})", repr(data)?));
        }
        let head = data.get_item(PySlice::new(py, 0, REPR_DATA as isize, 1))?;
        let unit = if data.is_instance_of::<PyString>() {
            "characters"
        } else {
            "bytes"
        };
        Ok(format!("Message(data={}..., {len} {unit})", repr(&head)?))
    }

    fn __richcmp__(
        this: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        compare(this, other, op, Message::fields)
    }

    fn __hash__(this: &Bound<'_, Self>) -> PyResult<isize> {
        this.get().data.bind(this.py()).hash()
    }

    fn __reduce__<'py>(
        this: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        reduce(this, Message::fields(this)?)
    }
}

impl Message {
    fn fields<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(this.py(), [this.get().data.bind(this.py())])
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
    /// An `Error` event for the exception `error`.
    #[new]
    fn py_new(error: &Bound<'_, PyAny>) -> PyResult<Self> {
        if !error.is_instance_of::<pyo3::exceptions::PyBaseException>() {
            return Err(PyTypeError::new_err(format!(
                "Error needs an exception instance, not {}",
                error.get_type().name()?
            )));
        }
        Ok(Error {
            error: error.clone().unbind(),
        })
    }

    #[classattr]
    fn __match_args__() -> (&'static str,) {
        ("error",)
    }

    /// The error's message, with its causes.
    #[getter]
    fn message(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.error.bind(py).str()?.to_cow()?.into_owned())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Error(error={})", repr(self.error.bind(py))?))
    }

    fn __richcmp__(
        this: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        compare(this, other, op, Error::key)
    }

    fn __hash__(this: &Bound<'_, Self>) -> PyResult<isize> {
        Error::key(this)?.hash()
    }

    fn __reduce__<'py>(
        this: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        reduce(this, Error::fields(this)?)
    }
}

impl Error {
    /// What `==` and `hash` compare: the exception's class and message (exceptions themselves
    /// compare by identity, and an `Error` that went through pickle is still the same event).
    fn key<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let error = this.get().error.bind(this.py());
        (error.get_type(), error.str()?).into_pyobject(this.py())
    }

    fn fields<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(this.py(), [this.get().error.bind(this.py())])
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
    /// A `Close` event. `reconnect` (seconds until the next attempt) and `attempt` go
    /// together: both given, or neither.
    #[new]
    #[pyo3(signature = (code, reason = String::new(), was_clean = true, reconnect = None, attempt = 0))]
    fn py_new(
        code: u16,
        reason: String,
        was_clean: bool,
        reconnect: Option<f64>,
        attempt: u32,
    ) -> PyResult<Self> {
        if reconnect.is_some_and(|delay| !(delay >= 0.0 && delay.is_finite())) {
            return Err(PyValueError::new_err(
                "reconnect must be a delay in seconds (0 or more), or None",
            ));
        }
        if reconnect.is_some() != (attempt > 0) {
            return Err(PyValueError::new_err(
                "reconnect and attempt go together: a delay with an attempt of 1 or more, \
                 or None with 0",
            ));
        }
        Ok(Close {
            code,
            reason,
            was_clean,
            reconnect,
            attempt,
        })
    }

    #[classattr]
    fn __match_args__() -> (&'static str, &'static str, &'static str) {
        ("code", "reason", "was_clean")
    }

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

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let python_bool = |b: bool| if b { "True" } else { "False" };
        let next = match self.reconnect {
            Some(delay) => format!(", reconnect={delay:.3}, attempt={}", self.attempt),
            None => String::new(),
        };
        Ok(format!(
            "Close(code={}, reason={}, was_clean={}{next})",
            self.code,
            repr(&PyString::new(py, &self.reason))?,
            python_bool(self.was_clean)
        ))
    }

    fn __richcmp__(
        this: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        compare(this, other, op, Close::fields)
    }

    fn __hash__(this: &Bound<'_, Self>) -> PyResult<isize> {
        Close::fields(this)?.hash()
    }

    fn __reduce__<'py>(
        this: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>)> {
        reduce(this, Close::fields(this)?)
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

    fn fields<'py>(this: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let close = this.get();
        (
            close.code,
            close.reason.as_str(),
            close.was_clean,
            close.reconnect,
            close.attempt,
        )
            .into_pyobject(this.py())
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
