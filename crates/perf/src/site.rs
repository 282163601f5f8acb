//! Call sites: one `static` per macro use, registered once, lazily, in an
//! intrusive lock-free list (like `tracing` callsites). The list is only ever
//! pushed to, so walking it needs no lock and no allocation.

use crate::hist::Histogram;
use crate::owned::Counter;
use core::ptr;
use portable_atomic::{AtomicPtr, AtomicU8, Ordering};

const UNREGISTERED: u8 = 0;
const REGISTERING: u8 = 1;
const REGISTERED: u8 = 2;

/// Which instrument made a site, named in the text dump after the site's
/// name as the field's MicroPython `measure` decorator named itself there
/// (`crc16 measure: calls:...`): `measure!` and `#[measured]` time a call,
/// `span!` guards (and `tracing` spans) time a scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum SiteKind {
    /// `measure!` or `#[measured]`.
    #[default]
    Measure,
    /// `span!` or a `tracing` span.
    Span,
}

impl SiteKind {
    /// The word the text dump prints after the site's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteKind::Measure => "measure",
            SiteKind::Span => "span",
        }
    }
}

/// One measured call site: where it is, and its statistics in raw ticks.
///
/// Created by the macros as a `static`; firmware reads it through
/// [`for_each_site`] to send its own snapshot.
pub struct Site {
    name: &'static str,
    module: &'static str,
    file: &'static str,
    line: u32,
    /// A hash of the module and the name: where the site's stack paths
    /// live in a path table ([`Site::key`]).
    key: u32,
    kind: SiteKind,
    state: AtomicU8,
    next: AtomicPtr<Site>,
    calls: Counter,
    cum: Counter,
    min: Counter,
    max: Counter,
    bytes: Counter,
    hist: Histogram,
    /// The stack path it took last (the device's stack, `stack`).
    #[cfg(not(feature = "std"))]
    memo: crate::stack::SiteMemo,
}

static HEAD: AtomicPtr<Site> = AtomicPtr::new(ptr::null_mut());

/// 32-bit FNV-1a of `module`, a separator and `name` ([`Site::key`]).
const fn key_of(module: &str, name: &str) -> u32 {
    const PRIME: u32 = 0x0100_0193;
    let mut h: u32 = 0x811c_9dc5;
    let parts = [module.as_bytes(), b"\0", name.as_bytes()];
    let mut p = 0;
    while p < parts.len() {
        let bytes = parts[p];
        let mut i = 0;
        while i < bytes.len() {
            h = (h ^ bytes[i] as u32).wrapping_mul(PRIME);
            i += 1;
        }
        p += 1;
    }
    h
}

impl Site {
    /// A new, unregistered site (for `static`s made by the macros).
    pub const fn new(
        name: &'static str,
        module: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        Self::with_kind(SiteKind::Measure, name, module, file, line)
    }

    /// A new, unregistered site made by `kind` (`span!` makes [`SiteKind::Span`]).
    pub const fn with_kind(
        kind: SiteKind,
        name: &'static str,
        module: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        Site {
            name,
            module,
            file,
            line,
            key: key_of(module, name),
            kind,
            state: AtomicU8::new(UNREGISTERED),
            next: AtomicPtr::new(ptr::null_mut()),
            calls: Counter::new(0),
            cum: Counter::new(0),
            min: Counter::new(u64::MAX),
            max: Counter::new(0),
            bytes: Counter::new(0),
            hist: Histogram::new(),
            #[cfg(not(feature = "std"))]
            memo: crate::stack::SiteMemo::new(),
        }
    }

    /// A hash of the site's module and name, made at compile time: what a
    /// path table places the site's paths by. Not its address, which moves
    /// with every build (a change anywhere, the folder it was built in), so
    /// that which paths share a place in the table, and so the work of
    /// finding them (instructions, cycles), is the same in every build of
    /// the same sites. Two sites of one name in one module share a key.
    #[inline(always)]
    pub(crate) fn key(&self) -> u32 {
        self.key
    }

    /// The stack path it took last.
    #[cfg(not(feature = "std"))]
    #[inline(always)]
    pub(crate) fn memo(&self) -> &crate::stack::SiteMemo {
        &self.memo
    }

    /// Register on first use: one relaxed load when already registered.
    #[inline(always)]
    pub(crate) fn ensure_registered(&'static self) {
        if crate::owned::load_u8(&self.state, Ordering::Relaxed) != REGISTERED {
            self.register();
        }
    }

    #[cold]
    #[inline(never)]
    fn register(&'static self) {
        if self
            .state
            .compare_exchange(
                UNREGISTERED,
                REGISTERING,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // Someone else is registering or has registered it; either way
            // it will be on the list before they return, and recording into
            // the statics is safe meanwhile.
            return;
        }
        let me = self as *const Site as *mut Site;
        let mut head = HEAD.load(Ordering::Acquire);
        loop {
            self.next.store(head, Ordering::Relaxed);
            match HEAD.compare_exchange_weak(head, me, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        self.state.store(REGISTERED, Ordering::Release);
    }

    /// Add one measured duration (ticks) and a byte count.
    #[inline(always)]
    pub fn record(&self, ticks: u64, bytes: u64) {
        self.hist.record(ticks);
        self.merge(1, ticks, bytes, ticks, ticks);
    }

    /// Add calls, their ticks and bytes, and lower / raise the extremes
    /// (a path's growth since the last merge, see `stack::flush`).
    #[inline(always)]
    pub(crate) fn merge(&self, calls: u64, ticks: u64, bytes: u64, min: u64, max: u64) {
        if calls != 0 {
            self.calls.add(calls);
            self.cum.add(ticks);
        }
        self.min.lower_to(min);
        self.max.raise_to(max);
        // Saturating: a total past 2^64 bytes wraps to a small one, or to
        // 0, which a record reads as "counts no bytes". Out of line, so
        // the calls without bytes run as before.
        if bytes != 0 {
            self.bytes.add_saturating(bytes);
        }
    }

    /// Site name (the macro's name argument, or the function path).
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// `module_path!()` of the call site.
    pub fn module(&self) -> &'static str {
        self.module
    }
    /// `file!()` of the call site.
    pub fn file(&self) -> &'static str {
        self.file
    }
    /// `line!()` of the call site.
    pub fn line(&self) -> u32 {
        self.line
    }
    /// The instrument that made the site.
    pub fn kind(&self) -> SiteKind {
        self.kind
    }
    /// Number of recorded calls.
    pub fn calls(&self) -> u64 {
        self.calls.load()
    }
    /// Shortest duration in ticks (0 when no calls).
    pub fn min_ticks(&self) -> u64 {
        let m = self.min.load();
        if m == u64::MAX {
            0
        } else {
            m
        }
    }
    /// Longest duration in ticks.
    pub fn max_ticks(&self) -> u64 {
        self.max.load()
    }
    /// Sum of all durations in ticks.
    pub fn cum_ticks(&self) -> u64 {
        self.cum.load()
    }
    /// Sum of the byte counts given with `bytes = n`, held at `u64::MAX`
    /// rather than wrapping. A stack path's own count is added on the
    /// measuring thread without a check (nothing is added to a
    /// measurement's cost): it wraps, unseen, if that path is given 2^64
    /// bytes or more between two flushes.
    pub fn bytes(&self) -> u64 {
        self.bytes.load()
    }
    /// Duration (ticks, bucket midpoint clamped to [min, max]) at quantile
    /// `q` in `[0, 1]`; `None` when no calls.
    pub fn quantile_ticks(&self, q: f64) -> Option<u64> {
        self.hist.quantile(q).map(|v| self.within_extremes(v))
    }
    /// Mean duration (ticks, bucket midpoints clamped to [min, max]) of the
    /// fastest `keep` share of the calls (see [`Histogram::trimmed_mean`]);
    /// `None` when no calls.
    pub fn trimmed_mean_ticks(&self, keep: f64) -> Option<u64> {
        self.hist
            .trimmed_mean(keep)
            .map(|v| self.within_extremes(v))
    }
    /// A value read from the histogram (a bucket's midpoint), clamped to the
    /// shortest and longest durations recorded exactly.
    fn within_extremes(&self, v: u64) -> u64 {
        v.clamp(self.min_ticks(), self.max_ticks().max(self.min_ticks()))
    }
    /// The histogram (raw bucket counts).
    pub fn histogram(&self) -> &Histogram {
        &self.hist
    }

    /// Shortest duration in nanoseconds.
    pub fn min_ns(&self) -> u64 {
        crate::clock::ticks_to_ns(self.min_ticks(), crate::clock::ticks_per_second())
    }
    /// Longest duration in nanoseconds.
    pub fn max_ns(&self) -> u64 {
        crate::clock::ticks_to_ns(self.max_ticks(), crate::clock::ticks_per_second())
    }
    /// Sum of all durations in nanoseconds.
    pub fn cum_ns(&self) -> u64 {
        crate::clock::ticks_to_ns(self.cum_ticks(), crate::clock::ticks_per_second())
    }
    /// Duration in nanoseconds at quantile `q`.
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        self.quantile_ticks(q)
            .map(|t| crate::clock::ticks_to_ns(t, crate::clock::ticks_per_second()))
    }

    /// Zero the statistics (racy against concurrent recorders: a call in
    /// flight may land half before, half after).
    pub fn clear(&self) {
        crate::stack::clear_extremes(self);
        self.clear_stats();
    }

    /// Zero the site's own statistics (its paths' extremes stay: `reset`
    /// clears those itself, under the merge lock it holds).
    pub(crate) fn clear_stats(&self) {
        self.hist.clear();
        self.calls.store(0);
        self.cum.store(0);
        self.min.store(u64::MAX);
        self.max.store(0);
        self.bytes.store(0);
    }
}

impl core::fmt::Debug for Site {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Site")
            .field("name", &self.name)
            .field("module", &self.module)
            .field("file", &self.file)
            .field("line", &self.line)
            .field("calls", &self.calls())
            .field("cum_ticks", &self.cum_ticks())
            .finish()
    }
}

/// Visit every registered site (most recently registered first), without
/// allocating. Sites with no calls are visited too. Adds every thread's
/// measurements to the sites first ([`crate::flush`]).
pub fn for_each_site(f: impl FnMut(&'static Site)) {
    crate::stack::flush();
    walk_sites(f);
}

/// Visit every registered site, as [`for_each_site`] does but without
/// flushing first (for `reset`, which holds the merge lock).
pub(crate) fn walk_sites(mut f: impl FnMut(&'static Site)) {
    let mut p = HEAD.load(Ordering::Acquire);
    while !p.is_null() {
        // SAFETY: only `&'static Site`s are ever pushed, and never removed.
        let s: &'static Site = unsafe { &*p };
        f(s);
        p = s.next.load(Ordering::Acquire);
    }
}
