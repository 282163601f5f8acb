//! Nesting: a stack of active measurements per thread, and a bounded table of
//! stack paths with total and self time per path.
//!
//! A path is a node `(parent path, site)` in a fixed-size open-addressed
//! table, so a path is found by hashing two words, and nothing allocates.
//! Each thread owns its table (with `std`; the single global one without),
//! and only the owner writes to it, with plain loads and stores rather than
//! locked read-modify-writes: the snapshot reads it from another thread and
//! merges tables by path. A full table or a stack deeper than
//! [`MAX_DEPTH`] still records the site's own statistics, and counts the path
//! as dropped ([`dropped_paths`]).

use crate::clock;
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

/// Measurements whose stack path was not recorded (table full or stack too deep).
pub fn dropped_paths() -> u64 {
    DROPPED.load(Relaxed)
}

struct PathSlot {
    site: AtomicPtr<Site>,
    parent: AtomicU32,
    calls: Owned64,
    total: Owned64,
    self_: Owned64,
}

impl PathSlot {
    const fn new() -> Self {
        PathSlot {
            site: AtomicPtr::new(ptr::null_mut()),
            parent: AtomicU32::new(NONE),
            calls: Owned64::new(0),
            total: Owned64::new(0),
            self_: Owned64::new(0),
        }
    }
}

/// A bounded table of stack paths (see the module docs), and the thread's
/// deferred histogram sample.
pub(crate) struct PathTable {
    slots: [PathSlot; PATH_SLOTS],
    pending_site: AtomicPtr<Site>,
    pending_ticks: Owned64,
}

impl PathTable {
    pub(crate) const fn new() -> Self {
        PathTable {
            slots: [const { PathSlot::new() }; PATH_SLOTS],
            pending_site: AtomicPtr::new(ptr::null_mut()),
            pending_ticks: Owned64::new(0),
        }
    }

    /// Keep this call's histogram sample and add the previous one.
    ///
    /// Why: the bucket of a sample depends on the clock read just before,
    /// and a locked add to an address that depends on RDTSC's result stalls
    /// the next clock read (measured: +5 ns per call, a quarter of the whole
    /// floor). The previous sample's bucket was known long ago, so its add
    /// overlaps with everything else. The histogram therefore lags by at most
    /// one sample per thread; [`flush`] (called by [`crate::for_each_site`]
    /// and so by snapshots) adds the calling thread's, and the next owner of
    /// a table adds a departed thread's.
    #[inline(always)]
    fn defer(&self, site: &'static Site, ticks: u64) {
        let prev = self.pending_site.load(Relaxed);
        let prev_ticks = self.pending_ticks.load();
        self.pending_site
            .store(site as *const Site as *mut Site, Relaxed);
        self.pending_ticks.store(ticks);
        if !prev.is_null() {
            // SAFETY: only `&'static Site`s are stored.
            unsafe { &*prev }.histogram().record(prev_ticks);
        }
    }

    /// Add the deferred sample now.
    pub(crate) fn flush(&self) {
        // Only the owner writes `pending_site`: a load and a store suffice.
        let prev = self.pending_site.load(Relaxed);
        self.pending_site.store(ptr::null_mut(), Relaxed);
        if !prev.is_null() {
            // SAFETY: only `&'static Site`s are stored.
            unsafe { &*prev }
                .histogram()
                .record(self.pending_ticks.load());
        }
    }

    /// The slot of path `parent;site`, creating it if needed; NONE when full.
    #[inline(always)]
    fn child(&self, parent: u32, site: &'static Site) -> u32 {
        let sp = site as *const Site as *mut Site;
        let h = ((sp as usize >> 4) as u32 ^ parent.wrapping_mul(0x9E37_79B9))
            .wrapping_mul(0x85EB_CA6B);
        let mut idx = (h >> 16) as usize;
        for _ in 0..PROBES {
            idx &= PATH_SLOTS - 1;
            let s = &self.slots[idx];
            let p = s.site.load(Acquire);
            if p == sp && s.parent.load(Relaxed) == parent {
                return idx as u32;
            }
            if p.is_null() {
                s.parent.store(parent, Relaxed);
                s.site.store(sp, Release);
                return idx as u32;
            }
            idx += 1;
        }
        NONE
    }

    #[inline(always)]
    fn add(&self, slot: u32, total: u64, self_: u64) {
        let s = &self.slots[slot as usize];
        bump(&s.calls, 1);
        bump(&s.total, total);
        bump(&s.self_, self_);
    }

    pub(crate) fn clear(&self) {
        for s in &self.slots {
            s.calls.store(0);
            s.total.store(0);
            s.self_.store(0);
        }
    }

    /// Visit every path with calls.
    pub(crate) fn for_each(&self, f: &mut dyn FnMut(&PathStats<'_>)) {
        let mut chain: [&'static Site; MAX_DEPTH] = [dummy(); MAX_DEPTH];
        'slots: for s in &self.slots {
            let calls = s.calls.load();
            if calls == 0 || s.site.load(Acquire).is_null() {
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
                total_ticks: s.total.load(),
                self_ticks: s.self_.load(),
            });
        }
    }
}

fn dummy() -> &'static Site {
    static DUMMY: Site = Site::new("", "", "", 0);
    &DUMMY
}

/// The stack of active measurements of one thread (or of the whole program
/// without `std`).
pub(crate) struct Local {
    depth: AtomicU32,
    slots: [AtomicU32; MAX_DEPTH],
    child: [Owned64; MAX_DEPTH],
    #[cfg(feature = "std")]
    table: AtomicPtr<PathTable>,
}

impl Local {
    const fn new() -> Self {
        Local {
            depth: AtomicU32::new(0),
            slots: [const { AtomicU32::new(NONE) }; MAX_DEPTH],
            child: [const { Owned64::new(0) }; MAX_DEPTH],
            #[cfg(feature = "std")]
            table: AtomicPtr::new(ptr::null_mut()),
        }
    }

    #[inline(always)]
    fn table(&self) -> &'static PathTable {
        #[cfg(feature = "std")]
        {
            let t = self.table.load(Relaxed);
            if t.is_null() {
                return self.attach();
            }
            // SAFETY: tables are leaked, never freed.
            unsafe { &*t }
        }
        #[cfg(not(feature = "std"))]
        {
            &GLOBAL_TABLE
        }
    }

    #[cfg(feature = "std")]
    #[cold]
    #[inline(never)]
    fn attach(&self) -> &'static PathTable {
        let t = crate::registry::claim_table();
        self.table
            .store(t as *const PathTable as *mut PathTable, Relaxed);
        t
    }

    /// Push `site`; returns its depth (the guard keeps it).
    #[inline(always)]
    fn push(&self, site: &'static Site) -> u32 {
        let d = self.depth.load(Relaxed);
        let du = d as usize;
        if du < MAX_DEPTH {
            let parent = if du == 0 {
                ROOT
            } else {
                self.slots[du - 1].load(Relaxed)
            };
            let slot = if parent == NONE {
                NONE
            } else {
                self.table().child(parent, site)
            };
            if slot == NONE {
                DROPPED.add(1, Relaxed);
            }
            self.slots[du].store(slot, Relaxed);
            self.child[du].store(0);
        } else {
            DROPPED.add(1, Relaxed);
        }
        self.depth.store(d.wrapping_add(1), Relaxed);
        d
    }

    /// Pop the level pushed at depth `d`, which took `ticks`.
    #[inline(always)]
    fn pop(&self, d: u32, ticks: u64) {
        let cur = self.depth.load(Relaxed);
        if cur <= d {
            // Popped already: an outer guard was dropped before this one.
            return;
        }
        let du = d as usize;
        if du < MAX_DEPTH {
            let slot = self.slots[du].load(Relaxed);
            if slot != NONE {
                let child = self.child[du].load();
                self.table().add(slot, ticks, ticks.saturating_sub(child));
            }
            if du > 0 {
                bump(&self.child[du - 1], ticks);
            }
        }
        // Levels above `d` still open (guards leaked or dropped out of order)
        // are abandoned here; their own drops find them popped.
        self.depth.store(d, Relaxed);
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    static LOCAL: Local = const { Local::new() };
}

#[cfg(feature = "std")]
#[inline(always)]
fn with_local<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    LOCAL.try_with(f).ok()
}

#[cfg(not(feature = "std"))]
static GLOBAL_LOCAL: Local = Local::new();
#[cfg(not(feature = "std"))]
static GLOBAL_TABLE: PathTable = PathTable::new();

#[cfg(not(feature = "std"))]
#[inline(always)]
fn with_local<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    Some(f(&GLOBAL_LOCAL))
}

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
    GLOBAL_TABLE.for_each(&mut f);
}

/// Zero all path statistics (keeps the paths).
pub(crate) fn clear_paths() {
    #[cfg(feature = "std")]
    crate::registry::for_each_table(|t| t.clear());
    #[cfg(not(feature = "std"))]
    GLOBAL_TABLE.clear();
    DROPPED.store(0, Relaxed);
}

/// An active measurement: records into its site when dropped.
///
/// Made by [`span!`](crate::span) and [`measure!`](crate::measure). It is
/// neither `Send` nor `Sync`: it belongs to the thread's stack.
#[must_use = "the measurement ends when the guard is dropped"]
pub struct Guard {
    site: Option<&'static Site>,
    start: u64,
    depth: u32,
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
                depth: 0,
                bytes: 0,
                _not_send: PhantomData,
            };
        }
        let depth = begin(site);
        let start = clock::now();
        Guard {
            site: Some(site),
            start,
            depth,
            bytes,
            _not_send: PhantomData,
        }
    }

    /// Add to the byte count reported when the guard drops.
    pub fn add_bytes(&mut self, n: u64) {
        self.bytes = self.bytes.wrapping_add(n);
    }
}

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(site) = self.site {
            let now = clock::now();
            end(site, now.saturating_sub(self.start), self.depth, self.bytes);
        }
    }
}

// `begin` and `end` are the bookkeeping either side of the two clock reads.
// They are out of line on purpose: a measurement inlines to a flag test, a
// call, a clock read (and the same at the end), so instrumenting every stage
// costs little code, and the guard's drop glue stays small enough to inline.

/// Register the site if needed and push it on the stack; returns its depth.
#[inline(never)]
fn begin(site: &'static Site) -> u32 {
    site.ensure_registered();
    with_local(|l| l.push(site)).unwrap_or(NONE)
}

/// Pop the site pushed at `depth` and record `ticks` into it.
#[inline(never)]
fn end(site: &'static Site, ticks: u64, depth: u32, bytes: u64) {
    let deferred = with_local(|l| {
        if depth != NONE {
            l.pop(depth, ticks);
        }
        l.table().defer(site, ticks);
    });
    if deferred.is_none() {
        site.histogram().record(ticks);
    }
    site.record_counters(ticks, bytes);
}

/// Add the calling thread's deferred histogram sample (see
/// `PathTable::defer`). [`crate::for_each_site`] and snapshots call it; call
/// it yourself before reading [`Site::histogram`] directly.
pub fn flush() {
    with_local(|l| {
        #[cfg(feature = "std")]
        if l.table.load(Relaxed).is_null() {
            return;
        }
        l.table().flush();
    });
}

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
