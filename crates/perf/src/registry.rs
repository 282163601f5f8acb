//! Per-thread path tables (std only): each thread claims one on its first
//! measurement and gives it back when it exits, so a program that starts and
//! stops threads reuses a handful of tables. Tables are leaked, never freed,
//! so a snapshot can read them while their threads run; their counts stay
//! and keep growing under the next thread that claims them.

use crate::stack::PathTable;
use std::boxed::Box;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

struct Entry {
    table: PathTable,
    in_use: AtomicBool,
    next: AtomicPtr<Entry>,
}

static TABLES: AtomicPtr<Entry> = AtomicPtr::new(ptr::null_mut());

struct Release(&'static Entry);

impl Drop for Release {
    fn drop(&mut self) {
        // Before the table is free: nothing this thread measures later
        // (another thread-local's destructor) may write into it.
        crate::stack::detach();
        self.0.in_use.store(false, Ordering::Release);
    }
}

std::thread_local! {
    static RELEASE: std::cell::Cell<Option<Release>> = const { std::cell::Cell::new(None) };
}

fn entries() -> impl Iterator<Item = &'static Entry> {
    let mut p = TABLES.load(Ordering::Acquire);
    std::iter::from_fn(move || {
        if p.is_null() {
            return None;
        }
        // SAFETY: entries are leaked and never removed.
        let e: &'static Entry = unsafe { &*p };
        p = e.next.load(Ordering::Acquire);
        Some(e)
    })
}

/// A table for the calling thread: a free one, or a new one.
pub(crate) fn claim_table() -> &'static PathTable {
    let entry = entries()
        .find(|e| {
            e.in_use
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
        .unwrap_or_else(|| {
            let e: &'static Entry = Box::leak(Box::new(Entry {
                table: PathTable::new(),
                in_use: AtomicBool::new(true),
                next: AtomicPtr::new(ptr::null_mut()),
            }));
            let me = e as *const Entry as *mut Entry;
            let mut head = TABLES.load(Ordering::Acquire);
            loop {
                e.next.store(head, Ordering::Relaxed);
                match TABLES.compare_exchange_weak(head, me, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(h) => head = h,
                }
            }
            e
        });
    // Give the table back when the thread exits. If thread-local storage is
    // already being torn down the table simply stays claimed.
    let _ = RELEASE.try_with(|r| r.set(Some(Release(entry))));
    &entry.table
}

/// Visit every table ever created.
pub(crate) fn for_each_table(mut f: impl FnMut(&'static PathTable)) {
    for e in entries() {
        f(&e.table);
    }
}
