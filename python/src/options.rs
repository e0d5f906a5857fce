//! The `options` argument of `WebSocket(url, options)`: a dict with pythonic names, turned into
//! the core's `Config`.

use std::path::PathBuf;

use nwebsocket::{Config, ConfigBuilder, OfflineSends};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::connect_hook;
use crate::errors::new_error;
use crate::option_values::{
    choice, close_codes, count, der_list, expected, flag, header_pairs, keepalive, path, pem,
    proxy_url, seconds, seconds_pair, size, strings, window_bits,
};

/// Every key `options` may hold. `maxPayload` is the 1.0 package's name for
/// `max_message_size`; `cafile`, `cadata`, `certfile` and `keyfile` are the names of Python's
/// `ssl` module; `io_threads` picks where the connection's I/O runs; the others are the
/// core's setters, durations in seconds.
pub(crate) const KEYS: [&str; 45] = [
    "headers",
    "subprotocols",
    "connect_timeout",
    "close_timeout",
    "max_message_size",
    "maxPayload",
    "max_frame_size",
    "event_queue_capacity",
    "event_queue_bytes",
    "max_buffered_amount",
    "tcp_nodelay",
    "read_buffer_size",
    "write_buffer_size",
    "cafile",
    "cadata",
    "root_certificates",
    "platform_roots",
    "certfile",
    "keyfile",
    "certdata",
    "keydata",
    "danger_accept_invalid_certs",
    "ping_interval",
    "dead_peer_timeout",
    "reconnect",
    "reconnect_delays",
    "reconnect_max_attempts",
    "reconnect_reset_after",
    "reconnect_on_clean_close",
    "reconnect_on_close_codes",
    "offline_sends",
    "offline_queue_bytes",
    "proxy",
    "proxy_from_env",
    "deflate",
    "deflate_threshold",
    "deflate_client_no_context_takeover",
    "deflate_server_no_context_takeover",
    "deflate_client_max_window_bits",
    "deflate_server_max_window_bits",
    "before_each_connect",
    "tcp_keepalive",
    "follow_redirects",
    "happy_eyeballs_delay",
    "io_threads",
];

/// The core's default frame limit; lowered to the message limit when that is smaller.
const DEFAULT_MAX_FRAME_SIZE: usize = 16 << 20;

/// The client certificate options, gathered before they go to the builder together.
#[derive(Default)]
struct ClientCertificate {
    certfile: Option<PathBuf>,
    keyfile: Option<PathBuf>,
    certdata: Option<Vec<u8>>,
    keydata: Option<Vec<u8>>,
}

impl ClientCertificate {
    /// Sets the certificate and key on `builder`: from files, or from PEM data. As with
    /// `ssl.SSLContext.load_cert_chain`, the key may be in the certificate's PEM.
    fn apply(self, py: Python<'_>, builder: ConfigBuilder) -> PyResult<ConfigBuilder> {
        let mix = |why: &str| Err(new_error(py, "OptionsError", why.to_owned()));
        match self {
            ClientCertificate {
                certfile: Some(_),
                certdata: Some(_),
                ..
            } => mix("give the client certificate as certfile or as certdata, not both"),
            ClientCertificate {
                certfile: None,
                keyfile: Some(_),
                ..
            } => mix("keyfile needs certfile (the client certificate)"),
            ClientCertificate {
                certdata: None,
                keydata: Some(_),
                ..
            } => mix("keydata needs certdata (the client certificate)"),
            ClientCertificate {
                certfile: Some(certfile),
                keyfile,
                keydata: None,
                ..
            } => {
                let keyfile = keyfile.unwrap_or_else(|| certfile.clone());
                Ok(builder.client_certificate_pem_file(certfile, keyfile))
            }
            ClientCertificate {
                certdata: Some(certdata),
                keydata,
                keyfile: None,
                ..
            } => {
                let keydata = keydata.unwrap_or_else(|| certdata.clone());
                Ok(builder.client_certificate_pem(certdata, keydata))
            }
            ClientCertificate {
                certfile: None,
                certdata: None,
                ..
            } => Ok(builder),
        }
    }
}

/// The options as the connection uses them.
#[derive(Debug)]
pub(crate) struct Options {
    /// The core's settings.
    pub(crate) config: Config,
    /// Whether `send()` while no connection is open follows the core's offline policy (queue,
    /// or fail with `InvalidStateError`): with `reconnect` or `offline_sends` given. Else
    /// `send()` before the first `Open` raises, as the 1.0 package's tests want.
    pub(crate) sends_follow_offline_policy: bool,
    /// The shared I/O threads to connect on (`io_threads`), or `None` for a thread of the
    /// connection's own.
    pub(crate) io_threads: Option<nwebsocket::IoThreads>,
}

/// What `offline_sends` and `offline_queue_bytes` asked for.
#[derive(Default)]
struct Offline {
    fail: Option<bool>,
    max_bytes: Option<usize>,
}

impl Offline {
    fn given(&self) -> bool {
        self.fail.is_some() || self.max_bytes.is_some()
    }

    fn apply(self, py: Python<'_>, builder: ConfigBuilder) -> PyResult<ConfigBuilder> {
        match (self.fail, self.max_bytes) {
            (Some(true), Some(_)) => Err(new_error(
                py,
                "OptionsError",
                "offline_queue_bytes needs offline_sends \"queue\", not \"fail\"",
            )),
            (Some(true), None) => Ok(builder.offline_sends(OfflineSends::Fail)),
            (_, Some(max_bytes)) => Ok(builder.offline_sends(OfflineSends::Queue { max_bytes })),
            // "queue" with the core's default limit.
            (_, None) => Ok(builder),
        }
    }
}

/// What `deflate` and its settings asked for.
#[derive(Default)]
struct Deflate {
    /// `deflate`: whether to offer permessage-deflate.
    offer: Option<bool>,
    /// The `deflate_*` settings given, which need the offer.
    tuned: Vec<String>,
}

impl Deflate {
    fn apply(self, py: Python<'_>, builder: ConfigBuilder) -> PyResult<ConfigBuilder> {
        match (self.offer, self.tuned.first()) {
            (Some(false), Some(setting)) => Err(new_error(
                py,
                "OptionsError",
                format!("{setting} needs deflate on, and deflate is False"),
            )),
            (Some(offer), _) => Ok(builder.deflate(offer)),
            (None, _) => Ok(builder),
        }
    }
}

/// What `proxy` and `proxy_from_env` asked for.
#[derive(Default)]
struct Proxy {
    /// `proxy`: a URL, or `None` for no proxy at all (`proxy: False`).
    url: Option<Option<String>>,
    from_env: Option<bool>,
}

impl Proxy {
    fn apply(self, py: Python<'_>, builder: ConfigBuilder) -> PyResult<ConfigBuilder> {
        match (self.url, self.from_env) {
            (Some(None), Some(true)) => Err(new_error(
                py,
                "OptionsError",
                "proxy False (no proxy) contradicts proxy_from_env True",
            )),
            (Some(None), _) => Ok(builder.proxy_from_env(false)),
            (Some(Some(url)), from_env) => {
                Ok(builder.proxy(url).proxy_from_env(from_env.unwrap_or(true)))
            }
            (None, Some(from_env)) => Ok(builder.proxy_from_env(from_env)),
            (None, None) => Ok(builder),
        }
    }
}

/// Reads `options` (`None` or a dict) into the core's `Config`.
///
/// # Errors
/// `OptionsError` (a `ValueError` and a `TypeError`) when `options` is not a dict, for an
/// unknown key, a value of the wrong type or out of range (the message names the option, what
/// it expected and what it got), or a combination the core refuses.
pub(crate) fn config(py: Python<'_>, options: Option<&Bound<'_, PyAny>>) -> PyResult<Options> {
    let Some(options) = options.filter(|options| !options.is_none()) else {
        return Ok(Options {
            config: Config::default(),
            sends_follow_offline_policy: false,
            io_threads: None,
        });
    };
    let options = options
        .cast::<PyDict>()
        .map_err(|_| expected(py, "options", "a dict (or None)", options))?;
    let mut builder = Config::builder();
    let mut message_limit = None;
    let mut frame_limit = None;
    let mut client = ClientCertificate::default();
    let mut offline = Offline::default();
    let mut reconnect = false;
    let mut deflate = Deflate::default();
    let mut proxy = Proxy::default();
    let mut io_threads = None;
    for (key, value) in options.iter() {
        let key: String = key
            .extract()
            .map_err(|_| expected(py, "an option name", "a str", &key))?;
        if value.is_none() {
            // None means "the default", for every option.
            if !KEYS.contains(&key.as_str()) {
                return Err(unknown(py, &key));
            }
            continue;
        }
        builder = match key.as_str() {
            "headers" => {
                for (name, value) in header_pairs(py, &key, &value)? {
                    builder = builder.header(name, value);
                }
                builder
            }
            "subprotocols" => {
                for protocol in strings(py, &key, &value)? {
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
            "event_queue_bytes" => builder.event_queue_bytes(size(py, &key, &value)?),
            "max_buffered_amount" => builder.max_buffered_amount(size(py, &key, &value)?),
            "tcp_nodelay" => builder.tcp_nodelay(flag(py, &key, &value)?),
            "read_buffer_size" => builder.read_buffer_size(size(py, &key, &value)?),
            "write_buffer_size" => builder.write_buffer_size(size(py, &key, &value)?),
            "cafile" => builder.root_certificates_pem_file(path(py, &key, &value)?),
            "cadata" => cadata(py, builder, &value)?,
            "root_certificates" => {
                for der in der_list(py, &key, &value)? {
                    builder = builder.root_certificate(der);
                }
                builder
            }
            "platform_roots" => builder.platform_roots(flag(py, &key, &value)?),
            "certfile" => {
                client.certfile = Some(path(py, &key, &value)?);
                builder
            }
            "keyfile" => {
                client.keyfile = Some(path(py, &key, &value)?);
                builder
            }
            "certdata" => {
                client.certdata = Some(pem(py, &key, &value)?);
                builder
            }
            "keydata" => {
                client.keydata = Some(pem(py, &key, &value)?);
                builder
            }
            "danger_accept_invalid_certs" => {
                builder.danger_accept_invalid_certs(flag(py, &key, &value)?)
            }
            "ping_interval" => builder.ping_interval(seconds(py, &key, &value)?),
            "dead_peer_timeout" => builder.dead_peer_timeout(seconds(py, &key, &value)?),
            "reconnect" => {
                reconnect = flag(py, &key, &value)?;
                builder.reconnect(reconnect)
            }
            "reconnect_delays" => {
                let (initial, max) = seconds_pair(py, &key, &value)?;
                builder.reconnect_delays(initial, max)
            }
            "reconnect_max_attempts" => {
                let attempts = u32::try_from(size(py, &key, &value)?).map_err(|_| {
                    new_error(py, "OptionsError", "reconnect_max_attempts is too large")
                })?;
                builder.reconnect_max_attempts(attempts)
            }
            "reconnect_reset_after" => builder.reconnect_reset_after(seconds(py, &key, &value)?),
            "reconnect_on_clean_close" => builder.reconnect_on_clean_close(flag(py, &key, &value)?),
            "reconnect_on_close_codes" => {
                for code in close_codes(py, &key, &value)? {
                    builder = builder.reconnect_on_close_code(code);
                }
                builder
            }
            "offline_sends" => {
                offline.fail = Some(choice(py, &key, &value, &["queue", "fail"])? == "fail");
                builder
            }
            "offline_queue_bytes" => {
                offline.max_bytes = Some(size(py, &key, &value)?);
                builder
            }
            "proxy" => {
                proxy.url = Some(proxy_url(py, &key, &value)?);
                builder
            }
            "proxy_from_env" => {
                proxy.from_env = Some(flag(py, &key, &value)?);
                builder
            }
            "deflate" => {
                deflate.offer = Some(flag(py, &key, &value)?);
                builder
            }
            "deflate_threshold" => {
                deflate.tuned.push(key.clone());
                builder.deflate_threshold(count(py, &key, &value)?)
            }
            "deflate_client_no_context_takeover" => {
                deflate.tuned.push(key.clone());
                builder.deflate_client_no_context_takeover(flag(py, &key, &value)?)
            }
            "deflate_server_no_context_takeover" => {
                deflate.tuned.push(key.clone());
                builder.deflate_server_no_context_takeover(flag(py, &key, &value)?)
            }
            "deflate_client_max_window_bits" => {
                deflate.tuned.push(key.clone());
                builder.deflate_client_max_window_bits(window_bits(py, &key, &value)?)
            }
            "deflate_server_max_window_bits" => {
                deflate.tuned.push(key.clone());
                builder.deflate_server_max_window_bits(window_bits(py, &key, &value)?)
            }
            "before_each_connect" => {
                builder.before_each_connect(connect_hook::from_option(py, &key, &value)?)
            }
            "tcp_keepalive" => {
                let (idle, interval, probes) = keepalive(py, &key, &value)?;
                builder.tcp_keepalive(idle, interval, probes)
            }
            "follow_redirects" => {
                let hops = u32::try_from(count(py, &key, &value)?)
                    .map_err(|_| new_error(py, "OptionsError", "follow_redirects is too large"))?;
                builder.follow_redirects(hops)
            }
            "happy_eyeballs_delay" => builder.happy_eyeballs_delay(seconds(py, &key, &value)?),
            "io_threads" => {
                io_threads = crate::io_threads::from_option(py, &key, &value)?;
                builder
            }
            _ => return Err(unknown(py, &key)),
        };
    }
    builder = client.apply(py, builder)?;
    builder = deflate.apply(py, builder)?;
    builder = proxy.apply(py, builder)?;
    let sends_follow_offline_policy = reconnect || offline.given();
    builder = offline.apply(py, builder)?;
    if let Some(limit) = message_limit {
        builder = builder.max_message_size(limit);
    }
    if let Some(limit) = frame_limit.or(message_limit.map(|m| m.min(DEFAULT_MAX_FRAME_SIZE))) {
        builder = builder.max_frame_size(limit);
    }
    let config = builder
        .build()
        .map_err(|err| crate::errors::to_pyerr(py, &err))?;
    Ok(Options {
        config,
        sends_follow_offline_policy,
        io_threads,
    })
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

/// `cadata`, as in `ssl.SSLContext.load_verify_locations`: PEM as `str`; `bytes` are PEM when
/// they hold a `-----BEGIN` line, else one DER-encoded certificate (as `ssl` takes them).
fn cadata(
    py: Python<'_>,
    builder: ConfigBuilder,
    value: &Bound<'_, PyAny>,
) -> PyResult<ConfigBuilder> {
    let data = pem(py, "cadata", value)?;
    if value.is_instance_of::<PyString>() || data.windows(10).any(|w| w == b"-----BEGIN") {
        Ok(builder.root_certificates_pem(data))
    } else {
        Ok(builder.root_certificate(data))
    }
}
