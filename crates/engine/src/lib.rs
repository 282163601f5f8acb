//! perfkit's one transfer engine: the path every block of bytes takes,
//! written once.
//!
//! ```text
//!            Clock (wall, virtual, a firmware timer)      Policy (deadline, cancel)
//!                 |  now_ns                                   | check once per poll
//!   Sender -> TxPump --frame--> link --bytes--> RxPump -> Receiver -> Sink
//!             (tx.rs)        (perfkit-link)    (rx.rs)
//! ```
//!
//! The pumps ([`TxPump`], [`RxPump`]) hold the stack's sender and receiver
//! and never read a clock: every step takes `now_ns`, as smoltcp's
//! `Interface::poll` does, so the same pumps run in real time, in virtual
//! time and (they are `no_std` and allocation-free) in firmware. A driver
//! ([`drive`], [`simulate`]) owns the loop: it reads the injected [`Clock`],
//! checks the one [`Policy`] before each poll, moves bytes through a link
//! behind `perfkit-link`'s small traits, and waits on the clock when the
//! sender is throttled. Runners choose only the two ends, the link and the
//! driver.
//!
//! Every way of stopping early has one wording ([`Stop`]): `interrupted`,
//! or `gave up after N s (timeout_s)`.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

mod clock;
#[cfg(feature = "std")]
pub mod drive;
mod policy;
mod rx;
mod tx;
#[cfg(feature = "std")]
mod virtual_time;

pub use clock::Clock;
#[cfg(feature = "std")]
pub use clock::WallClock;
pub use policy::{Policy, Stop};
pub use rx::{RecvEnd, RxPump};
pub use tx::{Next, Step, TxPump, MAX_FRAME};
#[cfg(feature = "std")]
pub use virtual_time::{message_kind, simulate};

use core::fmt;

/// Why a transfer could not go on.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The policy stopped it (cancel flag or deadline).
    Stopped(Stop),
    /// The stack refused (which part, and why): a sender setting, a buffer.
    Stack(&'static str, perfkit_stack::Error),
    /// The link failed (closed, timed out writing, an OS error).
    #[cfg(feature = "std")]
    Link(perfkit_link::Error),
    /// The peer closed the byte link [`drive::send`] was writing:
    /// `wire` bytes had been written, and `whole_file` says whether a META
    /// and every block were among them (only repeats, META ticks and END
    /// were left, which a receiver that has the file does not need).
    #[cfg(feature = "std")]
    Closed {
        /// Bytes written before the link closed.
        wire: u64,
        /// A META and every block were in them.
        whole_file: bool,
        /// The sender's counts for the frames in them (not those framed
        /// for a write the link refused).
        sent: perfkit_stack::TransferStats,
    },
    /// A thread of the run panicked.
    Panicked(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Stopped(s) => s.fmt(f),
            Error::Stack(what, e) => write!(f, "{what}: {e}"),
            #[cfg(feature = "std")]
            Error::Link(e) => e.fmt(f),
            #[cfg(feature = "std")]
            Error::Closed { wire, .. } => {
                write!(f, "link closed by the peer after {wire} bytes")
            }
            Error::Panicked(what) => write!(f, "{what} panicked"),
        }
    }
}

// No `source`: the message already is the link's, and a chain printer
// (`{:#}`) would print it twice.
#[cfg(feature = "std")]
impl std::error::Error for Error {}

impl From<Stop> for Error {
    fn from(s: Stop) -> Self {
        Error::Stopped(s)
    }
}

#[cfg(feature = "std")]
impl From<perfkit_link::Error> for Error {
    fn from(e: perfkit_link::Error) -> Self {
        Error::Link(e)
    }
}
