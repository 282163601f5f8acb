//! Nesting: a stack of active measurements per thread, and a bounded table of
//! stack paths with total and self time per path.
//!
//! A path is a node `(parent path, site)` in a fixed-size open-addressed
//! table, so a path is found by hashing two words, without allocating.
//! With `std` memory is taken, out of line, at two moments only: a
//! thread's first measurement claims a table (about 80 KB, 10 KB with
//! `compact`; leaked, and reused by the threads that come after it, see
//! `registry`), and a path's first call on a table boxes that path's
//! histogram and merge marks (`SlotHist`: about 17 KB, 4 KB with
//! `compact`), kept for the table's life. Without `std` nothing allocates:
//! the one table and the sites' histograms are statics.
//! Each thread owns its table (with `std`; the single global one without),
//! and only the owner writes to it, with plain loads and stores rather than
//! locked read-modify-writes: the snapshot reads it from another thread and
//! merges tables by path. A full table or a stack deeper than
//! [`MAX_DEPTH`] still records the site's own statistics, and counts the path
//! as dropped ([`dropped_paths`]) (on the device, see `device` for what
//! nesting more than four times as deep does).
//!
//! With `std` the stack of open measurements lives in the path slots
//! themselves (see `host`, in `stack/host.rs`); without it, measurements
//! append events to a ring that is replayed later (see `device`, in
//! `stack/device.rs`).

use crate::clock;
#[cfg(not(feature = "std"))]
mod device;
#[cfg(not(feature = "std"))]
pub(crate) use device::SiteMemo;
#[cfg(feature = "std")]
mod host;
#[cfg(feature = "std")]
use crate::hist::BUCKETS;
use crate::owned::{bump, Owned64};
use crate::site::Site;
use core::marker::PhantomData;
use core::ptr;
// The owner-written state takes `core`'s atomics, which need only plain
// loads and stores: with portable-atomic's `critical-section` feature (thumbv6m)
// even its 32-bit loads and stores are critical sections.
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering::*};
use portable_atomic::AtomicU64;

/// Deepest nesting tracked in stack paths (deeper calls still record site stats).
#[cfg(not(feature = "compact"))]
pub const MAX_DEPTH: usize = 64;
/// Deepest nesting tracked in stack paths (deeper calls still record site stats).
#[cfg(feature = "compact")]
pub const MAX_DEPTH: usize = 16;

/// Path slots per table (per thread with `std`).
#[cfg(not(feature = "compact"))]
pub const PATH_SLOTS: usize = 512;
/// Path slots per table (per thread with `std`).
#[cfg(feature = "compact")]
pub const PATH_SLOTS: usize = 64;

const PROBES: usize = 16;
const NONE: u32 = u32::MAX;
const ROOT: u32 = u32::MAX - 1;

static ENABLED: AtomicBool = AtomicBool::new(true);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Turn recording on or off at run time. When off, each measurement costs one
/// relaxed load and records nothing.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Relaxed);
}

/// Whether recording is on (see [`set_enabled`]).
#[inline(always)]
pub fn enabled() -> bool {
    ENABLED.load(Relaxed)
}

/// Count the measurements not yet counted: the device's ring of events
/// (without `std`; see the `stack` module). Every reader of the statistics
/// ([`flush`], [`for_each_path`], [`crate::for_each_site`], snapshots) does
/// it first; call it to choose when that work happens.
#[cfg(not(feature = "std"))]
pub fn replay() {
    device::drain();
}

/// Ticks the device has spent in [`replay`] since it started (without
/// `std`): the probe's deferred cost, which no measurement contains.
#[cfg(not(feature = "std"))]
pub fn replay_ticks() -> u64 {
    device::replay_ticks()
}

/// Measurements whose stack path was not recorded (table full or stack too deep).
pub fn dropped_paths() -> u64 {
    #[cfg(not(feature = "std"))]
    device::drain();
    DROPPED.load(Relaxed)
}

/// One stack path of one thread, and the statistics of the calls that
/// ended on it: the folded-stack figures (calls, total, self) and the rest of
/// the site's (min, max, bytes and, with `std`, the histogram). A site's
/// statistics are the sum over its paths, added to the site by [`flush`].
/// The owner writes the first group with plain stores; [`flush`] writes the
/// `merged_*` marks (what it has added to the site so far) under its lock.
struct PathSlot {
    site: AtomicPtr<Site>,
    parent: AtomicU32,
    calls: Owned64,
    total: Owned64,
    /// Without `std` (counted by the device's replay); with it, self time
    /// is `total` minus `walk.nested`.
    #[cfg(not(feature = "std"))]
    self_: Owned64,
    min: Owned64,
    max: Owned64,
    bytes: Owned64,
    #[cfg(feature = "std")]
    hist: AtomicPtr<SlotHist>,
    merged_calls: Owned64,
    merged_total: Owned64,
    merged_bytes: Owned64,
    /// The host's stack (`host`): the owner's bookkeeping of this path.
    #[cfg(feature = "std")]
    walk: host::Walk,
}

impl PathSlot {
    const fn new() -> Self {
        PathSlot {
            site: AtomicPtr::new(ptr::null_mut()),
            parent: AtomicU32::new(NONE),
            calls: Owned64::new(0),
            total: Owned64::new(0),
            #[cfg(not(feature = "std"))]
            self_: Owned64::new(0),
            min: Owned64::new(u64::MAX),
            max: Owned64::new(0),
            bytes: Owned64::new(0),
            #[cfg(feature = "std")]
            hist: AtomicPtr::new(ptr::null_mut()),
            merged_calls: Owned64::new(0),
            merged_total: Owned64::new(0),
            merged_bytes: Owned64::new(0),
            #[cfg(feature = "std")]
            walk: host::Walk::new(),
        }
    }

    /// Count one call of `ticks`. (With `std`: `host`'s `record`.)
    #[cfg(not(feature = "std"))]
    #[inline(always)]
    fn record(&self, site: &'static Site, ticks: u64, self_: u64, bytes: u64) {
        bump(&self.calls, 1);
        bump(&self.total, ticks);
        bump(&self.self_, self_);
        if ticks < self.min.load() {
            self.min.store(ticks);
        }
        if ticks > self.max.load() {
            self.max.store(ticks);
        }
        if bytes != 0 {
            bump(&self.bytes, bytes);
        }
        // Without `std` there is one context and no memory to spare for a
        // histogram per path: the site's own (plain cells with `single-core`).
        site.histogram().record(ticks);
    }

    /// `record` of a call shorter than 2^32 ticks and without bytes, on
    /// the device: 32-bit arithmetic, which on a 32-bit core halves the
    /// loads, stores and compares, and a histogram bucket found without a
    /// count of leading zeros (a library call on the Cortex-M0+).
    #[cfg(not(feature = "std"))]
    #[inline(always)]
    fn record_u32(&self, site: &'static Site, ticks: u32, self_: u32) {
        self.calls.add_u32(1);
        self.total.add_u32(ticks);
        self.self_.add_u32(self_);
        self.min.lower_to_u32(ticks);
        self.max.raise_to_u32(ticks);
        site.histogram().record_u32(ticks);
    }

    /// Add what this slot counted since the last merge to its site.
    fn merge(&self) {
        let p = self.site.load(Acquire);
        if p.is_null() {
            return;
        }
        // SAFETY: only `&'static Site`s are stored.
        let site: &'static Site = unsafe { &*p };
        let delta = |v: &Owned64, mark: &Owned64| {
            let now = v.load();
            let d = now.wrapping_sub(mark.load());
            mark.store(now);
            d
        };
        let calls = delta(&self.calls, &self.merged_calls);
        let total = delta(&self.total, &self.merged_total);
        let bytes = delta(&self.bytes, &self.merged_bytes);
        site.merge(calls, total, bytes, self.min.load(), self.max.load());
        #[cfg(feature = "std")]
        self.merge_hist(site);
    }

    /// Forget the extremes (the site's were cleared).
    fn clear_extremes(&self) {
        self.min.store(u64::MAX);
        self.max.store(0);
    }

    /// Make what this path counted so far its new zero ([`crate::reset`]),
    /// without writing a cell its owner writes but the extremes: merge it
    /// (the caller clears the sites next), and take the counts the merge
    /// saw as the baselines [`PathTable::for_each`] counts from.
    ///
    /// Zeroing the owner's counts instead (as this once did) lost against
    /// an owner inside `record`, between its load of `calls` and its
    /// store: the store brought back the old count plus one, and with the
    /// marks zeroed the next merge added the path's whole history to its
    /// site again. The extremes cannot be kept from a baseline, so they
    /// are written; there an owner can only store the duration of the call
    /// it is recording, the one in flight.
    #[cfg(feature = "std")]
    fn rebase(&self) {
        self.merge();
        let h = self.hist.load(Acquire);
        if h.is_null() {
            return;
        }
        // SAFETY: as in `record`.
        let h = unsafe { &*h };
        h.base_calls.store(self.merged_calls.load());
        h.base_total.store(self.merged_total.load());
        h.base_nested.store(self.walk.nested.load());
        self.clear_extremes();
    }

    /// Calls, total and self ticks since the last [`crate::reset`].
    #[cfg(feature = "std")]
    fn since_reset(&self) -> (u64, u64, u64) {
        let (calls, total, nested) = (
            self.calls.load(),
            self.total.load(),
            self.walk.nested.load(),
        );
        let h = self.hist.load(Acquire);
        if h.is_null() {
            return (calls, total, total.saturating_sub(nested));
        }
        // SAFETY: as in `record`.
        let h = unsafe { &*h };
        // Saturating: a reset between the loads above and these.
        let total = total.saturating_sub(h.base_total.load());
        let nested = nested.saturating_sub(h.base_nested.load());
        (
            calls.saturating_sub(h.base_calls.load()),
            total,
            total.saturating_sub(nested),
        )
    }

    /// Zero everything, marks included (nothing of it stays in the sites).
    /// Without `std` only: one context records and resets there.
    #[cfg(not(feature = "std"))]
    fn clear(&self) {
        for c in [
            &self.calls,
            &self.total,
            #[cfg(not(feature = "std"))]
            &self.self_,
            #[cfg(feature = "std")]
            &self.walk.nested,
            &self.bytes,
            &self.merged_calls,
            &self.merged_total,
            &self.merged_bytes,
        ] {
            c.store(0);
        }
        self.clear_extremes();
    }
}

/// A path's histogram, owner-written, and what [`flush`] added of it; and
/// the path's counts at the last [`crate::reset`] (written by it, under the merge
/// lock), which it keeps here, out of the slot the hot path walks.
#[cfg(feature = "std")]
struct SlotHist {
    counts: [Owned64; BUCKETS],
    merged: [Owned64; BUCKETS],
    /// Samples added to the site so far (the sum of `merged`).
    merged_count: Owned64,
    /// The call whose sample was added from the slot's pending one (see
    /// `host`), 0 for none.
    lent: Owned64,
    /// `calls`, `total` and `walk.nested` at the last reset.
    base_calls: Owned64,
    base_total: Owned64,
    base_nested: Owned64,
}

/// A bounded table of stack paths (see the module docs).
pub(crate) struct PathTable {
    slots: [PathSlot; PATH_SLOTS],
    /// The parent of the top-level paths (never merged nor listed).
    #[cfg(feature = "std")]
    root: PathSlot,
}

impl PathTable {
    pub(crate) const fn new() -> Self {
        PathTable {
            slots: [const { PathSlot::new() }; PATH_SLOTS],
            #[cfg(feature = "std")]
            root: PathSlot::new(),
        }
    }

    /// Add every slot's new counts to its site.
    pub(crate) fn merge(&self) {
        for s in &self.slots {
            s.merge();
        }
    }

    /// Forget the extremes of `site`'s paths.
    pub(crate) fn clear_extremes(&self, site: &Site) {
        let sp = site as *const Site as *mut Site;
        for s in &self.slots {
            if s.site.load(Acquire) == sp {
                s.clear_extremes();
            }
        }
    }

    /// The slot of path `parent;site`, creating it if needed; NONE when full.
    #[inline(always)]
    fn child(&self, parent: u32, site: &'static Site) -> u32 {
        let sp = site as *const Site as *mut Site;
        let idx = home(parent, site);
        // The path is nearly always where it hashes to, or, when another
        // path took that slot first, in the next one: test those two inline,
        // probe further (and create) out of line, so the hot path stays
        // short and needs few registers. With a few dozen paths in a table,
        // two that hash alike are likely, three are not (but for sites of
        // one module and name, whose keys are equal: their third path under
        // one parent always probes): so the work of finding a path hardly
        // depends on which paths happen to collide.
        let s = &self.slots[idx];
        if s.site.load(Relaxed) == sp && s.parent.load(Relaxed) == parent {
            return idx as u32;
        }
        let next = (idx + 1) & (PATH_SLOTS - 1);
        let s = &self.slots[next];
        if s.site.load(Relaxed) == sp && s.parent.load(Relaxed) == parent {
            return next as u32;
        }
        self.probe(parent, site, idx)
    }

    #[cold]
    #[inline(never)]
    fn probe(&self, parent: u32, site: &'static Site, mut idx: usize) -> u32 {
        let sp = site as *const Site as *mut Site;
        for _ in 0..PROBES {
            idx &= PATH_SLOTS - 1;
            let s = &self.slots[idx];
            let p = s.site.load(Relaxed);
            if p == sp && s.parent.load(Relaxed) == parent {
                return idx as u32;
            }
            if p.is_null() {
                claim(s, parent, site);
                return idx as u32;
            }
            idx += 1;
        }
        NONE
    }

    /// Zero every path (without `std`, see `PathSlot::clear`).
    #[cfg(not(feature = "std"))]
    pub(crate) fn clear(&self) {
        for s in &self.slots {
            s.clear();
        }
    }

    /// Make every path's counts so far its new zero (`PathSlot::rebase`).
    #[cfg(feature = "std")]
    pub(crate) fn rebase(&self) {
        for s in &self.slots {
            s.rebase();
        }
    }

    /// Visit every path with calls.
    pub(crate) fn for_each(&self, f: &mut dyn FnMut(&PathStats<'_>)) {
        let mut chain: [&'static Site; MAX_DEPTH] = [dummy(); MAX_DEPTH];
        'slots: for s in &self.slots {
            if s.site.load(Acquire).is_null() {
                continue;
            }
            #[cfg(feature = "std")]
            let (calls, total_ticks, self_ticks) = s.since_reset();
            #[cfg(not(feature = "std"))]
            let (calls, total_ticks, self_ticks) = (s.calls.load(), s.total.load(), s.self_.load());
            if calls == 0 {
                continue;
            }
            // Walk up to the root, filling the chain from the end.
            let mut n = 0;
            let mut cur = s;
            loop {
                let p = cur.site.load(Acquire);
                if p.is_null() || n == MAX_DEPTH {
                    continue 'slots;
                }
                // SAFETY: only `&'static Site`s are stored.
                chain[MAX_DEPTH - 1 - n] = unsafe { &*p };
                n += 1;
                match cur.parent.load(Relaxed) {
                    ROOT => break,
                    i if (i as usize) < PATH_SLOTS => cur = &self.slots[i as usize],
                    _ => continue 'slots,
                }
            }
            f(&PathStats {
                sites: &chain[MAX_DEPTH - n..],
                calls,
                total_ticks,
                self_ticks,
            });
        }
    }
}

/// Where path `parent;site` hashes to in a table: by the site's key (its
/// module and name), never its address, so that the same sites entered in
/// the same order take the same slots, and cost the same probes, in every
/// build.
#[inline(always)]
fn home(parent: u32, site: &'static Site) -> usize {
    let h = (site.key() ^ parent.wrapping_mul(0x9E37_79B9)).wrapping_mul(0x85EB_CA6B);
    (h >> 16) as usize & (PATH_SLOTS - 1)
}

/// Take the empty slot `s` for path `parent;site` (once per path and table).
#[cold]
#[inline(never)]
fn claim(s: &PathSlot, parent: u32, site: &'static Site) {
    // A site is registered when its first path is made (or on the fallback
    // in `end`), so the hot path has no registration check.
    site.ensure_registered();
    #[cfg(feature = "std")]
    if s.hist.load(Relaxed).is_null() {
        let h = std::boxed::Box::new(SlotHist {
            counts: [const { Owned64::new(0) }; BUCKETS],
            merged: [const { Owned64::new(0) }; BUCKETS],
            merged_count: Owned64::new(0),
            lent: Owned64::new(0),
            base_calls: Owned64::new(0),
            base_total: Owned64::new(0),
            base_nested: Owned64::new(0),
        });
        s.walk.choose_bucketing();
        s.hist.store(std::boxed::Box::into_raw(h), Release);
    }
    s.parent.store(parent, Relaxed);
    s.site.store(site as *const Site as *mut Site, Release);
}

fn dummy() -> &'static Site {
    static DUMMY: Site = Site::new("", "", "", 0);
    &DUMMY
}

#[cfg(not(feature = "std"))]
static GLOBAL_TABLE: PathTable = PathTable::new();

/// One stack path's statistics, as [`for_each_path`] gives them.
#[derive(Debug, Clone, Copy)]
pub struct PathStats<'a> {
    /// The sites on the path, outermost first.
    pub sites: &'a [&'static Site],
    /// Calls of the innermost site on this path.
    pub calls: u64,
    /// Ticks spent in this path.
    pub total_ticks: u64,
    /// Ticks spent in this path minus its nested measurements.
    pub self_ticks: u64,
}

/// Visit every recorded stack path with calls (no allocation). Paths from
/// different threads are visited separately (the same path may come more
/// than once).
pub fn for_each_path(mut f: impl FnMut(&PathStats<'_>)) {
    #[cfg(feature = "std")]
    crate::registry::for_each_table(|t| t.for_each(&mut f));
    #[cfg(not(feature = "std"))]
    {
        device::drain();
        GLOBAL_TABLE.for_each(&mut f);
    }
}

/// Start every path and, with `clear_sites`, every site from zero
/// ([`crate::reset`]; the paths stay), under the merge lock, so no flush
/// comes between the two.
///
/// With `std` the path tables are their threads' own, recording as this
/// runs: each path is merged, and the counts merged become its new zero
/// (`PathSlot::rebase`), then the sites are zeroed. So a call counts after
/// the reset if, and only if, its path's count grew after the merge: at
/// most the call in flight is half counted, and no past call comes back.
pub(crate) fn reset_all(clear_sites: impl FnOnce()) {
    let _merging = merge_lock();
    #[cfg(feature = "std")]
    crate::registry::for_each_table(|t| t.rebase());
    #[cfg(not(feature = "std"))]
    {
        device::drain();
        GLOBAL_TABLE.clear();
    }
    clear_sites();
    DROPPED.store(0, Relaxed);
}

/// An active measurement: records into its site when dropped (on the
/// device, when the ring of events it appended to is replayed).
///
/// Made by [`span!`](crate::span) and [`measure!`](crate::measure). It is
/// neither `Send` nor `Sync`: it belongs to the thread's stack.
#[must_use = "the measurement ends when the guard is dropped"]
pub struct Guard {
    site: Option<&'static Site>,
    start: u64,
    /// Its thread's stack and path (with `std`; on the device the ring of
    /// events keeps them).
    #[cfg(feature = "std")]
    mark: Mark,
    #[cfg(feature = "std")]
    slot: *const PathSlot,
    bytes: u64,
    _not_send: PhantomData<*const ()>,
}

impl Guard {
    /// Start measuring `site`, adding `bytes` to its byte count at the end.
    #[inline(always)]
    pub fn enter(site: &'static Site, bytes: u64) -> Guard {
        if !ENABLED.load(Relaxed) {
            return Guard {
                site: None,
                start: 0,
                #[cfg(feature = "std")]
                mark: NO_MARK,
                #[cfg(feature = "std")]
                slot: ptr::null(),
                bytes: 0,
                _not_send: PhantomData,
            };
        }
        #[cfg(not(feature = "std"))]
        {
            let event = device::begin(site);
            let start = clock::now();
            event.set_time(start);
            Guard {
                site: Some(site),
                start,
                bytes,
                _not_send: PhantomData,
            }
        }
        #[cfg(feature = "std")]
        {
            let (mark, slot) = begin(site);
            let start = clock::now();
            Guard {
                site: Some(site),
                start,
                mark,
                slot,
                bytes,
                _not_send: PhantomData,
            }
        }
    }

    /// Add to the byte count reported when the guard drops. Wrapping,
    /// not saturating: it runs inside the measured code (`framing::decode`
    /// counts what it consumed there), whose instruction counts CI gates;
    /// so one measurement's count past 2^64 bytes wraps.
    pub fn add_bytes(&mut self, n: u64) {
        self.bytes = self.bytes.wrapping_add(n);
    }
}

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(site) = self.site {
            let now = clock::now();
            #[cfg(not(feature = "std"))]
            if self.bytes == 0 {
                device::end(site, now);
            } else {
                device::end_bytes(site, now, self.bytes);
            }
            #[cfg(feature = "std")]
            {
                let ticks = now.saturating_sub(self.start);
                if self.bytes == 0 {
                    end_no_bytes(site, ticks, self.mark, self.slot);
                } else {
                    end(site, ticks, self.mark, self.slot, self.bytes);
                }
            }
        }
    }
}

// `begin` and `end` are the bookkeeping either side of the two clock reads.
// They are out of line on purpose: a measurement inlines to a flag test, a
// call, a clock read (and the same at the end), so instrumenting every stage
// costs little code, and the guard's drop glue stays small enough to inline.
// With `std` they are `host`'s; on the device, `device`'s.
#[cfg(feature = "std")]
use host::{begin, end, end_no_bytes, Mark, NO_MARK};
#[cfg(feature = "std")]
pub(crate) use host::{detach, set_bucket_at_once};

#[cold]
#[inline(never)]
fn record_unpathed(site: &'static Site, ticks: u64, bytes: u64) {
    site.ensure_registered();
    site.record(ticks, bytes);
}

/// Add every thread's measurements since the last call to the sites'
/// statistics. [`crate::for_each_site`] and snapshots call it; call it
/// yourself before reading a [`Site`] you hold directly.
///
/// Measurements land in the measuring thread's path table with plain
/// stores (no locked read-modify-write on the hot path); this adds each
/// path's growth since the last merge to its site, under a lock, so
/// nothing is counted twice or lost, and a snapshot is exact for the calls
/// that ended before it.
pub fn flush() {
    let _merging = merge_lock();
    #[cfg(feature = "std")]
    crate::registry::for_each_table(|t| t.merge());
    #[cfg(not(feature = "std"))]
    {
        device::drain();
        GLOBAL_TABLE.merge();
    }
}

/// Forget the extremes of `site`'s paths ([`Site::clear`]).
pub(crate) fn clear_extremes(site: &Site) {
    let _merging = merge_lock();
    #[cfg(feature = "std")]
    crate::registry::for_each_table(|t| t.clear_extremes(site));
    #[cfg(not(feature = "std"))]
    {
        device::drain();
        GLOBAL_TABLE.clear_extremes(site);
    }
}

/// Serialises merges (their marks are read and written as a whole).
#[cfg(feature = "std")]
fn merge_lock() -> std::sync::MutexGuard<'static, ()> {
    static MERGE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    MERGE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Without `std` one context merges (the firmware's main loop).
#[cfg(not(feature = "std"))]
fn merge_lock() -> NoLock {
    NoLock
}

#[cfg(not(feature = "std"))]
struct NoLock;

impl core::fmt::Debug for Guard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Guard")
            .field("site", &self.site.map(|s| s.name()))
            .field("start", &self.start)
            .finish()
    }
}

/// A future measured from its first poll to completion (wall time, waiting
/// included), made by `#[perfkit::measured]` on `async fn`.
///
/// It records into the site's statistics but does not join the thread's
/// stack: a future can move between threads and interleave with others on
/// one thread between polls, so stack paths of async code would be wrong.
#[derive(Debug)]
pub struct Instrumented<F> {
    site: &'static Site,
    start: Option<u64>,
    fut: F,
}

impl<F> Instrumented<F> {
    /// Measure `fut` into `site`.
    pub fn new(site: &'static Site, fut: F) -> Self {
        Instrumented {
            site,
            start: None,
            fut,
        }
    }
}

impl<F: core::future::Future> core::future::Future for Instrumented<F> {
    type Output = F::Output;
    fn poll(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of
        // `self`, `Instrumented` has no Drop, and it is `Unpin` only when `F` is.
        let this = unsafe { self.get_unchecked_mut() };
        if this.start.is_none() && enabled() {
            this.site.ensure_registered();
            this.start = Some(clock::now());
        }
        // SAFETY: see above.
        let fut = unsafe { core::pin::Pin::new_unchecked(&mut this.fut) };
        match fut.poll(cx) {
            core::task::Poll::Ready(v) => {
                if let Some(start) = this.start.take() {
                    this.site.record(clock::now().saturating_sub(start), 0);
                }
                core::task::Poll::Ready(v)
            }
            core::task::Poll::Pending => core::task::Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_placed_by_its_sites_module_and_name_not_its_address() {
        static A: Site = Site::new("stage", "m", "f.rs", 1);
        static B: Site = Site::new("stage", "m", "g.rs", 9);
        static C: Site = Site::new("other", "m", "f.rs", 1);
        static D: Site = Site::new("stage", "n", "f.rs", 1);
        assert!(!core::ptr::eq(&A, &B));
        let parents = [ROOT, 0, 7, 300];
        for p in parents {
            assert_eq!(home(p, &A), home(p, &B), "parent {p}");
        }
        for other in [&C, &D] {
            assert!(parents.iter().any(|&p| home(p, &A) != home(p, other)));
        }
        // FNV-1a of "perfkit", a zero byte and "x": the same in every build.
        assert_eq!(Site::new("x", "perfkit", "", 0).key(), 0x4e28_74f2);
    }
}
