//! The one error type of command execution. Each variant maps to Redis's exact reply text; only
//! protocol errors (in `resp`) close a connection, every error here is just a reply.

use bytes::Bytes;

use crate::resp::Frame;

/// A command error, rendered as Redis renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `WRONGTYPE Operation against a key holding the wrong kind of value`.
    WrongType,
    /// `ERR value is not an integer or out of range`.
    NotInteger,
    /// `ERR value is not a valid float`.
    NotFloat,
    /// `ERR syntax error`.
    Syntax,
    /// `ERR increment or decrement would overflow`.
    Overflow,
    /// `ERR index out of range`.
    IndexOutOfRange,
    /// `ERR no such key`.
    NoSuchKey,
    /// `ERR invalid expire time in '<cmd>' command`.
    InvalidExpire(&'static str),
    /// `ERR wrong number of arguments for '<cmd>' command`.
    WrongArity(String),
    /// `ERR value is out of range, must be positive`.
    MustBePositive,
    /// `ERR string exceeds maximum allowed size (proto-max-bulk-len)`.
    StringTooLong,
    /// `ERR DB index is out of range`.
    DbIndexOutOfRange,
    /// `MISCONF Errors writing to the AOF file: <reason>`: the AOF cannot be written, writes are
    /// refused. The reason is the OS error's text as C's `strerror` words it (`No space left on device`).
    Misconf(String),
    /// Any other reply text, given in full including its code word (`ERR ...`, `NOPROTO ...`).
    Raw(String),
}

/// Result of a command handler.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An `ERR`-coded error with the given text.
    pub fn err(text: impl std::fmt::Display) -> Error {
        Error::Raw(format!("ERR {text}"))
    }

    /// The reply text, without the leading `-`.
    pub fn text(&self) -> String {
        match self {
            Error::WrongType => "WRONGTYPE Operation against a key holding the wrong kind of value".into(),
            Error::NotInteger => "ERR value is not an integer or out of range".into(),
            Error::NotFloat => "ERR value is not a valid float".into(),
            Error::Syntax => "ERR syntax error".into(),
            Error::Overflow => "ERR increment or decrement would overflow".into(),
            Error::IndexOutOfRange => "ERR index out of range".into(),
            Error::NoSuchKey => "ERR no such key".into(),
            Error::InvalidExpire(cmd) => format!("ERR invalid expire time in '{cmd}' command"),
            Error::WrongArity(cmd) => format!("ERR wrong number of arguments for '{cmd}' command"),
            Error::MustBePositive => "ERR value is out of range, must be positive".into(),
            Error::StringTooLong => "ERR string exceeds maximum allowed size (proto-max-bulk-len)".into(),
            Error::DbIndexOutOfRange => "ERR DB index is out of range".into(),
            Error::Misconf(reason) => format!("MISCONF Errors writing to the AOF file: {reason}"),
            Error::Raw(s) => s.clone(),
        }
    }

    /// The error as a reply frame. A newline in the text (an argument quoted into it) would end
    /// the error line early and break the reply stream: as Redis's `addReplyErrorFormat`, CR and LF
    /// become spaces.
    pub fn to_frame(&self) -> Frame {
        let mut text = self.text();
        if text.contains(['\r', '\n']) {
            text = text.replace(['\r', '\n'], " ");
        }
        Frame::Error(Bytes::from(text))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl std::error::Error for Error {}
