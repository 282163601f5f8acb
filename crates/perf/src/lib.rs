//! `perfkit`: per-call-site timing cheap enough to leave in every stage of a
//! communication stack, firmware included.
//!
//! # Measuring
//!
//! ```
//! #[perfkit::measured]                      // name: the function's path
//! fn parse(buf: &[u8]) -> usize { buf.len() }
//!
//! #[perfkit::measured("frame.encode")]      // explicit name
//! fn encode(buf: &[u8]) -> usize { buf.len() * 2 }
//!
//! let buf = [0u8; 64];
//! let n = perfkit::measure!("crc16", bytes = buf.len(), parse(&buf));
//! {
//!     let _g = perfkit::span!("send");      // records when dropped
//!     encode(&buf);
//! }
//! # #[cfg(all(feature = "std", not(feature = "off")))] {
//! let snap = perfkit::snapshot();
//! assert_eq!(snap.site("crc16").unwrap().calls, 1);
//! print!("{snap}");                         // crc16 measure: calls:1 min:41ns ...
//! print!("{}", snap.folded());              // send;frame.encode 41
//! # }
//! # let _ = n;
//! ```
//!
//! # Design
//!
//! - **Call sites.** Each macro use expands to one `static` [`Site`] holding
//!   name, module, file and line, and its statistics as atomics. On first use
//!   it pushes itself onto an intrusive lock-free list (one CAS, once), so the
//!   registry costs one relaxed load per call and [`for_each_site`] walks it
//!   without allocating. Macros reach internals only through `__private`.
//! - **Statistics.** Per site: calls, min, max, cumulative ticks, bytes,
//!   and a log-linear histogram ([`hist`]) of 32 sub-buckets per power of two
//!   (1.6 % worst-case error for percentiles). A call records them on its
//!   stack path in the calling thread's own table (below), with plain loads
//!   and stores: no locked read-modify-write, which cost 5 ns each next to
//!   the clock reads (three of them made a measurement 2.5x the clock floor).
//!   [`flush`] (called by [`for_each_site`] and so by every snapshot) adds
//!   each path's growth since the last flush to its site, under a lock, so
//!   calls, min, max, cum, bytes and the histogram are exact, across
//!   threads too, for every call that ended before it. A call without a
//!   path (table full, stack too deep) records into the site's atomics.
//!   With `std` a call's histogram bucket is counted by the next call on
//!   its path: the next clock read waits for the work before it, and the
//!   bucket index is the longest chain of work on a duration (the
//!   measurement cost 1.5x the clock floor with it, 1.1x without); a merge
//!   that finds a duration still waiting counts it itself, once.
//! - **Clock.** The hot path reads raw ticks ([`clock`]): `RDTSC` on x86_64
//!   when CPUID reports an invariant TSC, `CNTVCT_EL0` on aarch64, the
//!   monotonic clock otherwise, or the [`Clock`] firmware installs with
//!   [`set_clock`]. Ticks become nanoseconds only in a snapshot. We read
//!   the counter ourselves rather than through `quanta`: both execute the
//!   same plain `RDTSC`, and the `interleaved` bench measures them equal
//!   (19.0 ns per pair of reads here, `clock_floor` and `quanta_raw_pair`);
//!   but the hot path must also honour a [`Clock`] installed at run time
//!   (firmware, mock clocks in tests) for the price of one relaxed load,
//!   which `quanta::Clock` (a value to fetch from a `OnceLock` or thread
//!   through every call site) does not give, and the `no_std` core stays
//!   free of dependencies. `quanta` remains the reference in the benches.
//!   The TSC rate is calibrated against `Instant` over the whole run.
//! - **Nesting.** Each thread keeps a bounded table of stack paths with
//!   calls, total and self ticks ([`stack`]), and the site statistics
//!   above, and points (`thread_local!` with `const` init: no lazy-init
//!   branch) at the path of its innermost open measurement. The path slots
//!   hold the rest of the stack: their parent, the time nested in their
//!   open call, and the path their last child took, so a measurement
//!   repeated under the same parent finds its path with one compare instead
//!   of a hash probe. A guard keeps its path and its thread's stack, so the
//!   drop goes straight to them, without a thread-local lookup. (Without
//!   `std` one global stack of levels does the same.) Only the owning
//!   thread writes its table; snapshots merge the tables by path. The
//!   result is the folded format inferno reads.
//! - **Switching off.** The `off` feature turns every macro into the bare
//!   expression (no static, no code); [`set_enabled`]`(false)` makes each
//!   measurement one relaxed load.
//! - **`no_std`.** Without the default `std` feature the crate is `no_std`
//!   with no required dependency beyond `portable-atomic` (which makes the
//!   atomics work on thumbv6m: enable this crate's `critical-section`
//!   feature there). Firmware installs a [`Clock`] (SysTick, the RP2040
//!   timer), keeps one global stack (firmware is single-threaded; measuring
//!   from interrupt handlers can make figures wrong, never unsafe),
//!   whose measurements only append events to a ring that `replay()`
//!   counts later, outside every measurement, and
//!   sends its statistics with [`for_each_site`] / [`for_each_path`]. The
//!   `compact` feature shrinks the histogram (8 sub-buckets, 6.3 % error,
//!   240 buckets) and the path table for small RAM.
//! - **One record.** [`SiteRecord`] is a site's statistics wherever they
//!   end up: a snapshot, a results file, a firmware report (with its binary
//!   codec, see [`record`]). Serde for it is the `serde` feature.
//! - **`std`** adds per-thread stacks, the TSC clock, `snapshot()` /
//!   `reset()`, the text dump, folded stacks, JSON and flamegraph SVGs
//!   (inferno's library); **`tracing`** adds
//!   `perfkit::tracing::PerfkitLayer`.
//!
//! # Costs and limits
//!
//! The `overhead` benchmark (`cargo bench -p perfkit --features tracing
//! --bench overhead`) compares a measurement with two raw clock reads; see
//! the crate README for the figures. A guard must be dropped on the thread
//! that made it (it is `!Send`); guards dropped out of order keep site
//! statistics exact and drop only the stack path of the abandoned levels.
//! `async fn`s are measured from first poll to completion (wall time) and do
//! not join stack paths. `reset()` while other threads measure counts each
//! call wholly before or after it but the one in flight, which may be half
//! counted.

#![no_std]
#![deny(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

pub mod clock;
pub mod hist;
mod owned;
pub mod record;
mod site;
pub mod stack;

#[cfg(feature = "std")]
mod registry;
#[cfg(feature = "std")]
mod snapshot;
#[cfg(feature = "tracing")]
pub mod tracing;

pub use clock::{set_clock, ticks_per_second, Clock, ClockAlreadySet};
pub use record::SiteRecord;
pub use site::{for_each_site, Site, SiteKind};
pub use stack::{
    dropped_paths, enabled, flush, for_each_path, set_enabled, Guard, Instrumented, PathStats,
};
#[cfg(not(feature = "std"))]
pub use stack::{replay, replay_ticks};

#[cfg(feature = "std")]
pub use snapshot::{
    flamegraph_svg, folded_frame, folded_stack, format_ns, frame_name, site_line, snapshot, us,
    SiteSnapshot, Snapshot, StackSnapshot,
};

/// The project's Markdown, so `cargo test --doc` compiles (and, unless
/// marked `no_run`, runs) every Rust block a reader may copy; other blocks
/// carry their language (`text`, `sh`, `toml`) and are skipped.
#[cfg(doctest)]
mod markdown {
    #[doc = include_str!("../README.md")]
    mod crate_readme {}
    #[doc = include_str!("../../../README.md")]
    mod readme {}
    #[doc = include_str!("../../../scenarios/README.md")]
    mod scenarios {}
    #[doc = include_str!("../../../docs/architecture.md")]
    mod architecture {}
    #[doc = include_str!("../../../docs/gate.md")]
    mod gate {}
    #[doc = include_str!("../../../docs/report.md")]
    mod report {}
    #[doc = include_str!("../../../docs/specs/agent.md")]
    mod spec_agent {}
    #[doc = include_str!("../../../docs/specs/dttk-wire.md")]
    mod spec_dttk_wire {}
    #[doc = include_str!("../../../docs/specs/spead.md")]
    mod spec_spead {}
}

/// Zero every site and stack path (sites stay registered).
///
/// Other threads may go on measuring meanwhile: reset never writes their
/// counts (each path's counts so far become its new zero instead, see
/// `stack`), so each call is counted after the reset or not, and only a
/// call in flight as it runs may be half counted (its duration without
/// its call, or its extremes).
pub fn reset() {
    stack::reset_all(|| site::walk_sites(|s| s.clear_stats()));
}

/// `#[perfkit::measured]` / `#[perfkit::measured("name")]` on a function,
/// method, generic or `async fn`: measures every call into one site named
/// after the function's path (or the given name).
///
/// (Not `#[perfkit::measure]`: an attribute and the `measure!` macro cannot
/// share a name on stable Rust.)
pub use perfkit_macros::measured;

/// Internals the macros expand to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::site::{Site, SiteKind};
    pub use crate::stack::{Guard, Instrumented};
    #[cfg(feature = "outline")]
    pub use perfkit_macros::outline;

    /// How path slots made from now on hold a call waiting for its
    /// histogram bucket, whatever the CPU: its bucket's index (`true`) or
    /// its duration. For tests of both ways; both count the same.
    #[cfg(feature = "std")]
    pub fn set_bucket_at_once(at_once: bool) {
        crate::stack::set_bucket_at_once(at_once)
    }

    /// Start a measurement of `site`.
    #[inline(always)]
    pub fn enter(site: &'static Site) -> Guard {
        Guard::enter(site, 0)
    }

    /// Start a measurement of `site` that adds `bytes` to its byte count.
    #[inline(always)]
    pub fn enter_bytes(site: &'static Site, bytes: u64) -> Guard {
        Guard::enter(site, bytes)
    }

    /// What `span!` gives under the `off` feature: nothing.
    #[derive(Debug)]
    #[must_use = "the measurement ends when the guard is dropped"]
    pub struct Off;

    /// An empty drop, so `drop(guard)` in instrumented code compiles
    /// without lints under the `off` feature as it does without it.
    impl Drop for Off {
        #[inline(always)]
        fn drop(&mut self) {}
    }

    impl Off {
        /// Does nothing, as [`Guard::add_bytes`] would have counted.
        #[inline(always)]
        pub fn add_bytes(&mut self, _n: u64) {}
    }

    /// Lossless widening of a byte count (`usize`, `u64`, `u32`, ...).
    #[inline(always)]
    pub fn bytes<T: TryInto<u64>>(n: T) -> u64 {
        n.try_into().unwrap_or(u64::MAX)
    }
}

/// Measure an expression: `measure!("name", expr)` evaluates to `expr`'s
/// value; `measure!("name", bytes = n, expr)` also adds `n` (any unsigned
/// integer) to the site's byte count (evaluated before `expr`).
#[cfg(not(feature = "off"))]
#[macro_export]
macro_rules! measure {
    ($name:expr, bytes = $bytes:expr, $body:expr $(,)?) => {{
        static __PERFKIT_SITE: $crate::__private::Site = $crate::__private::Site::new(
            $name,
            ::core::module_path!(),
            ::core::file!(),
            ::core::line!(),
        );
        let __perfkit_guard =
            $crate::__private::enter_bytes(&__PERFKIT_SITE, $crate::__private::bytes($bytes));
        $crate::__measured_body!($name, $body)
    }};
    ($name:expr, $body:expr $(,)?) => {{
        static __PERFKIT_SITE: $crate::__private::Site = $crate::__private::Site::new(
            $name,
            ::core::module_path!(),
            ::core::file!(),
            ::core::line!(),
        );
        let __perfkit_guard = $crate::__private::enter(&__PERFKIT_SITE);
        $crate::__measured_body!($name, $body)
    }};
}

/// The body of a `measure!`: in place, or under the `outline` feature in a
/// never-inlined function whose symbol names the site.
#[cfg(all(not(feature = "off"), not(feature = "outline")))]
#[doc(hidden)]
#[macro_export]
macro_rules! __measured_body {
    ($name:expr, $body:expr) => {
        $body
    };
}

/// The body of a `measure!`, in a never-inlined function named after the site.
#[cfg(all(not(feature = "off"), feature = "outline"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __measured_body {
    ($name:expr, $body:expr) => {
        $crate::__private::outline!($name, $body)
    };
}

/// Measure an expression (the `off` feature: the bare expression).
#[cfg(feature = "off")]
#[macro_export]
macro_rules! measure {
    ($name:expr, bytes = $bytes:expr, $body:expr $(,)?) => {{
        // Never called: only keeps variables used just for the count from
        // being reported unused.
        let _ = || $bytes;
        $body
    }};
    ($name:expr, $body:expr $(,)?) => {
        $body
    };
}

/// A guard that measures until it is dropped: `let _g = perfkit::span!("name");`.
#[cfg(not(feature = "off"))]
#[macro_export]
macro_rules! span {
    ($name:expr $(,)?) => {{
        static __PERFKIT_SITE: $crate::__private::Site = $crate::__private::Site::with_kind(
            $crate::__private::SiteKind::Span,
            $name,
            ::core::module_path!(),
            ::core::file!(),
            ::core::line!(),
        );
        $crate::__private::enter(&__PERFKIT_SITE)
    }};
    ($name:expr, bytes = $bytes:expr $(,)?) => {{
        static __PERFKIT_SITE: $crate::__private::Site = $crate::__private::Site::with_kind(
            $crate::__private::SiteKind::Span,
            $name,
            ::core::module_path!(),
            ::core::file!(),
            ::core::line!(),
        );
        $crate::__private::enter_bytes(&__PERFKIT_SITE, $crate::__private::bytes($bytes))
    }};
}

/// A guard that measures until it is dropped (the `off` feature: a zero-sized value).
#[cfg(feature = "off")]
#[macro_export]
macro_rules! span {
    ($name:expr $(,)?) => {
        $crate::__private::Off
    };
    ($name:expr, bytes = $bytes:expr $(,)?) => {{
        let _ = || $bytes;
        $crate::__private::Off
    }};
}
