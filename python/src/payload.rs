//! What `send()` accepts: `str` becomes a text message; `bytes`, `bytearray` and `memoryview`
//! become binary ones.

use nwebsocket::{Bytes, Message};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};

/// Above this size the payload is copied with the GIL released.
const COPY_WITHOUT_GIL: usize = 64 << 10;

/// The message for `data`.
///
/// # Errors
/// `TypeError` for any other type; `UnicodeEncodeError` for a `str` with lone surrogates.
pub(crate) fn to_message(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Message> {
    if let Ok(text) = data.cast::<PyString>() {
        return Ok(Message::from(text.to_cow()?.into_owned()));
    }
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return Ok(Message::Binary(copy(py, bytes.as_bytes())));
    }
    if let Ok(array) = data.cast::<PyByteArray>() {
        return Ok(Message::Binary(Bytes::from(array.to_vec())));
    }
    if data.is_instance_of::<PyMemoryView>() {
        // `bytes(view)` copies any contiguous or strided view into one buffer.
        let bytes = py.get_type::<PyBytes>().call1((data,))?;
        let bytes = bytes.cast::<PyBytes>()?;
        return Ok(Message::Binary(copy(py, bytes.as_bytes())));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "send() takes str, bytes, bytearray or memoryview, not {}",
        data.get_type().name()?
    )))
}

/// Copies `bytes`; a large payload with the GIL released (`bytes` objects are immutable, so
/// the slice stays valid meanwhile).
fn copy(py: Python<'_>, bytes: &[u8]) -> Bytes {
    if bytes.len() > COPY_WITHOUT_GIL {
        py.detach(|| Bytes::copy_from_slice(bytes))
    } else {
        Bytes::copy_from_slice(bytes)
    }
}
