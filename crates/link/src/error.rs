//! The crate's error type: an opaque [`Error`] with a [`ErrorKind`] that
//! carries the context a user needs (path, line, key, sizes).

use std::fmt;
use std::io;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from a link, a profile file or a model configuration.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong, with its context.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A packet longer than the link's MTU was refused (never truncated).
    TooLarge {
        /// Length of the refused packet.
        len: usize,
        /// The link's MTU.
        mtu: usize,
    },
    /// A received packet did not fit the caller's buffer; it was dropped and counted.
    BufferTooSmall {
        /// Length of the packet.
        len: usize,
        /// Length of the caller's buffer.
        buf: usize,
    },
    /// A bounded in-memory link is full; nothing was queued, retry after the
    /// receiving side has run.
    Full,
    /// The link is closed for writing (the peer went away or `close_write` was called).
    Closed,
    /// A write could not complete within the link's write timeout.
    TimedOut {
        /// What was being done.
        what: String,
    },
    /// An operating-system error.
    Io {
        /// What was being done (with the path or command when there is one).
        what: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A serial device could not be opened or configured.
    Serial {
        /// The device path.
        path: String,
        /// The underlying error.
        source: serialport::Error,
    },
    /// A device profile (or other TOML file) is malformed.
    Parse {
        /// The file (or `<builtin name>` for a shipped profile).
        path: String,
        /// 1-based line of the error, 0 when unknown.
        line: usize,
        /// 1-based column of the error, 0 when unknown.
        column: usize,
        /// The key at fault, when it could be determined.
        key: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// A configuration value is out of range.
    Config {
        /// The parameter name.
        key: String,
        /// Why it is refused.
        message: String,
    },
}

impl Error {
    /// Builds an error of the given kind.
    pub fn new(kind: ErrorKind) -> Self {
        Self { kind }
    }

    /// The kind of error, with its context.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// True when the link is closed (peer gone, EOF on write).
    pub fn is_closed(&self) -> bool {
        matches!(self.kind, ErrorKind::Closed)
    }

    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::BrokenPipe {
            return Self::new(ErrorKind::Closed);
        }
        Self::new(ErrorKind::Io {
            what: what.into(),
            source,
        })
    }

    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config {
            key: key.into(),
            message: message.into(),
        })
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::TooLarge { len, mtu } => {
                write!(f, "packet of {len} bytes refused: link MTU is {mtu}")
            }
            ErrorKind::BufferTooSmall { len, buf } => write!(
                f,
                "received packet of {len} bytes does not fit a {buf}-byte buffer (dropped)"
            ),
            ErrorKind::Full => write!(f, "link buffer full, let the receiver run first"),
            ErrorKind::Closed => write!(f, "link closed by the peer"),
            ErrorKind::TimedOut { what } => write!(f, "timed out: {what}"),
            ErrorKind::Io { what, source } => write!(f, "{what}: {source}"),
            ErrorKind::Serial { path, source } => write!(f, "serial device {path}: {source}"),
            ErrorKind::Parse {
                path,
                line,
                column,
                key,
                message,
            } => {
                write!(f, "{path}:{line}:{column}: ")?;
                if let Some(key) = key {
                    write!(f, "key `{key}`: ")?;
                }
                write!(f, "{message}")
            }
            ErrorKind::Config { key, message } => write!(f, "`{key}`: {message}"),
        }
    }
}

// No `source`: the message already includes the OS error, and a chain
// printer (`{:#}`) would print it twice.
impl std::error::Error for Error {}
