//! The value of one option, read with its type checked: every wrong type or value is an
//! `OptionsError` that names the option, says what it expected, and shows what it got
//! (`connect_timeout must be a number of seconds, not 'x'`).

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyString};

use crate::errors::new_error;

/// `OptionsError: {key} must be {what}, not {repr(value)}`.
pub(crate) fn expected(py: Python<'_>, key: &str, what: &str, value: &Bound<'_, PyAny>) -> PyErr {
    let shown = value.repr().map_or_else(
        |_| "an unprintable value".to_owned(),
        |repr| repr.to_string(),
    );
    new_error(
        py,
        "OptionsError",
        format!("{key} must be {what}, not {shown}"),
    )
}

/// `OptionsError: {key} must be {what}, not a {type}`: for values that may carry credentials
/// (headers, a proxy URL), which the message must not quote.
pub(crate) fn expected_secret(
    py: Python<'_>,
    key: &str,
    what: &str,
    value: &Bound<'_, PyAny>,
) -> PyErr {
    let type_name = value.get_type().name().map_or_else(
        |_| "value of another type".to_owned(),
        |name| name.to_string(),
    );
    new_error(
        py,
        "OptionsError",
        format!(
            "{key} must be {what}, not a value of type {type_name} (not shown: it may hold a secret)"
        ),
    )
}

/// A number that is not a `bool` (`True` is an int to Python, but never a timeout or size).
fn number(value: &Bound<'_, PyAny>) -> bool {
    !value.is_instance_of::<PyBool>()
}

/// A positive number of seconds (an int or a float).
pub(crate) fn seconds(py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let Some(seconds) = value.extract::<f64>().ok().filter(|_| number(value)) else {
        return Err(expected(py, key, "a number of seconds", value));
    };
    match Duration::try_from_secs_f64(seconds) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(expected(py, key, "a positive number of seconds", value)),
    }
}

/// A positive whole number (a size in bytes or a count).
pub(crate) fn size(py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<usize> {
    match value.extract::<usize>() {
        Ok(size) if size > 0 && number(value) => Ok(size),
        _ => Err(expected(py, key, "a positive whole number", value)),
    }
}

/// A whole number of bytes, zero allowed.
pub(crate) fn count(py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<usize> {
    match value.extract::<usize>() {
        Ok(count) if number(value) => Ok(count),
        _ => Err(expected(
            py,
            key,
            "a whole number of bytes (0 or more)",
            value,
        )),
    }
}

/// A compression window size: 9 to 15 bits.
pub(crate) fn window_bits(py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<u8> {
    match value.extract::<u8>() {
        Ok(bits) if (9..=15).contains(&bits) && number(value) => Ok(bits),
        _ => Err(expected(py, key, "a number of bits from 9 to 15", value)),
    }
}

/// A `bool`, strictly: `"no"` or `0` for a flag is a mistake, not `True` or `False`.
pub(crate) fn flag(py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if !value.is_instance_of::<PyBool>() {
        return Err(expected(py, key, "True or False", value));
    }
    value.is_truthy()
}

/// A file path: `str` or `os.PathLike`.
pub(crate) fn path(py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    value
        .extract::<PathBuf>()
        .map_err(|_| expected(py, key, "a path (str or os.PathLike)", value))
}

/// PEM text: `str`, or `bytes` (also `bytearray`).
pub(crate) fn pem(py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.to_cow()?.as_bytes().to_vec());
    }
    value.extract::<Vec<u8>>().map_err(|_| {
        let what = "PEM text, as str or bytes";
        if key == "keydata" {
            expected_secret(py, key, what, value)
        } else {
            expected(py, key, what, value)
        }
    })
}

/// DER certificates: an iterable of `bytes`.
pub(crate) fn der_list(
    py: Python<'_>,
    key: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<Vec<Vec<u8>>> {
    let what = "an iterable of DER-encoded certificates (bytes)";
    let mut all = Vec::new();
    for der in value
        .try_iter()
        .map_err(|_| expected(py, key, what, value))?
    {
        let der = der?;
        let bytes = der
            .cast::<PyBytes>()
            .map_err(|_| expected(py, key, what, &der))?;
        all.push(bytes.as_bytes().to_vec());
    }
    Ok(all)
}

/// One string, or an iterable of strings.
pub(crate) fn strings(
    py: Python<'_>,
    key: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<Vec<String>> {
    let what = "a str or a list of str";
    if let Ok(one) = value.cast::<PyString>() {
        return Ok(vec![one.to_cow()?.into_owned()]);
    }
    let mut all = Vec::new();
    for item in value
        .try_iter()
        .map_err(|_| expected(py, key, what, value))?
    {
        let item = item?;
        all.push(
            item.extract::<String>()
                .map_err(|_| expected(py, key, what, &item))?,
        );
    }
    Ok(all)
}

/// `headers`: a dict, or an iterable of `(name, value)` pairs (for a repeated name).
pub(crate) fn header_pairs(
    py: Python<'_>,
    key: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<Vec<(String, String)>> {
    let what = "a dict of str to str, or (name, value) pairs of str";
    let pairs = match value.cast::<PyDict>() {
        Ok(dict) => dict.items().into_any(),
        Err(_) => value.clone(),
    };
    let mut all = Vec::new();
    for pair in pairs
        .try_iter()
        .map_err(|_| expected_secret(py, key, what, value))?
    {
        let pair = pair?;
        all.push(
            pair.extract()
                .map_err(|_| expected_secret(py, key, what, &pair))?,
        );
    }
    Ok(all)
}

/// `tcp_keepalive: (idle, interval, probes)`: two durations in seconds and a count.
pub(crate) fn keepalive(
    py: Python<'_>,
    key: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<(Duration, Duration, u32)> {
    let what = "a tuple (idle seconds, interval seconds, probes)";
    let not_a_triple = || expected(py, key, what, value);
    if value.is_instance_of::<PyString>() {
        return Err(not_a_triple());
    }
    let items = value
        .try_iter()
        .map_err(|_| not_a_triple())?
        .collect::<PyResult<Vec<_>>>()?;
    let [idle, interval, probes] = <[_; 3]>::try_from(items).map_err(|_| not_a_triple())?;
    let probes = u32::try_from(size(py, &format!("{key}[2]"), &probes)?)
        .map_err(|_| expected(py, &format!("{key}[2]"), "a count of probes", value))?;
    Ok((
        seconds(py, &format!("{key}[0]"), &idle)?,
        seconds(py, &format!("{key}[1]"), &interval)?,
        probes,
    ))
}

/// A pair of seconds, e.g. `reconnect_delays: (initial, max)`.
pub(crate) fn seconds_pair(
    py: Python<'_>,
    key: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<(Duration, Duration)> {
    let what = "a pair of seconds: (initial, max)";
    let not_a_pair = || expected(py, key, what, value);
    if value.is_instance_of::<PyString>() {
        return Err(not_a_pair());
    }
    let pair = value
        .try_iter()
        .map_err(|_| not_a_pair())?
        .collect::<PyResult<Vec<_>>>()?;
    let [first, second] = <[_; 2]>::try_from(pair).map_err(|_| not_a_pair())?;
    Ok((
        seconds(py, &format!("{key}[0]"), &first)?,
        seconds(py, &format!("{key}[1]"), &second)?,
    ))
}

/// One close code, or an iterable of them; the core checks that a server may send each.
pub(crate) fn close_codes(
    py: Python<'_>,
    key: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<Vec<u16>> {
    let what = "a close code (int) or a list of them";
    let bad = || expected(py, key, what, value);
    if value.is_instance_of::<PyInt>() && number(value) {
        return Ok(vec![value.extract::<u16>().map_err(|_| bad())?]);
    }
    if value.is_instance_of::<PyString>() || !number(value) {
        return Err(bad());
    }
    let mut codes = Vec::new();
    for code in value.try_iter().map_err(|_| bad())? {
        let code = code?;
        if !number(&code) {
            return Err(bad());
        }
        codes.push(code.extract::<u16>().map_err(|_| bad())?);
    }
    Ok(codes)
}

/// One of a few words, e.g. `offline_sends: "queue"`.
pub(crate) fn choice<'a>(
    py: Python<'_>,
    key: &str,
    value: &Bound<'_, PyAny>,
    choices: &[&'a str],
) -> PyResult<&'a str> {
    let given = value.extract::<String>().ok();
    choices
        .iter()
        .find(|choice| given.as_deref() == Some(**choice))
        .copied()
        .ok_or_else(|| {
            let listed: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
            expected(py, key, &listed.join(" or "), value)
        })
}

/// `proxy`: a URL (`str`), or `False` for no proxy, whatever the environment says.
pub(crate) fn proxy_url(
    py: Python<'_>,
    key: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<Option<String>> {
    if let Ok(url) = value.cast::<PyString>() {
        return Ok(Some(url.to_cow()?.into_owned()));
    }
    if value.is_instance_of::<PyBool>() && !value.is_truthy()? {
        return Ok(None);
    }
    Err(expected_secret(
        py,
        key,
        "a URL (str), or False for none",
        value,
    ))
}
