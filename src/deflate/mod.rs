//! permessage-deflate (RFC 7692): the negotiation (`negotiate`, pure functions over header
//! values) apart from the codec (`codec`, which transforms payloads).

mod codec;
mod negotiate;

pub(crate) use codec::{Deflater, InflateError, Inflater};
pub(crate) use negotiate::{Agreed, Offer};
