//! The device's stack (without `std`): a measurement appends two events to
//! a ring, and the bookkeeping happens later, when the ring is replayed.
//!
//! A nested measurement on a Cortex-M0+ is dominated by what surrounds its
//! two clock reads: finding the path, and counting the call (calls, total,
//! min, max, a histogram bucket, in 32-bit halves). Here a measurement only
//! writes its site and clock reading when it starts, and its site and
//! reading when it ends: a few stores. Replaying the ring ([`drain`]) finds
//! the paths and counts the calls, with the same figures as counting them
//! at once. It runs when the ring is nearly full and before anything reads
//! the statistics ([`super::flush`], [`super::for_each_path`], clearing).
//!
//! A replay that runs while measurements are open is time those
//! measurements did not spend on their own work: the replay reads the
//! clock either side of itself and moves the start of every open
//! measurement later by that much. What lies outside those two readings
//! (the call, and moving the starts: a few dozen cycles) stays in them. A
//! replay for a full ring runs between one measurement's end and the next
//! one's start, so no measurement's own interval contains it; one asked
//! for (`replay`, [`super::flush`], reading the statistics) runs where it
//! is asked for.
//!
//! Where this counts differently from counting each call at its end:
//! - Open measurements nested more than `MAX_OPEN` (4 x [`MAX_DEPTH`])
//!   deep are not kept: those with something nested in them are not
//!   counted at all (they count as dropped paths).
//! - Guards dropped out of order match their starts by site: among open
//!   measurements of one site (recursion), such drops can swap durations.
//!   More than `ABANDONED` (8) measurements left open by such drops at
//!   once: the oldest is forgotten, and its own end counts nothing.
//! - Measuring from an interrupt handler (without `single-core`) can
//!   replay events twice or lose them, so figures can be wrong; never
//!   memory-unsafe.
//!
//! One context records (the firmware's main loop), as for the rest of the
//! device's statistics.

use super::{record_unpathed, PathTable, GLOBAL_TABLE, MAX_DEPTH, NONE, ROOT};
use crate::clock;
use crate::owned::{bump, Owned64};
use crate::site::Site;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};

/// Events the ring holds. A replay runs when two or fewer are free (an end
/// may write two: its bytes, then its end).
const RING: usize = 128;

/// Open measurements the replay keeps (the first [`MAX_DEPTH`] with a
/// path). A measurement nested deeper still is counted (on its site) only
/// if nothing is nested in it; either way it counts as dropped.
const MAX_OPEN: usize = 4 * MAX_DEPTH;

/// `tag`'s low bits (a `Site` is aligned to at least 4): a site's address
/// alone starts a measurement, with `END` ends one.
const END: usize = 1;
/// The next event's byte count, in `t`.
const BYTES: usize = 2;

/// One event: a tag and a clock reading (or a byte count).
pub(crate) struct Event {
    tag: AtomicUsize,
    t: Owned64,
}

impl Event {
    const fn new() -> Self {
        Event {
            tag: AtomicUsize::new(0),
            t: Owned64::new(0),
        }
    }

    /// Stores the start's clock reading (the guard, just after `begin`).
    #[inline(always)]
    pub(crate) fn set_time(&self, t: u64) {
        self.t.store(t);
    }
}

struct Ring {
    len: AtomicU32,
    events: [Event; RING],
}

static EVENTS: Ring = Ring {
    len: AtomicU32::new(0),
    events: [const { Event::new() }; RING],
};

/// Start a measurement of `site`: returns its event, whose clock reading
/// the guard stores after reading the clock (so this bookkeeping is not
/// inside the measurement).
///
/// `begin` and `end` inline into the guard: a few loads and stores each,
/// against a call's own cost of about 14 cycles on the Cortex-M0+ (a call,
/// saving and restoring registers); the replay stays out of line.
#[inline(always)]
pub(crate) fn begin(site: &'static Site) -> &'static Event {
    let n = EVENTS.len.load(Relaxed) as usize;
    // At least two events stay free for an end (its bytes, then its end).
    let Some(e) = EVENTS.events[..RING - 2].get(n) else {
        return begin_after_drain(site);
    };
    e.tag.store(site as *const Site as usize, Relaxed);
    EVENTS.len.store(n as u32 + 1, Relaxed);
    e
}

#[cold]
#[inline(never)]
fn begin_after_drain(site: &'static Site) -> &'static Event {
    drain();
    begin(site)
}

/// End a measurement of `site` at clock reading `t`.
#[inline(always)]
pub(crate) fn end(site: &'static Site, t: u64) {
    let n = EVENTS.len.load(Relaxed) as usize;
    // `begin` left room (and a replay empties the ring once it is this
    // full), so this holds; a ring that did fill loses the event, and the
    // measurement ends with the next one of its site, or never.
    if let Some(e) = EVENTS.events.get(n) {
        e.tag.store(site as *const Site as usize | END, Relaxed);
        e.t.store(t);
        EVENTS.len.store(n as u32 + 1, Relaxed);
    }
    if n + 1 >= RING - 2 {
        drain_full();
    }
}

/// `end` of a measurement that counted `bytes`.
#[cold]
#[inline(never)]
pub(crate) fn end_bytes(site: &'static Site, t: u64, bytes: u64) {
    let n = EVENTS.len.load(Relaxed) as usize;
    if let Some(e) = EVENTS.events.get(n) {
        e.tag.store(BYTES, Relaxed);
        e.t.store(bytes);
        EVENTS.len.store(n as u32 + 1, Relaxed);
    }
    end(site, t);
}

/// A replay once the ring is this full, out of line.
#[cold]
#[inline(never)]
fn drain_full() {
    drain();
}

/// One open measurement, as the replay keeps it.
struct Open {
    site: AtomicUsize,
    /// Its path's slot (NONE without one; ROOT for the root).
    slot: AtomicU32,
    start: Owned64,
    /// Ticks of the calls nested in it that ended (its self time is its
    /// own ticks minus these).
    child: Owned64,
}

impl Open {
    const fn new() -> Self {
        Open {
            site: AtomicUsize::new(0),
            slot: AtomicU32::new(NONE),
            start: Owned64::new(0),
            child: Owned64::new(0),
        }
    }
}

/// Measurements an outer one's end left open (guards dropped out of order,
/// or leaked): each is counted on its site, without a path, when its own
/// end comes, as it was before the ring. The oldest are forgotten (and
/// count as dropped) beyond this many.
const ABANDONED: usize = 8;

/// Abandoned measurements: site and start, oldest first.
struct Abandoned {
    len: AtomicU32,
    site: [AtomicUsize; ABANDONED],
    start: [Owned64; ABANDONED],
}

static LEFT: Abandoned = Abandoned {
    len: AtomicU32::new(0),
    site: [const { AtomicUsize::new(0) }; ABANDONED],
    start: [const { Owned64::new(0) }; ABANDONED],
};

impl Abandoned {
    fn push(&self, site: usize, start: u64) {
        let mut n = self.len.load(Relaxed) as usize;
        if n == ABANDONED {
            dropped();
            for i in 1..ABANDONED {
                self.site[i - 1].store(self.site[i].load(Relaxed), Relaxed);
                self.start[i - 1].store(self.start[i].load());
            }
            n -= 1;
        }
        self.site[n].store(site, Relaxed);
        self.start[n].store(start);
        self.len.store(n as u32 + 1, Relaxed);
    }

    /// The start of the newest abandoned measurement of `site`, removed.
    fn take(&self, site: usize) -> Option<u64> {
        let n = (self.len.load(Relaxed) as usize).min(ABANDONED);
        let i = (0..n).rev().find(|&i| self.site[i].load(Relaxed) == site)?;
        let start = self.start[i].load();
        for j in i + 1..n {
            self.site[j - 1].store(self.site[j].load(Relaxed), Relaxed);
            self.start[j - 1].store(self.start[j].load());
        }
        self.len.store(n as u32 - 1, Relaxed);
        Some(start)
    }
}

struct Replay {
    /// Open measurements kept; `open[0]` is the root.
    depth: AtomicU32,
    /// Open measurements deeper than `MAX_OPEN`, not kept.
    beyond: AtomicU32,
    open: [Open; MAX_OPEN + 1],
}

static REPLAY: Replay = Replay::new();

impl Replay {
    const fn new() -> Self {
        let mut open = [const { Open::new() }; MAX_OPEN + 1];
        // The root: the parent of top-level paths.
        open[0].slot = AtomicU32::new(ROOT);
        Replay {
            depth: AtomicU32::new(0),
            beyond: AtomicU32::new(0),
            open,
        }
    }
}

/// Replay the ring: every event in order, then empty it. Open measurements
/// start later by the replay's own duration.
#[cold]
#[inline(never)]
pub(crate) fn drain() {
    let t0 = clock::now();
    let n = (EVENTS.len.load(Relaxed) as usize).min(RING);
    let table = &GLOBAL_TABLE;
    let events = &EVENTS.events[..n];
    // Bytes for the next end (an end's bytes and the end itself are
    // written together, so never split between two replays).
    let mut bytes = 0u64;
    let mut i = 0;
    while let Some(e) = events.get(i) {
        let tag = e.tag.load(Relaxed);
        let t = e.t.load();
        i += 1;
        match tag & 3 {
            // Tag 0 is an event never written (only a race with an
            // interrupt handler that measures could expose one).
            0 if tag == 0 => {}
            0 => {
                // A measurement with nothing nested, the common case:
                // counted at once, without opening a level.
                if let Some(next) = events.get(i).filter(|x| x.tag.load(Relaxed) == tag | END) {
                    leaf(table, tag, t, next.t.load());
                    i += 1;
                    continue;
                }
                enter(table, tag, t);
            }
            END => {
                exit(table, tag & !3, t, bytes);
                bytes = 0;
            }
            _ => bytes = bytes.wrapping_add(t),
        }
    }
    EVENTS.len.store(0, Relaxed);
    let pause = clock::now().wrapping_sub(t0);
    bump(&REPLAY_TICKS, pause);
    let depth = REPLAY.depth.load(Relaxed) as usize;
    for o in REPLAY.open.iter().take(depth + 1).skip(1) {
        o.start.store(o.start.load().wrapping_add(pause));
    }
    let left = (LEFT.len.load(Relaxed) as usize).min(ABANDONED);
    for start in &LEFT.start[..left] {
        start.store(start.load().wrapping_add(pause));
    }
}

/// Ticks spent replaying, since the program started.
static REPLAY_TICKS: Owned64 = Owned64::new(0);

/// Ticks spent replaying the ring, since the program started.
pub(crate) fn replay_ticks() -> u64 {
    REPLAY_TICKS.load()
}

/// Site pointers come only from `begin` and `end`, which take `&'static Site`.
fn site_of(addr: usize) -> &'static Site {
    // SAFETY: see above.
    unsafe { &*(addr as *const Site) }
}

/// `enter` and `exit` of a measurement with nothing nested, from `start`
/// to `end`.
#[inline(always)]
fn leaf(table: &PathTable, tag: usize, start: u64, end: u64) {
    let site = site_of(tag);
    let ticks = end.saturating_sub(start);
    // Deeper than the kept levels, it still has both its readings: counted
    // on its site (its parent is not kept, or is the deepest kept level).
    if REPLAY.beyond.load(Relaxed) != 0 {
        dropped();
        return record_unpathed(site, ticks, 0);
    }
    let d = (REPLAY.depth.load(Relaxed) as usize).min(MAX_OPEN);
    let parent = &REPLAY.open[d];
    let p = parent.slot.load(Relaxed);
    let slot = if d < MAX_DEPTH && p != NONE {
        path(table, p, site)
    } else {
        NONE
    };
    if slot == NONE {
        dropped();
    }
    count(table, site, slot, ticks, ticks, 0);
    bump(&parent.child, ticks);
}

#[inline(always)]
fn enter(table: &PathTable, tag: usize, t: u64) {
    let d = REPLAY.depth.load(Relaxed) as usize;
    if d >= MAX_OPEN {
        REPLAY
            .beyond
            .store(REPLAY.beyond.load(Relaxed) + 1, Relaxed);
        dropped();
        return;
    }
    let site = site_of(tag);
    let parent = REPLAY.open[d].slot.load(Relaxed);
    let slot = if d < MAX_DEPTH && parent != NONE {
        path(table, parent, site)
    } else {
        NONE
    };
    if slot == NONE {
        dropped();
    }
    let o = &REPLAY.open[d + 1];
    o.site.store(tag, Relaxed);
    o.slot.store(slot, Relaxed);
    o.start.store(t);
    o.child.store(0);
    REPLAY.depth.store(d as u32 + 1, Relaxed);
}

/// The slot of path `parent;site`, through the site's memo.
fn path(table: &PathTable, parent: u32, site: &'static Site) -> u32 {
    let m = site.memo();
    if m.parent.load(Relaxed) == parent {
        return m.slot.load(Relaxed);
    }
    let slot = table.child(parent, site);
    m.parent.store(parent, Relaxed);
    m.slot.store(slot, Relaxed);
    slot
}

#[cold]
#[inline(never)]
fn dropped() {
    super::DROPPED.add(1, Relaxed);
}

#[inline(always)]
fn exit(table: &PathTable, addr: usize, t: u64, bytes: u64) {
    let beyond = REPLAY.beyond.load(Relaxed);
    if beyond > 0 {
        // One of the measurements not kept: its call is not counted.
        REPLAY.beyond.store(beyond - 1, Relaxed);
        return;
    }
    let d = REPLAY.depth.load(Relaxed) as usize;
    // The innermost open measurement of this site: normally the top.
    let Some(k) = (1..=d)
        .rev()
        .find(|&k| REPLAY.open[k].site.load(Relaxed) == addr)
    else {
        // Left open by an outer measurement's end: counted on its site.
        if let Some(start) = LEFT.take(addr) {
            record_unpathed(site_of(addr), t.saturating_sub(start), bytes);
        }
        return;
    };
    // Guards dropped out of order (or leaked) leave measurements open
    // above it: abandoned, to be counted at their own ends.
    for o in &REPLAY.open[k + 1..=d] {
        LEFT.push(o.site.load(Relaxed), o.start.load());
    }
    close(table, k, t, bytes);
    REPLAY.depth.store(k as u32 - 1, Relaxed);
}

/// Count the call of open measurement `j`, ending at `t`.
fn close(table: &PathTable, j: usize, t: u64, bytes: u64) {
    let o = &REPLAY.open[j];
    let ticks = t.saturating_sub(o.start.load());
    count(
        table,
        site_of(o.site.load(Relaxed)),
        o.slot.load(Relaxed),
        ticks,
        ticks.saturating_sub(o.child.load()),
        bytes,
    );
    bump(&REPLAY.open[j - 1].child, ticks);
}

/// Count a call of `site` on path `slot` (NONE: on the site alone).
#[inline(always)]
fn count(table: &PathTable, site: &'static Site, slot: u32, ticks: u64, self_: u64, bytes: u64) {
    match table.slots.get(slot as usize) {
        Some(s) => match (u32::try_from(ticks), bytes) {
            (Ok(t32), 0) => s.record_u32(site, t32, self_ as u32),
            _ => s.record(site, ticks, self_, bytes),
        },
        None => record_unpathed(site, ticks, bytes),
    }
}

/// The path a site took last, kept in the site: a replay of the site
/// under the same parent path takes it again without hashing.
pub(crate) struct SiteMemo {
    parent: AtomicU32,
    slot: AtomicU32,
}

impl SiteMemo {
    /// Remembers nothing: no parent path is `UNSEEN`.
    pub(crate) const fn new() -> Self {
        SiteMemo {
            parent: AtomicU32::new(UNSEEN),
            slot: AtomicU32::new(NONE),
        }
    }
}

/// No path's index (nor `ROOT`, nor `NONE`).
const UNSEEN: u32 = u32::MAX - 2;
