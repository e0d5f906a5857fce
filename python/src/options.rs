//! The `options` argument of `WebSocket(url, options)`: a dict with pythonic names, turned into
//! the core's `Config`.

use std::time::Duration;

use nwebsocket::{Config, ConfigBuilder};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::errors::new_error;

/// Every key `options` may hold. `maxPayload` is the 1.0 package's name for
/// `max_message_size`.
pub(crate) const KEYS: [&str; 14] = [
    "headers",
    "subprotocols",
    "connect_timeout",
    "close_timeout",
    "max_message_size",
    "maxPayload",
    "max_frame_size",
    "event_queue_capacity",
    "tcp_nodelay",
    "read_buffer_size",
    "write_buffer_size",
    "root_certificates",
    "cafile",
    "spin_wait",
];

/// How long a waiting caller checks for an event before it parks, by default (see
/// [`Settings::spin`]).
const DEFAULT_SPIN: Duration = Duration::from_micros(100);

/// The longest `spin_wait` accepted.
const MAX_SPIN: Duration = Duration::from_millis(10);

/// What `options` sets: the core's config, and what the Python layer itself uses.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The core's connection settings.
    pub(crate) config: Config,
    /// How long `recv()` and the dispatcher keep checking for an event, yielding the CPU
    /// between checks, before they park their thread. Waking a parked thread costs about
    /// 100 µs on the 2-vCPU VM we measured on, more than the loopback round trip itself; a
    /// spin about as long as a wake-up saves it when the answer is about to come, and costs
    /// at most this much CPU per wait (loopback RTT p50 150 -> 25-80 µs, and less CPU per
    /// message, in `python/bench`).
    pub(crate) spin: Duration,
}

/// The core's default frame limit; lowered to the message limit when that is smaller.
const DEFAULT_MAX_FRAME_SIZE: usize = 16 << 20;

/// Reads `options` (`None` or a dict).
///
/// # Errors
/// `TypeError` if `options` is not a dict or a value has the wrong type; `OptionsError` (a
/// `ValueError`) for an unknown key, a bad value, or a combination the core refuses.
pub(crate) fn settings(py: Python<'_>, options: Option<&Bound<'_, PyAny>>) -> PyResult<Settings> {
    let Some(options) = options.filter(|options| !options.is_none()) else {
        return Ok(Settings {
            config: Config::default(),
            spin: DEFAULT_SPIN,
        });
    };
    let options = options
        .cast::<PyDict>()
        .map_err(|_| pyo3::exceptions::PyTypeError::new_err("options must be a dict (or None)"))?;
    let mut builder = Config::builder();
    let mut message_limit = None;
    let mut frame_limit = None;
    let mut spin = DEFAULT_SPIN;
    for (key, value) in options.iter() {
        let key: String = key
            .extract()
            .map_err(|_| new_error(py, "OptionsError", "option names must be strings"))?;
        if value.is_none() {
            // None means "the default", for every option.
            if !KEYS.contains(&key.as_str()) {
                return Err(unknown(py, &key));
            }
            continue;
        }
        builder = match key.as_str() {
            "headers" => headers(py, builder, &value)?,
            "subprotocols" => {
                for protocol in strings(&value, "subprotocols")? {
                    builder = builder.protocol(protocol);
                }
                builder
            }
            "connect_timeout" => builder.connect_timeout(seconds(py, &key, &value)?),
            "close_timeout" => builder.close_timeout(seconds(py, &key, &value)?),
            "max_message_size" | "maxPayload" => {
                if message_limit.is_some() {
                    return Err(new_error(
                        py,
                        "OptionsError",
                        "give max_message_size or maxPayload, not both",
                    ));
                }
                message_limit = Some(size(py, &key, &value)?);
                builder
            }
            "max_frame_size" => {
                frame_limit = Some(size(py, &key, &value)?);
                builder
            }
            "event_queue_capacity" => builder.event_queue_capacity(size(py, &key, &value)?),
            "tcp_nodelay" => builder.tcp_nodelay(value.extract()?),
            "read_buffer_size" => builder.read_buffer_size(size(py, &key, &value)?),
            "write_buffer_size" => builder.write_buffer_size(size(py, &key, &value)?),
            "root_certificates" => {
                for der in value.try_iter()? {
                    let der = der?;
                    let der = der.cast::<PyBytes>().map_err(|_| {
                        pyo3::exceptions::PyTypeError::new_err(
                            "root_certificates must be an iterable of DER-encoded bytes",
                        )
                    })?;
                    builder = builder.root_certificate(der.as_bytes());
                }
                builder
            }
            "cafile" => cafile(py, builder, &value)?,
            "spin_wait" => {
                let seconds: f64 = value.extract()?;
                spin = match Duration::try_from_secs_f64(seconds) {
                    Ok(duration) if duration <= MAX_SPIN => duration,
                    _ => {
                        return Err(new_error(
                            py,
                            "OptionsError",
                            format!("spin_wait must be 0 to 0.01 seconds, not {seconds}"),
                        ));
                    }
                };
                builder
            }
            _ => return Err(unknown(py, &key)),
        };
    }
    if let Some(limit) = message_limit {
        builder = builder.max_message_size(limit);
    }
    if let Some(limit) = frame_limit.or(message_limit.map(|m| m.min(DEFAULT_MAX_FRAME_SIZE))) {
        builder = builder.max_frame_size(limit);
    }
    let config = builder
        .build()
        .map_err(|err| crate::errors::to_pyerr(py, &err))?;
    Ok(Settings { config, spin })
}

fn unknown(py: Python<'_>, key: &str) -> PyErr {
    new_error(
        py,
        "OptionsError",
        format!(
            "unknown option {key:?}; the options are: {}",
            KEYS.join(", ")
        ),
    )
}

/// A positive number of seconds.
fn seconds(py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let seconds: f64 = value.extract()?;
    match Duration::try_from_secs_f64(seconds) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(new_error(
            py,
            "OptionsError",
            format!("{key} must be a positive number of seconds, not {seconds}"),
        )),
    }
}

/// A positive size or count.
fn size(py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<usize> {
    match value.extract::<usize>() {
        Ok(size) if size > 0 => Ok(size),
        _ => Err(new_error(
            py,
            "OptionsError",
            format!("{key} must be a positive integer, not {value}"),
        )),
    }
}

/// One string, or an iterable of strings.
fn strings(value: &Bound<'_, PyAny>, key: &str) -> PyResult<Vec<String>> {
    if let Ok(one) = value.cast::<PyString>() {
        return Ok(vec![one.to_cow()?.into_owned()]);
    }
    let mut all = Vec::new();
    for item in value.try_iter()? {
        all.push(item?.extract::<String>().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!("{key} must be strings"))
        })?);
    }
    Ok(all)
}

/// `headers`: a dict, or an iterable of `(name, value)` pairs (for a repeated name).
fn headers(
    py: Python<'_>,
    mut builder: ConfigBuilder,
    value: &Bound<'_, PyAny>,
) -> PyResult<ConfigBuilder> {
    let pairs = match value.cast::<PyDict>() {
        Ok(dict) => dict.items().into_any(),
        Err(_) => value.clone(),
    };
    for pair in pairs.try_iter()? {
        let (name, value): (String, String) = pair?.extract().map_err(|_| {
            new_error(
                py,
                "OptionsError",
                "headers must be a dict of str to str, or (name, value) pairs",
            )
        })?;
        builder = builder.header(name, value);
    }
    Ok(builder)
}

/// `cafile`: the path of a PEM file whose certificates are trusted as roots for `wss://`.
fn cafile(
    py: Python<'_>,
    mut builder: ConfigBuilder,
    value: &Bound<'_, PyAny>,
) -> PyResult<ConfigBuilder> {
    let path: std::path::PathBuf = value.extract()?;
    let certificates = CertificateDer::pem_file_iter(&path)
        .map_err(|err| {
            new_error(
                py,
                "OptionsError",
                format!("cannot read cafile {}: {err}", path.display()),
            )
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| {
            new_error(
                py,
                "OptionsError",
                format!("cannot parse cafile {}: {err}", path.display()),
            )
        })?;
    if certificates.is_empty() {
        return Err(new_error(
            py,
            "OptionsError",
            format!("cafile {} holds no certificate", path.display()),
        ));
    }
    for certificate in certificates {
        builder = builder.root_certificate(certificate.as_ref());
    }
    Ok(builder)
}
