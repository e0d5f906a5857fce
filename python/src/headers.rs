//! HTTP headers as Python sees them: a `dict`, for `Open.headers` and the `headers` of a
//! refused handshake or proxy tunnel.

use pyo3::prelude::*;
use pyo3::types::PyDict;

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
