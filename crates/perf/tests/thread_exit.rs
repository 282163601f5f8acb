//! A thread gives its path table back when it exits, and another thread
//! may claim it at once. What the exiting thread still measures after that
//! (in a thread-local's destructor that runs later) must not write into
//! the table under its next owner.
//!
//! Its own test binary: the one test here needs the exiting thread's table
//! to be the only free one, so that the second thread claims exactly it.
#![cfg(not(feature = "off"))]
#![cfg(not(feature = "single-core"))]

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

/// One site for both threads: the same path (`exit.outer` at the top).
fn outer(body: impl FnOnce()) {
    perfkit::measure!("exit.outer", body())
}

/// The barriers the late destructor meets: the table released, the other
/// thread inside `exit.outer`, the late measurement made.
type Meetings = (Arc<Barrier>, Arc<Barrier>, Arc<Barrier>);

/// Set before the exiting thread starts.
static LATE: Mutex<Option<Meetings>> = Mutex::new(None);

/// A thread-local whose destructor measures, after the thread's table
/// was released.
struct Late;

impl Drop for Late {
    fn drop(&mut self) {
        let Some((released, inside, measured)) = LATE.lock().unwrap().take() else {
            return;
        };
        // The table is free now: let the other thread claim it and open
        // `exit.outer`, then measure the same site.
        released.wait();
        inside.wait();
        outer(|| {});
        measured.wait();
    }
}

std::thread_local! {
    static LATE_TLS: Late = const { Late };
}

#[test]
fn a_measurement_after_the_table_is_released_leaves_the_next_owner_alone() {
    let released = Arc::new(Barrier::new(2));
    let inside = Arc::new(Barrier::new(2));
    let measured = Arc::new(Barrier::new(2));
    *LATE.lock().unwrap() = Some((released.clone(), inside.clone(), measured.clone()));

    let exiting = std::thread::spawn(|| {
        // Registered first, so destroyed last: after the table's release.
        LATE_TLS.with(|_| {});
        perfkit::measure!("exit.warm", ());
    });
    released.wait();
    // The only free table is the exiting thread's: this thread claims it.
    let owner = std::thread::spawn(move || {
        outer(|| {
            perfkit::measure!("exit.inner", std::thread::sleep(Duration::from_millis(5)));
            inside.wait();
            measured.wait();
        });
    });
    owner.join().unwrap();
    exiting.join().unwrap();

    let (mut total, mut self_, mut inner) = (0, 0, 0);
    perfkit::for_each_path(|p| {
        let names: Vec<&str> = p.sites.iter().map(|s| s.name()).collect();
        match names.as_slice() {
            ["exit.outer"] => {
                total += p.total_ticks;
                self_ += p.self_ticks;
            }
            ["exit.outer", "exit.inner"] => inner += p.total_ticks,
            _ => {}
        }
    });
    assert!(inner > 0, "the nested call was recorded");
    // The owner's call contains its 5 ms child: its self time leaves it
    // out. A late measurement on the same slot zeroed the open call's
    // child time, and then self time equalled total.
    assert!(
        self_ + inner <= total,
        "self {self_} + nested {inner} > total {total} ticks"
    );
    // The late call is still counted, on its site.
    let snap = perfkit::snapshot();
    assert_eq!(snap.site("exit.outer").unwrap().calls, 2);
    assert_eq!(snap.stack("exit.outer").unwrap().calls, 1);
}
