//! The host's stack (with `std`): each thread points at the path slot of
//! its innermost open measurement, and the path slots themselves hold the
//! rest of the stack.
//!
//! A path is a fixed place in the tree of calls: it has one parent path and
//! one depth, and two of its calls are never open at once (a recursive call
//! makes a deeper path). So the slot itself can carry what a stack level
//! would: the ticks of the measurements nested in its open call (`child`),
//! the path it was opened under (`up`), and the path its last child took
//! (`memo`). The thread keeps one pointer, its current slot, and a
//! measurement repeated under the same parent costs, either side of its two
//! clock reads:
//!
//! - push: read the current slot, compare its memo's site, take the memo's
//!   slot, zero its `child`, make it current;
//! - pop: check it is current (guards dropped out of order take the slow
//!   way), record the call on it, add its ticks to the parent's `child`,
//!   make the parent current.
//!
//! No depth counter and no array of levels are read or written: the depth
//! limit is a property of the path, checked once when the path is made.
//! When a call ends its `child` is added to its path's `nested` (self time
//! is total minus nested), so a snapshot taken while a parent is open sees
//! neither the parent's call nor its share of the children's time: figures
//! stay exact at any moment. And a call's histogram bucket is counted by
//! the next call on its path (`PathSlot::record` says why), or by a merge
//! that finds it still waiting; whether it waits as its duration or as its
//! bucket's index depends on the CPU ([`bucket_at_once`]).

use super::{bump, record_unpathed, PathSlot, PathTable, DROPPED, MAX_DEPTH, ROOT};
use crate::hist::bucket_of_flat;
use crate::owned::Owned64;
use crate::site::Site;
use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU8,
    Ordering::{Acquire, Relaxed, Release},
};

/// How path slots made from now on hold a call waiting for its histogram
/// bucket (`Walk::pending`): 0 not chosen yet, 1 its duration, 2 its
/// bucket's index.
static AT_ONCE: AtomicU8 = AtomicU8::new(0);

/// Whether a call's histogram bucket is found as the call ends (its index
/// waits for the next call) rather than by the next call (its duration
/// waits): on Intel x86_64 CPUs, where that is cheaper. Measured with `cargo
/// bench -p perfkit --bench interleaved` (see the crate's README): on an
/// Intel Xeon (KVM), `measure` over `clock_floor` fell from 1.31-1.32 to
/// 1.22-1.23 at once; on AMD EPYC hosts work on a clock reading is what
/// delays the next read, and the duration waits.
pub(crate) fn bucket_at_once() -> bool {
    match AT_ONCE.load(Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let mine = if is_intel() { 2 } else { 1 };
            // A choice made meanwhile (`set_bucket_at_once`) stands.
            match AT_ONCE.compare_exchange(0, mine, Relaxed, Relaxed) {
                Ok(_) => mine == 2,
                Err(theirs) => theirs == 2,
            }
        }
    }
}

/// Choose how slots made from now on hold a waiting call, whatever the
/// CPU (for tests of both ways; slots already made keep theirs).
pub(crate) fn set_bucket_at_once(at_once: bool) {
    AT_ONCE.store(if at_once { 2 } else { 1 }, Relaxed);
}

#[cfg(target_arch = "x86_64")]
fn is_intel() -> bool {
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86_64 CPU.
    let id = unsafe { core::arch::x86_64::__cpuid(0) };
    // "GenuineIntel" in EBX, EDX, ECX.
    (id.ebx, id.edx, id.ecx) == (0x756e_6547, 0x4965_6e69, 0x6c65_746e)
}

#[cfg(not(target_arch = "x86_64"))]
fn is_intel() -> bool {
    false
}

/// What a host guard keeps besides its slot: its thread's stack, so the
/// pop needs no thread-local lookup (a guard never leaves its thread).
pub(super) type Mark = *const Local;
/// `Mark` of a guard that records nothing.
pub(super) const NO_MARK: Mark = ptr::null();

/// The stack of a guard made where the thread's own was not reachable (a
/// thread-local without a destructor always is; this is for form): its
/// current slot never matches, and its pops without a path write nothing.
struct Nowhere(Local);
// SAFETY: never written: `end` and `pop_miss` only read it for a guard
// without a slot while `unpathed` is 0 (see `pop_miss`).
unsafe impl Sync for Nowhere {}
static NOWHERE: Nowhere = Nowhere(Local {
    cur: Cell::new(&NO_PATH),
    unpathed: Cell::new(0),
    below_unpathed: Cell::new(ptr::null()),
    table: Cell::new(ptr::null()),
});

/// A path slot's part in the thread's stack (owner only).
pub(super) struct Walk {
    /// Ticks of the measurements nested in the open call of this path.
    child: Owned64,
    /// Ticks of the measurements nested in the ended calls of this path
    /// (its self time is its total minus these).
    pub(super) nested: Owned64,
    /// The last call, not in the histogram yet: its duration, or with
    /// [`bucket_at_once`] its bucket's index.
    pending: Owned64,
    /// The site and slot of the path this path's last child took.
    memo_site: AtomicPtr<Site>,
    memo_slot: AtomicPtr<PathSlot>,
    /// The site and slot of the sibling path opened after this one last
    /// time, under the same parent: a parent that opens the same stages in
    /// the same order (a packet's: read, frame, check, store) finds each
    /// from the one before, where its own memo holds only the last.
    next_site: AtomicPtr<Site>,
    next_slot: AtomicPtr<PathSlot>,
    /// The parent path (null for a table's root).
    up: AtomicPtr<PathSlot>,
    /// Sites on the path (0 for a table's root, `u32::MAX` for the
    /// sentinels).
    depth: AtomicU32,
    /// This slot's index in its table (`ROOT` for the root).
    index: AtomicU32,
    /// `pending` holds a bucket's index, not a duration ([`bucket_at_once`],
    /// fixed when the slot is first claimed, before its first call).
    at_once: AtomicBool,
}

impl Walk {
    /// Fix how this slot holds a waiting call ([`bucket_at_once`]): once,
    /// before the slot is published.
    pub(super) fn choose_bucketing(&self) {
        self.at_once.store(bucket_at_once(), Relaxed);
    }

    pub(super) const fn new() -> Self {
        Walk {
            child: Owned64::new(0),
            nested: Owned64::new(0),
            pending: Owned64::new(0),
            memo_site: AtomicPtr::new(ptr::null_mut()),
            memo_slot: AtomicPtr::new(ptr::null_mut()),
            next_site: AtomicPtr::new(ptr::null_mut()),
            next_slot: AtomicPtr::new(ptr::null_mut()),
            up: AtomicPtr::new(ptr::null_mut()),
            depth: AtomicU32::new(0),
            index: AtomicU32::new(ROOT),
            at_once: AtomicBool::new(false),
        }
    }
}

impl PathSlot {
    /// A slot no path can be opened on (`START`, `NO_PATH`).
    const fn sentinel() -> Self {
        let mut s = PathSlot::new();
        s.walk.depth = AtomicU32::new(u32::MAX);
        s
    }
}

/// Where a thread starts: no table yet. Its memo is empty, so the first
/// push misses and attaches one. Never written.
static START: PathSlot = PathSlot::sentinel();
/// The current "slot" while measurements without a path are open (table
/// full, stack too deep). Its memo is empty, so what is pushed above it
/// has no path either. Never written.
static NO_PATH: PathSlot = PathSlot::sentinel();

/// One thread's stack: its innermost open path, and the levels without a
/// path above it.
pub(super) struct Local {
    /// The innermost open path (`START`, a table's root, a slot of the
    /// table, or `NO_PATH`).
    cur: Cell<*const PathSlot>,
    /// Open levels without a path (`cur` is `NO_PATH` while there are any).
    unpathed: Cell<u32>,
    /// The path below the first of them.
    below_unpathed: Cell<*const PathSlot>,
    /// This thread's table (null before its first measurement).
    table: Cell<*const PathTable>,
}

std::thread_local! {
    // `const` and without a destructor: a plain thread-local access, no
    // lazy-initialisation check, never torn down.
    static LOCAL: Local = const {
        Local {
            cur: Cell::new(&START),
            unpathed: Cell::new(0),
            below_unpathed: Cell::new(ptr::null()),
            table: Cell::new(ptr::null()),
        }
    };
}

/// Push `site`: returns the thread's stack and the path's slot (null
/// without one), which the guard keeps.
#[inline(never)]
pub(super) fn begin(site: &'static Site) -> (Mark, *const PathSlot) {
    let Some(l) = local() else {
        return (&NOWHERE.0, ptr::null());
    };
    let p = l.cur.get();
    // SAFETY: `cur` is always a live slot: a static sentinel, or a slot or
    // root of a leaked table.
    let w = &unsafe { &*p }.walk;
    let last = w.memo_slot.load(Relaxed);
    let c = if ptr::eq(w.memo_site.load(Relaxed), site) {
        last
    } else {
        // The sibling that followed the last child last time. A sentinel's
        // memo is empty, so it never gets here.
        if last.is_null() {
            return push_miss(site, l, p);
        }
        // SAFETY: a memo's slot is one of the same leaked table.
        let lw = &unsafe { &*last }.walk;
        if !ptr::eq(lw.next_site.load(Relaxed), site) {
            return push_miss(site, l, p);
        }
        let c = lw.next_slot.load(Relaxed);
        w.memo_site.store(site as *const Site as *mut Site, Relaxed);
        w.memo_slot.store(c, Relaxed);
        c
    };
    // SAFETY: a memo's slot is one of the same leaked table.
    unsafe { &*c }.walk.child.store(0);
    l.cur.set(c);
    (l, c)
}

/// Pop the measurement of `site` on `slot`, which took `ticks`, and record
/// it on its path; without one (or when its path is no longer open), into
/// the site itself.
#[inline(never)]
pub(super) fn end(site: &'static Site, ticks: u64, l: Mark, slot: *const PathSlot, bytes: u64) {
    end_with::<true>(site, ticks, l, slot, bytes)
}

/// [`end`] of a measurement that counted no bytes.
#[inline(never)]
pub(super) fn end_no_bytes(site: &'static Site, ticks: u64, l: Mark, slot: *const PathSlot) {
    end_with::<false>(site, ticks, l, slot, 0)
}

#[inline(always)]
fn end_with<const BYTES: bool>(
    site: &'static Site,
    ticks: u64,
    l: Mark,
    slot: *const PathSlot,
    bytes: u64,
) {
    // SAFETY: the guard's thread's stack, and the guard is on that thread.
    let cur = &unsafe { &*l }.cur;
    // `cur` is never null, so a level without a path never matches.
    if !ptr::eq(cur.get(), slot) {
        // The same arguments in the same order: a jump, no moves (but
        // zeroing `bytes` for `end_no_bytes`).
        return pop_miss(site, ticks, l, slot, bytes);
    }
    // SAFETY: the current slot is live (see `begin`), and so is its parent.
    let c = unsafe { &*slot };
    let p = c.walk.up.load(Relaxed);
    c.record::<BYTES>(ticks, bytes);
    bump(&unsafe { &*p }.walk.child, ticks);
    cur.set(p);
}

/// Detach this thread's stack from its table, which the thread is about
/// to give back (its exit: `registry`'s release), so that another thread
/// may claim it. Measurements the thread still makes (a thread-local's
/// destructor that runs later) are counted on their sites without a path,
/// as past a full table; guards still open pop without a path too, their
/// slot no longer being on this stack. Before this, such a measurement
/// wrote into the table while its next owner did: a shared slot's open
/// call lost its children's time, and a path could be made of two
/// threads' writes.
pub(crate) fn detach() {
    if let Some(l) = local() {
        l.cur.set(&NO_PATH);
        l.unpathed.set(0);
        l.below_unpathed.set(&NO_PATH);
        l.table.set(ptr::null());
    }
}

/// This thread's stack. It has no destructor, so it is never torn down:
/// the `None` is for form only.
#[inline(always)]
fn local() -> Option<&'static Local> {
    // SAFETY: the thread-local lives as long as the thread, and the
    // reference never leaves it (`Local` is not `Sync`).
    LOCAL
        .try_with(|l| l as *const Local)
        .ok()
        .map(|l| unsafe { &*l })
}

impl PathSlot {
    /// Count one call of `ticks` that ends on this path.
    ///
    /// A call's histogram bucket is counted by the next call on its path:
    /// `pending` holds the call meanwhile, and a merge that finds it
    /// waiting adds it itself ([`Self::merge_hist`]). What `pending` holds
    /// depends on the CPU ([`bucket_at_once`]): the duration, bucketed by
    /// the next call, where a chain of work on a clock reading delays the
    /// next read (AMD); the bucket's index, found at once, where what
    /// delays it is an increment whose address comes at the end of a chain
    /// (Intel). The crate's README gives the measurements.
    ///
    /// `BYTES` false (a measurement that counted none) leaves the byte
    /// count alone rather than adding 0 to it.
    #[inline(always)]
    fn record<const BYTES: bool>(&self, ticks: u64, bytes: u64) {
        let n = self.calls.load();
        // SAFETY: set before `site` was published, leaked, never freed.
        let h = unsafe { &*self.hist.load(Relaxed) };
        // The bucket before `pending`, `pending` before `calls`: what
        // `merge_hist` relies on.
        let p = self.walk.pending.load();
        if self.walk.at_once.load(Relaxed) {
            if n != 0 {
                bump(&h.counts[p as usize], 1);
            }
            fence(Release);
            self.walk.pending.store(bucket_of_flat(ticks) as u64);
        } else {
            if n != 0 {
                bump(&h.counts[bucket_of_flat(p)], 1);
            }
            fence(Release);
            self.walk.pending.store(ticks);
        }
        fence(Release);
        self.calls.store(n.wrapping_add(1));
        bump(&self.total, ticks);
        bump(&self.walk.nested, self.walk.child.load());
        if ticks < self.min.load() {
            self.min.store(ticks);
        }
        if ticks > self.max.load() {
            self.max.store(ticks);
        }
        if BYTES {
            bump(&self.bytes, bytes);
        }
    }

    /// Add the histogram's growth since the last merge to `site`, after
    /// `merge` added the calls (so `merged_calls` is the count of calls it
    /// saw), and the sample still pending when it is not in the buckets yet.
    ///
    /// Exact under a concurrent `record`: with `C` calls seen, then
    /// `pending`, then the buckets, finding `C - 1` samples in the buckets
    /// means the `C`th is not among them, and then `pending` is the `C`th
    /// (the owner fills the bucket of a pending sample before it replaces
    /// it, and the buckets are read after it). The pending sample is added
    /// to the site at most once per call count (`lent`), and its bucket's
    /// mark is raised with it, so the owner's later add of the same sample
    /// is not counted again.
    pub(super) fn merge_hist(&self, site: &Site) {
        // SAFETY: as in `record`; set before `site` was published.
        let h = unsafe { &*self.hist.load(Acquire) };
        let calls = self.merged_calls.load();
        // Every sample merged already: spare the scan of every bucket.
        // (Counted against the calls, not their growth, so a sample that a
        // concurrent merge saw before its bucket is caught next time.)
        if h.merged_count.load() == calls {
            return;
        }
        // Pairs with `record`'s fences: the calls (read by `merge`), then
        // `pending`, then the buckets.
        fence(Acquire);
        let pending = self.walk.pending.load();
        fence(Acquire);
        let (mut added, mut held) = (0u64, 0u64);
        for (i, (c, m)) in h.counts.iter().zip(&h.merged).enumerate() {
            let now = c.load();
            held = held.wrapping_add(now);
            let d = now.wrapping_sub(m.load());
            if d != 0 {
                m.store(now);
                site.histogram().add_at(i, d);
                added = added.wrapping_add(d);
            }
        }
        if calls != 0 && held == calls - 1 && h.lent.load() != calls {
            let i = if self.walk.at_once.load(Relaxed) {
                (pending as usize).min(crate::hist::BUCKETS - 1)
            } else {
                bucket_of_flat(pending)
            };
            site.histogram().add_at(i, 1);
            bump(&h.merged[i], 1);
            added = added.wrapping_add(1);
            h.lent.store(calls);
        }
        bump(&h.merged_count, added);
    }
}

/// A push the memos do not know (siblings in a new order, a new path):
/// find or make the path under `p`, the current slot.
#[inline(never)]
fn push_miss(
    site: &'static Site,
    l: &'static Local,
    p: *const PathSlot,
) -> (Mark, *const PathSlot) {
    // SAFETY: `cur` is always a live slot (see `begin`).
    let ps = unsafe { &*p };
    let depth = ps.walk.depth.load(Relaxed);
    // The sentinels are deeper than any path: one test for all three.
    if depth as usize >= MAX_DEPTH {
        return push_special(site, l, p);
    }
    // SAFETY: a thread's table is set before its `cur` first points into
    // it (`push_special`); tables are leaked, never freed.
    let t = unsafe { &*l.table.get() };
    let idx = t.child(ps.walk.index.load(Relaxed), site);
    let Some(c) = t.slots.get(idx as usize) else {
        return push_unpathed(l, p);
    };
    // A path always has the same parent, depth and index: storing them
    // again on every miss is as good as once, and cheaper than a test.
    c.walk.up.store(p.cast_mut(), Relaxed);
    c.walk.depth.store(depth + 1, Relaxed);
    c.walk.index.store(idx, Relaxed);
    // The last child's successor is this one, for the next time round.
    let last = ps.walk.memo_slot.load(Relaxed);
    if !last.is_null() {
        // SAFETY: a memo's slot is one of the same leaked table, a child
        // of `p` as `c` is.
        let lw = &unsafe { &*last }.walk;
        lw.next_slot
            .store(c as *const PathSlot as *mut PathSlot, Relaxed);
        lw.next_site
            .store(site as *const Site as *mut Site, Relaxed);
    }
    ps.walk
        .memo_slot
        .store(c as *const PathSlot as *mut PathSlot, Relaxed);
    ps.walk
        .memo_site
        .store(site as *const Site as *mut Site, Relaxed);
    c.walk.child.store(0);
    l.cur.set(c);
    (l, c)
}

/// A push on a sentinel or past [`MAX_DEPTH`]: the thread's first (which
/// claims its table), or one without a path.
#[cold]
#[inline(never)]
fn push_special(
    site: &'static Site,
    l: &'static Local,
    p: *const PathSlot,
) -> (Mark, *const PathSlot) {
    if ptr::eq(p, &START) {
        let t = crate::registry::claim_table();
        t.root.walk.index.store(ROOT, Relaxed);
        t.root.walk.depth.store(0, Relaxed);
        l.table.set(t);
        l.cur.set(&t.root);
        return push_miss(site, l, &t.root);
    }
    push_unpathed(l, p)
}

/// Open a level without a path above `p`.
#[cold]
#[inline(never)]
fn push_unpathed(l: &Local, p: *const PathSlot) -> (Mark, *const PathSlot) {
    DROPPED.add(1, Relaxed);
    if l.unpathed.get() == 0 {
        l.below_unpathed.set(p);
    }
    l.unpathed.set(l.unpathed.get().wrapping_add(1));
    l.cur.set(&NO_PATH);
    (l, ptr::null())
}

/// A pop whose slot is not the current one: a level without a path, or
/// guards dropped out of order.
#[cold]
#[inline(never)]
fn pop_miss(site: &'static Site, ticks: u64, l: Mark, slot: *const PathSlot, bytes: u64) {
    // SAFETY: as in `end`.
    let l = unsafe { &*l };
    if slot.is_null() {
        // A level without a path: the innermost one when any is open
        // (out of order, an approximation of paths only; the site's
        // figures are exact either way).
        let n = l.unpathed.get();
        if n > 0 {
            l.unpathed.set(n - 1);
            if n == 1 {
                let p = l.below_unpathed.get();
                l.cur.set(p);
                if !ptr::eq(p, &START) && !ptr::eq(p, &NO_PATH) {
                    // SAFETY: a live slot (see `begin`).
                    bump(&unsafe { &*p }.walk.child, ticks);
                }
            }
        }
        record_unpathed(site, ticks, bytes);
        return;
    }
    // Guards dropped out of order: is this path still open, below the
    // current one? Then the levels above it are abandoned (their own drops
    // will find them closed) and it pops as usual.
    let mut cur = if l.unpathed.get() > 0 {
        l.below_unpathed.get()
    } else {
        l.cur.get()
    };
    for _ in 0..=MAX_DEPTH {
        if cur.is_null() {
            break;
        }
        if ptr::eq(cur, slot) {
            // SAFETY: live slots (see `begin`).
            let c = unsafe { &*slot };
            let p = c.walk.up.load(Relaxed);
            c.record::<true>(ticks, bytes);
            bump(&unsafe { &*p }.walk.child, ticks);
            l.unpathed.set(0);
            l.cur.set(p);
            return;
        }
        // SAFETY: as above.
        cur = unsafe { &*cur }.walk.up.load(Relaxed);
    }
    // Closed already (an outer guard was dropped before this one).
    record_unpathed(site, ticks, bytes);
}
