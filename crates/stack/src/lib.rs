//! perfkit's reference transfer stack, speaking the dttk wire profile
//! (`docs/specs/dttk-wire.md`) byte for byte, instrumented at every stage.
//!
//! # Layers
//!
//! ```text
//! Source -> Sender -> dttk::wire::build (header + CRC around the block, in place)
//!        -> Framer::encode (dttk 0xFF/0xFE stuffing or COBS) -> link
//! link -> Deframer (resumable, any chunk size) -> Receiver (CRC, seqno,
//!        META, duplicates, bitmap) -> Sink (write at offset) -> SHA-256
//! ```
//!
//! * [`profile`]: the wire-profile seam: [`Framer`] and [`Deframe`] (the
//!   byte-stream framing half), [`PacketFormat`] and [`PacketView`] (the
//!   link-message half).
//! * [`dttk`]: the dttk profile: [`dttk::wire`], smoltcp-style `Packet<T>`
//!   view and `Repr`s for the link message, META and END
//!   (CRC-16/SPI-FUJITSU); [`dttk::framing`], the 0xFF/0xFE stuffing;
//!   [`dttk::LinkMessage`], the link message as a [`PacketFormat`].
//!   `perfkit_stack::wire` is the same module under its old name.
//! * [`cobs`]: COBS framing, the alternative to the dttk stuffing.
//! * [`framing`]: [`Framing`], the run-time choice between the two
//!   ([`Framing::Dttk`], [`Framing::Cobs`]), and the resumable [`Deframer`]
//!   any framing runs in, with its counters.
//! * [`sender`]: the tick-driven [`Sender`] with the profile's META schedule,
//!   repeats, channel and a token-bucket throttle.
//! * [`receiver`]: the push-based [`Receiver`] and the multi-channel [`Mux`].
//! * [`io`]: [`Source`] and [`Sink`] traits; memory always, files under `std`.
//! * [`device`]: the control protocol between a host and perfkit's firmware
//!   (HELLO, CONFIG, the device's report), one codec for both sides.
//! * [`stats`]: [`TransferStats`] printing the profile's
//!   `T:.. blk:.. by:.. PPS:.. BPS:..` line, plus link counters.
//!
//! # Adding a wire profile
//!
//! A profile is implementations of the [`profile`] traits; nothing else in
//! the stack, the engine or the harness forks.
//!
//! * **A byte-stream framing** (say SLIP): a file `src/slip.rs` (or
//!   `src/<profile>/framing.rs` when it belongs to one profile) with a unit
//!   type implementing [`Framer`] (worst-case length, encode into the
//!   caller's buffer) and [`Deframe`] (start state, and a `step` that moves
//!   bytes into a [`profile::FrameBuf`], counting what it drops). It then
//!   works in [`Deframer`], [`Receiver`], [`Mux`] and the engine's pumps as
//!   their `F` parameter. To offer it as a setting, add a variant to
//!   [`Framing`] (two match arms per impl in `src/framing.rs`) and its name
//!   where the harness parses `framing`.
//! * **A link-message format** with the same transfer rules: a module
//!   `src/<profile>/` with a `Packet<T>` view (smoltcp style, as in
//!   [`dttk::wire`]) implementing [`PacketView`], and a marker type
//!   implementing [`PacketFormat`]; use it as the `P` parameter
//!   ([`Receiver::for_format`], [`Deframer::for_format`]).
//! * **Another protocol over a byte link** (SPEAD heaps over a UART): only
//!   the framing half is shared: frame each packet with any [`Framer`] and
//!   recover packets with a `Deframer<N, F, AnyFrame>` ([`profile::AnyFrame`]
//!   passes every frame; or the format's own [`FrameCheck`]); the
//!   protocol's own receiver (for SPEAD, `perfkit-spead`'s reassembly)
//!   takes the frames.
//!
//! Every wire vector a profile defines belongs in `fixtures/wire/` with a
//! test beside `tests/golden.rs`.
//!
//! # Time is injected
//!
//! Nothing here reads a clock. [`Sender::poll`] and the receiver's
//! `on_message`/`on_bytes` take `now_ns: u64`, so the same code runs in real
//! time, in a virtual-time UART simulation and in firmware. The one exception
//! is the deliberate `slowdown_ns_per_packet` busy-wait, which needs a real
//! clock: `std::time::Instant` under `std`, a spin function passed to
//! [`Sender::with_spin`] otherwise.
//!
//! ```
//! use perfkit_stack::{Framing, MemorySink, MemorySource, Poll, Receiver, Sender, SenderConfig, Event};
//!
//! let file = b"hello, dttk";
//! let mut tx = Sender::new(MemorySource::new(file, b"hello.txt"), SenderConfig::default()).unwrap();
//! let mut rx: Receiver<_, 64> = Receiver::new(0, MemorySink::new([0u8; 64]), Framing::Dttk);
//! let (mut msg, mut framed) = ([0u8; 256], [0u8; 600]);
//! let mut done = false;
//! while let Poll::Message(n) = tx.poll(0, &mut msg).unwrap() {
//!     let m = Framing::Dttk.encode(&msg[..n], &mut framed).unwrap();
//!     rx.on_bytes(&framed[..m], 0, &mut |ev| done |= matches!(ev, Event::Complete { .. }));
//! }
//! assert!(done);
//! assert_eq!(rx.sink().data(), file);
//! ```
//!
//! # The API other code calls
//!
//! ```text
//! Sender::new(source: S, cfg: SenderConfig) -> Result<Sender<S>>     // hashes the source for META
//! Sender::poll(&mut self, now_ns: u64, out: &mut [u8]) -> Result<Poll> // Message(len) | WaitUntil(ns) | Done
//! Sender::stats() -> &TransferStats, counters() -> &SenderCounters, with_spin(fn(u64))
//! Framing::{Dttk, Cobs}.encode(msg, out) -> Result<usize>, max_encoded_len(len)   // or any Framer
//! Deframer::<N>::new(framing); push(bytes, |frame| ..); decode(&mut &[u8]) -> Option<&[u8]>; stats()
//! Receiver::<K, B>::new(channel, sink, framing)   // Receiver<K, B, F, P>::for_format for other formats
//! Receiver::on_message(&mut self, msg: &[u8], now_ns) -> Event
//! Receiver::on_bytes(&mut self, bytes: &[u8], now_ns, &mut impl FnMut(Event))
//! Receiver::{state, counters, deframer_stats, stats, meta, missing_blocks, has_block, sink}
//! Mux::<K, C, B>::new([Receiver; C], framing); on_message -> (Option<channel>, Event); on_bytes
//! dttk::wire::{build, encapsulate, decapsulate, Packet, Repr, MetaRepr, EndRepr, Control, crc16}
//! Source (MemorySource, FileSource), Sink (MemorySink, VecSink, FileSink, HashingSink)
//! ```
//!
//! When the last missing block arrives the receiver returns
//! [`Event::Complete`] (or [`Event::Failed`] on a hash mismatch) instead of
//! [`Event::Block`] for that message.
//!
//! # Memory
//!
//! `#![no_std]`, no allocation anywhere; `alloc` only adds [`io::VecSink`].
//! Fixed capacity is a const generic: the receiver's block bitmap is `B`
//! bytes (`8 * B` blocks; the default 8 KiB covers the profile's 65,536),
//! the deframer's buffer is 544 bytes as in the reference. A `Receiver` with
//! the default bitmap is about 9.5 KiB; an RP2040 (264 KiB RAM) can hold
//! several, smaller files can use a smaller `B`.
//!
//! # CRC table choice
//!
//! See [`dttk::wire::crc`]: carry-less multiplication (PCLMULQDQ) on x86_64 hosts
//! that have it, slice-by-16 (8 KiB of tables) elsewhere and for inputs
//! under 16 bytes, each where it measured fastest; firmware can pick the
//! 512-byte single table (`crc-table1`) or no table (`crc-notable`).
//!
//! # Instrumentation
//!
//! Every stage (`sender::read_block`, `sender::add_header`, `wire::crc16`,
//! `framing::encode`, `framing::decode`, `receiver::parse`,
//! `receiver::crc_check`, `receiver::store`, `receiver::sha256`) goes through
//! the private `stage!` macro, which wraps it in a perfkit measurement (with
//! byte counts where bytes flow) and vanishes with the `perf-off` feature.
//!
//! # Speed
//!
//! `benches/stages.rs` measures each stage and the whole pipeline in memory
//! (sender -> frame -> deframe -> receiver -> sink, SHA-256 verification
//! included): about 450 ns per 249-byte block, 540 MB/s of payload
//! (`cargo bench -p perfkit-stack --bench stages -- e2e/`). The largest
//! single cost left is the receiver's SHA-256 (SHA-NI through `sha2`, about
//! a third); the two CRC passes (sender and receiver) fold 16 bytes per
//! carry-less multiply and cost about 25 ns each; framing scans 32 bytes at
//! a time and copies runs. Each
//! perfkit measurement costs tens of nanoseconds, roughly as much as a whole
//! stage here, so compare instrumented runs with instrumented runs; switch
//! recording off at run time (`perfkit::set_enabled(false)`) or compile it
//! out (`perf-off`) for raw throughput.
//!
//! # Errors
//!
//! Configuration and buffer mistakes are [`Error`]s with an
//! [`ErrorKind`] naming the key or sizes. Bad input from the link is never
//! an error and never a panic: it is a counted drop reported as an [`Event`].

#![no_std]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

/// Wrap a stage in a perfkit measurement (the bare expression under
/// `perf-off`, through perfkit's own `off` feature).
macro_rules! stage {
    ($name:literal, bytes = $n:expr, $e:expr) => {
        perfkit::measure!($name, bytes = $n, $e)
    };
    ($name:literal, $e:expr) => {
        perfkit::measure!($name, $e)
    };
}

pub mod buffer;
pub mod cobs;
pub mod device;
pub mod dttk;
pub mod error;
pub mod framing;
#[cfg(all(feature = "std", unix))]
pub mod hashing;
pub mod io;
pub mod profile;
pub mod receiver;
pub mod sender;
pub mod stats;

/// The dttk link message, under the path it had before the profile seam
/// (the same module as [`dttk::wire`]).
pub use dttk::wire;

#[doc(hidden)]
pub mod fuzzing;

pub use buffer::Buffer;
pub use error::{Error, ErrorKind, Result};
pub use framing::{Deframer, DeframerStats, Framing};
#[cfg(all(feature = "std", unix))]
pub use hashing::HashingSink;
#[cfg(feature = "alloc")]
pub use io::VecSink;
#[cfg(feature = "std")]
pub use io::{FileSink, FileSource};
pub use io::{MemorySink, MemorySource, Sink, Source};
pub use profile::{Deframe, FrameCheck, Framer, PacketFormat, PacketView};
pub use receiver::{DropReason, Event, Failure, Mux, Receiver, ReceiverCounters, State};
pub use sender::{Poll, Sender, SenderConfig, SenderCounters};
pub use stats::{LinkCounters, TransferStats};
