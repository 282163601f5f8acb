//! SPEAD heaps over UDP, interoperable with spead2, instrumented with perfkit.
//! The protocol as this crate implements it is written down in
//! `docs/specs/spead.md`.
//!
//! SPEAD moves "heaps" (a set of items: a timestamp, an array of samples...)
//! as UDP packets. This crate is split by what each layer needs:
//!
//! - [`wire`] and [`descriptor`] (`no_std`, no allocation): views over packet
//!   bytes in the smoltcp style. Only the SPEAD-64-40 flavour (the one spead2
//!   uses by default) is accepted; other flavours are rejected with an error
//!   that names them.
//! - [`packetize`] (`no_std`): the heap builder. It splits a heap into packets
//!   exactly as spead2 does, writing only headers into caller scratch and
//!   handing out payload as slices of the caller's buffers, so the sender
//!   never copies payload: each datagram is an iovec list (header + slices).
//! - [`reasm`] (`alloc`): reassembly of heaps from packets in any order,
//!   duplicate and incomplete heaps counted, item and descriptor decoding,
//!   stream stop. Memory is bounded by configuration, whatever arrives.
//! - [`send`] and [`recv`] (`std`, Linux): a UDP sender with three modes
//!   ([`send::Mode`]): one heap per `sendmmsg` call, a batch of heaps per call
//!   with two batches in flight (one filled while the other is sent), and the
//!   batch with runs of equal-size packets merged by UDP GSO (`UDP_SEGMENT`),
//!   falling back to plain datagrams when the kernel refuses. The receiver
//!   reads with `recvmmsg` and asks for UDP GRO, splitting coalesced buffers.
//! - [`run`] (`std`): one complete measured run for the harness: a receiver
//!   thread, a sender (perfkit's own, or spead2's through a Python script as
//!   a child process), verification of the known payload pattern (heap `i`
//!   is filled with `i mod 256` and carries timestamp `i * heap_size`), and
//!   the figures.
//!
//! Trade-offs: the sender's batch is packetised on the I/O thread right
//! before `sendmmsg`, so headers are written into a scratch area that stays
//! hot in cache, at the cost of that thread doing the header work. The
//! receiver copies payload into a per-heap buffer (one copy, like spead2)
//! rather than keeping packet buffers alive, which keeps reassembly simple
//! and memory bounded. Every stage (heap build, packetise, send call,
//! receive call, reassemble, verify) is wrapped in a perfkit measurement.
#![no_std]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

/// Wraps a pipeline stage in a perfkit measurement (kept in one place so
/// the instrumentation can be switched as a whole).
#[allow(unused_macros)]
macro_rules! stage {
    ($name:literal, bytes = $n:expr, $e:expr) => {
        perfkit::measure!($name, bytes = $n, $e)
    };
    ($name:literal, $e:expr) => {
        perfkit::measure!($name, $e)
    };
}
#[allow(unused_imports)]
pub(crate) use stage;

pub mod descriptor;
pub mod packetize;
#[cfg(feature = "alloc")]
pub mod reasm;
pub mod wire;

#[cfg(all(feature = "std", target_os = "linux"))]
pub mod affinity;
#[cfg(all(feature = "std", target_os = "linux"))]
pub mod priority;
#[cfg(all(feature = "std", target_os = "linux"))]
pub mod recv;
#[cfg(all(feature = "std", target_os = "linux"))]
pub mod run;
#[cfg(all(feature = "std", target_os = "linux"))]
pub mod send;
#[cfg(all(feature = "std", target_os = "linux"))]
mod sockopt;
#[cfg(all(feature = "std", target_os = "linux"))]
pub mod usage;
