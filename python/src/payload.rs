//! What `send()` accepts: `str` becomes a text message; `bytes`, `bytearray` and `memoryview`
//! become binary ones.

use nwebsocket::{Bytes, Message};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};

/// The message for `data`.
///
/// A `bytes` payload is not copied: the message holds a reference to the `bytes` object
/// (immutable), and the core frames it from there. `bytearray` and `memoryview` may change
/// after `send()` returns, so they are copied once; `str` is encoded to UTF-8 once.
///
/// # Errors
/// `TypeError` for any other type; `UnicodeEncodeError` for a `str` with lone surrogates.
pub(crate) fn to_message(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Message> {
    if let Ok(text) = data.cast::<PyString>() {
        return Ok(Message::from(text.to_cow()?.into_owned()));
    }
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return Ok(Message::Binary(shared(bytes.clone())));
    }
    if let Ok(array) = data.cast::<PyByteArray>() {
        return Ok(Message::Binary(Bytes::from(array.to_vec())));
    }
    if data.is_instance_of::<PyMemoryView>() {
        // `bytes(view)` copies any contiguous or strided view into one buffer, which is then
        // shared as a `bytes` is.
        let bytes = py.get_type::<PyBytes>().call1((data,))?;
        return Ok(Message::Binary(shared(bytes.cast_into::<PyBytes>()?)));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "send() takes str, bytes, bytearray or memoryview, not {}",
        data.get_type().name()?
    )))
}

/// The payload of a `bytes` object, without a copy: the `Bytes` keeps the object alive. A
/// large message may be dropped later on the core's I/O thread, without the GIL; PyO3 then
/// defers the reference count's decrement to the next call into the module.
fn shared(bytes: Bound<'_, PyBytes>) -> Bytes {
    Bytes::from_owner(PyBackedBytes::from(bytes))
}
