//! The crate's error type: an opaque [`Error`] with a `#[non_exhaustive]`
//! [`ErrorKind`] carrying the context needed to act on it.

use core::fmt;

/// What went wrong, with context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A message is shorter than the 7-byte link overhead, or than a control
    /// message needs.
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The len byte + 1 differs from the message length.
    BadLength {
        /// `len + 1` as declared by the first byte.
        declared: usize,
        /// Actual message length.
        actual: usize,
    },
    /// The CRC trailer does not match the message.
    Crc {
        /// CRC computed over header and payload.
        computed: u16,
        /// CRC found in the trailer.
        received: u16,
    },
    /// A payload longer than the 249 bytes a link message can carry.
    PayloadTooLong {
        /// Requested payload length.
        len: usize,
    },
    /// An output buffer too small for what must be written into it.
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A file too large for the profile (more than 65,535 full blocks).
    FileTooLarge {
        /// File size in bytes.
        size: u64,
        /// Block size in bytes.
        block_size: u8,
    },
    /// A file base name longer than fits in a META message.
    NameTooLong {
        /// Name length in bytes.
        len: usize,
        /// Longest name that fits.
        max: usize,
    },
    /// A sender configuration value out of range.
    Config {
        /// Configuration key.
        key: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A source or sink access outside its bounds.
    OutOfBounds {
        /// Offset requested.
        offset: u64,
        /// Bytes requested.
        len: usize,
        /// Size of the source or sink.
        size: u64,
    },
    /// A write into the part of a sink that is already announced for
    /// hashing ([`crate::Sink::hash_upto`]).
    Sealed {
        /// Offset of the refused write.
        offset: u64,
        /// Bytes announced, which are no longer written.
        sealed: u64,
    },
    /// An I/O error from a file source or sink (std only).
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error code, if any.
        code: Option<i32>,
    },
}

/// The stack's error: see [`Error::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub(crate) const fn new(kind: ErrorKind) -> Self {
        Error { kind }
    }

    pub(crate) const fn config(key: &'static str, reason: &'static str) -> Self {
        Error::new(ErrorKind::Config { key, reason })
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error { kind }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Truncated { len, need } => {
                write!(f, "message truncated: {len} bytes, need {need}")
            }
            ErrorKind::BadLength { declared, actual } => write!(
                f,
                "bad length: len byte says {declared} bytes, message has {actual}"
            ),
            ErrorKind::Crc { computed, received } => write!(
                f,
                "CRC mismatch: computed {computed:#06x}, received {received:#06x}"
            ),
            ErrorKind::PayloadTooLong { len } => {
                write!(f, "payload of {len} bytes exceeds the 249-byte maximum")
            }
            ErrorKind::BufferTooSmall { need, have } => {
                write!(f, "buffer too small: need {need} bytes, have {have}")
            }
            ErrorKind::FileTooLarge { size, block_size } => write!(
                f,
                "file of {size} bytes needs more than 65535 full blocks of {block_size} bytes"
            ),
            ErrorKind::NameTooLong { len, max } => {
                write!(f, "file name of {len} bytes exceeds {max} bytes")
            }
            ErrorKind::Config { key, reason } => write!(f, "invalid {key}: {reason}"),
            ErrorKind::OutOfBounds { offset, len, size } => write!(
                f,
                "access of {len} bytes at offset {offset} is outside {size} bytes"
            ),
            ErrorKind::Sealed { offset, sealed } => write!(
                f,
                "write at offset {offset} into the first {sealed} bytes, which are already being hashed"
            ),
            ErrorKind::Io { op, code: Some(c) } => write!(f, "I/O error while {op} (os error {c})"),
            ErrorKind::Io { op, code: None } => write!(f, "I/O error while {op}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Result with the crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
