//! The `before_each_connect` option: a Python callable that the core calls before each
//! connection attempt (on its short-lived `nwebsocket-hook` thread) for that attempt's URL and
//! headers, e.g. a token that expires.

use std::fmt;

use nwebsocket::ConnectRequest;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::option_values::{expected, header_pairs};

/// Why the hook failed: the exception it raised (kept, to become the `__cause__` of the
/// `ConnectHookError`), or what was wrong with what it returned.
#[derive(Debug)]
pub(crate) struct HookFailed {
    message: String,
    /// The exception the callable raised, if it raised one.
    pub(crate) raised: Option<PyErr>,
}

impl fmt::Display for HookFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HookFailed {}

type HookResult = Result<ConnectRequest, Box<dyn std::error::Error + Send + Sync>>;

/// The core's hook for the callable `value`: attaches to the interpreter only for the call
/// and for reading its result, never while the core waits.
///
/// # Errors
/// `OptionsError` when `value` is not callable.
pub(crate) fn from_option(
    py: Python<'_>,
    key: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<impl Fn(u32) -> HookResult + Send + Sync + 'static> {
    if !value.is_callable() {
        return Err(expected(
            py,
            key,
            "a callable (attempt: int) -> (url, headers)",
            value,
        ));
    }
    let callable = value.clone().unbind();
    Ok(move |attempt: u32| {
        Python::try_attach(|py| call(py, callable.bind(py), attempt)).unwrap_or_else(|| {
            Err(Box::new(HookFailed {
                message: "before_each_connect was not called: the interpreter is shutting down"
                    .to_owned(),
                raised: None,
            }))
        })
    })
}

/// Calls the hook for `attempt` and reads its result: `None` (the URL and headers as
/// configured), a URL (`str`), or a `(url, headers)` pair, either of them `None`.
fn call(py: Python<'_>, callable: &Bound<'_, PyAny>, attempt: u32) -> HookResult {
    let result = callable.call1((attempt,)).map_err(|err| {
        let kind = err
            .get_type(py)
            .name()
            .map_or_else(|_| "an exception".to_owned(), |name| name.to_string());
        let text = err
            .value(py)
            .str()
            .map_or_else(|_| String::new(), |text| text.to_string());
        let message = if text.is_empty() {
            format!("before_each_connect raised {kind}")
        } else {
            format!("before_each_connect raised {kind}: {text}")
        };
        // Not boxed here: `?` boxes it once, so that `downcast_ref::<HookFailed>` finds it.
        HookFailed {
            message,
            raised: Some(err),
        }
    })?;
    request(py, &result).map_err(|err| {
        let text = err
            .value(py)
            .str()
            .map_or_else(|_| "an invalid result".to_owned(), |text| text.to_string());
        HookFailed {
            message: text,
            raised: None,
        }
        .into()
    })
}

/// The `ConnectRequest` for what the hook returned.
fn request(py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<ConnectRequest> {
    let mut request = ConnectRequest::new();
    if result.is_none() {
        return Ok(request);
    }
    if let Ok(url) = result.cast::<PyString>() {
        return Ok(request.url(url.to_cow()?.into_owned()));
    }
    let what = "None, a URL (str) or a (url, headers) tuple";
    let key = "before_each_connect's result";
    let Some(pair) = result.cast::<PyTuple>().ok().filter(|t| t.len() == 2) else {
        return Err(crate::option_values::expected_secret(py, key, what, result));
    };
    let url = pair.get_item(0)?;
    if !url.is_none() {
        let Ok(url) = url.cast::<PyString>() else {
            return Err(crate::option_values::expected_secret(
                py,
                "before_each_connect's url",
                "a str or None",
                &url,
            ));
        };
        request = request.url(url.to_cow()?.into_owned());
    }
    let headers = pair.get_item(1)?;
    if !headers.is_none() {
        for (name, value) in header_pairs(py, "before_each_connect's headers", &headers)? {
            request = request.header(name, value);
        }
    }
    Ok(request)
}
