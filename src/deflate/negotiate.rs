//! The permessage-deflate negotiation (RFC 7692 §5, §7.1) as pure functions over header
//! values: the offer the client sends, and the check of the server's answer. Nothing here
//! touches a socket or a codec, after Python `websockets`' `permessage_deflate.py`.

/// What the client offers, from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offer {
    /// Ask the server to start every message from an empty window.
    pub(crate) server_no_context_takeover: bool,
    /// Tell the server that our messages start from an empty window.
    pub(crate) client_no_context_takeover: bool,
    /// The largest window the server may use; 15 offers no limit.
    pub(crate) server_max_window_bits: u8,
    /// The largest window we use; always offered, so that the server may lower it.
    pub(crate) client_max_window_bits: u8,
}

/// What both sides agreed to use on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreed {
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_no_context_takeover: bool,
    /// 8 to 15, as the server said (the inflater takes 8 as 9).
    pub(crate) server_max_window_bits: u8,
    /// 8 to 15: with 8, which zlib cannot compress with, messages go out uncompressed.
    pub(crate) client_max_window_bits: u8,
}

const NAME: &str = "permessage-deflate";

impl Offer {
    /// The `Sec-WebSocket-Extensions` value of the offer.
    pub(crate) fn header(&self) -> String {
        let mut offer = String::from(NAME);
        if self.client_max_window_bits < 15 {
            offer.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        } else {
            offer.push_str("; client_max_window_bits");
        }
        if self.server_max_window_bits < 15 {
            offer.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        offer
    }

    /// Checks the server's `Sec-WebSocket-Extensions` values (every such header, in order)
    /// against the offer. `Ok(None)`: no extension agreed; `Err` names what is wrong with an
    /// answer that fails the handshake.
    pub(crate) fn accept<'a>(
        &self,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<Agreed>, String> {
        let mut agreed = None;
        for value in values {
            for extension in value.split(',') {
                let mut parts = extension.split(';').map(str::trim);
                let name = parts.next().unwrap_or_default();
                if name.is_empty() && extension.trim().is_empty() {
                    continue;
                }
                if !name.eq_ignore_ascii_case(NAME) {
                    return Err(format!(
                        "the server accepted an extension not offered: {name:?}"
                    ));
                }
                if agreed.is_some() {
                    return Err("the server accepted permessage-deflate twice".into());
                }
                agreed = Some(self.parameters(parts)?);
            }
        }
        Ok(agreed)
    }

    fn parameters<'a>(&self, params: impl Iterator<Item = &'a str>) -> Result<Agreed, String> {
        let mut seen: Vec<String> = Vec::new();
        let mut agreed = Agreed {
            server_no_context_takeover: false,
            client_no_context_takeover: self.client_no_context_takeover,
            server_max_window_bits: 15,
            client_max_window_bits: self.client_max_window_bits,
        };
        let mut server_bits_given = false;
        for param in params {
            let (name, value) = match param.split_once('=') {
                Some((name, value)) => (name.trim(), Some(unquote(value.trim()))),
                None => (param, None),
            };
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                return Err(format!("the server gave {name} twice"));
            }
            let no_value = |flag: &mut bool| match value {
                None => {
                    *flag = true;
                    Ok(())
                }
                Some(_) => Err(format!("the server gave {name} a value")),
            };
            match name.as_str() {
                "server_no_context_takeover" => no_value(&mut agreed.server_no_context_takeover)?,
                "client_no_context_takeover" => no_value(&mut agreed.client_no_context_takeover)?,
                "server_max_window_bits" => {
                    let bits = window_bits(&name, value)?;
                    if bits > self.server_max_window_bits {
                        return Err(format!("server_max_window_bits={bits} is over the offer"));
                    }
                    agreed.server_max_window_bits = bits;
                    server_bits_given = true;
                }
                "client_max_window_bits" => {
                    let bits = window_bits(&name, value)?;
                    if bits > self.client_max_window_bits {
                        return Err(format!("client_max_window_bits={bits} is over the offer"));
                    }
                    agreed.client_max_window_bits = bits;
                }
                _ => return Err(format!("the server gave an unknown parameter {name:?}")),
            }
            seen.push(name);
        }
        if self.server_no_context_takeover && !agreed.server_no_context_takeover {
            return Err("the server did not accept server_no_context_takeover".into());
        }
        if self.server_max_window_bits < 15 && !server_bits_given {
            return Err("the server did not accept server_max_window_bits".into());
        }
        Ok(agreed)
    }
}

/// A window size parameter's value: 8 to 15, digits only.
fn window_bits(name: &str, value: Option<&str>) -> Result<u8, String> {
    let value = value.ok_or_else(|| format!("the server gave {name} no value"))?;
    match value.parse::<u8>() {
        Ok(bits @ 8..=15) if value.bytes().all(|b| b.is_ascii_digit()) => Ok(bits),
        _ => Err(format!(
            "the server gave {name} the invalid value {value:?}"
        )),
    }
}

/// A parameter value may be a quoted string (RFC 7692 §5.2).
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Offer = Offer {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };

    fn agreed(server_nct: bool, client_nct: bool, server_bits: u8, client_bits: u8) -> Agreed {
        Agreed {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        }
    }

    #[test]
    fn the_offer_names_what_is_asked() {
        assert_eq!(
            DEFAULT.header(),
            "permessage-deflate; client_max_window_bits"
        );
        let all = Offer {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 10,
            client_max_window_bits: 12,
        };
        assert_eq!(
            all.header(),
            "permessage-deflate; client_max_window_bits=12; server_max_window_bits=10; \
             client_no_context_takeover; server_no_context_takeover"
        );
    }

    #[test]
    fn good_answers_are_agreed() {
        let ok = |value: &str| DEFAULT.accept([value]).unwrap();
        assert_eq!(ok(""), None);
        assert_eq!(ok("permessage-deflate"), Some(agreed(false, false, 15, 15)));
        assert_eq!(
            ok("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            Some(agreed(true, true, 15, 15))
        );
        for bits in 8..=15u8 {
            assert_eq!(
                ok(&format!(
                    "permessage-deflate; server_max_window_bits={bits}"
                )),
                Some(agreed(false, false, bits, 15))
            );
            assert_eq!(
                ok(&format!(
                    "Permessage-Deflate;client_max_window_bits=\"{bits}\""
                )),
                Some(agreed(false, false, 15, bits))
            );
        }
        assert_eq!(DEFAULT.accept([]).unwrap(), None);
        let asking = Offer {
            server_no_context_takeover: true,
            server_max_window_bits: 10,
            ..DEFAULT
        };
        assert_eq!(
            asking
                .accept([
                    "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
                ])
                .unwrap(),
            Some(agreed(true, false, 9, 15))
        );
    }

    #[test]
    fn bad_answers_fail() {
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"x\"",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=+9",
            "permessage-deflate; server_max_window_bits=ten",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=0",
        ] {
            assert!(DEFAULT.accept([bad]).is_err(), "{bad}");
        }
        assert!(
            DEFAULT
                .accept(["permessage-deflate", "permessage-deflate"])
                .is_err()
        );
        let asking = Offer {
            server_no_context_takeover: true,
            server_max_window_bits: 10,
            client_max_window_bits: 12,
            ..DEFAULT
        };
        for bad in [
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; \
             client_max_window_bits=13",
        ] {
            assert!(asking.accept([bad]).is_err(), "{bad}");
        }
    }
}
