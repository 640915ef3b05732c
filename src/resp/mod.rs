//! RESP: the reply value ([`Frame`]), its encoder, and the request decoder (multibulk and inline).
//! Mirrors the protocol half of Redis's `networking.c`.

mod decode;
mod frame;
mod peek;

pub use decode::{Decoded, PROTO_INLINE_MAX_BYTES, ProtocolError, RequestDecoder, decode_request, split_inline_args};
pub use frame::{Frame, put_bulk, put_decimal};
pub use peek::{first_key, peek_keys};
