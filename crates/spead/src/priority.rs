//! The receiving end's scheduling priority for the length of a run.
//!
//! A UDP receiver cannot slow its sender down. When the two share a
//! machine's cores (a loopback run, or a capture host that also runs other
//! work), every moment the receiver waits for a core is datagrams the
//! socket buffer must hold, and once it is full the kernel drops them.
//! Capture systems therefore run their receiving threads ahead of other
//! work. A run asks for the same with a nice value
//! ([`crate::run::RunConfig::rx_nice`], -20..=19, lower runs first).
//!
//! Going below a thread's current nice (raising its priority) needs
//! `CAP_SYS_NICE` (or an `RLIMIT_NICE` that allows it): root without that
//! capability, as in a default container, is refused. Whether the value
//! asked for was in effect is read back from the kernel and recorded
//! ([`crate::run::RxStats::nice_set`]), never assumed. The value is set on
//! a thread or process that ends with the run, so it never outlives it.

/// The nice value of thread or process `who` (a thread ID or a process
/// ID; 0 = the calling thread), or `None` when the kernel will not say.
pub fn nice_of(who: libc::id_t) -> Option<i32> {
    // getpriority(2) returns -1 both for a nice of -1 and for an error:
    // only errno tells them apart.
    // SAFETY: errno is this thread's; getpriority reads no memory of ours.
    unsafe {
        *libc::__errno_location() = 0;
        let n = libc::getpriority(libc::PRIO_PROCESS, who);
        (n != -1 || *libc::__errno_location() == 0).then_some(n)
    }
}

/// Sets the nice value of thread or process `who` (0 = the calling
/// thread); whether the kernel took it.
pub fn set_nice(who: libc::id_t, nice: i32) -> bool {
    // SAFETY: setpriority(2) reads no memory of ours.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, who, nice) == 0 }
}

/// Whether threads of this process may go below their nice (raise their
/// priority): tried on a scratch thread, so no thread of the caller's
/// changes.
pub fn may_raise_priority() -> bool {
    std::thread::spawn(|| nice_of(0).is_some_and(|n| n > -20 && set_nice(0, n - 1)))
        .join()
        .unwrap_or(false)
}

/// The calling thread at a nice value for as long as this lives; the
/// value it had before comes back on drop. Going back up from a raised
/// priority needs no privilege; going back down from a lowered one needs
/// the same as going below the start, and without it the thread keeps the
/// lower priority.
#[derive(Debug)]
pub struct ThreadNice {
    before: Option<i32>,
    set: bool,
}

impl ThreadNice {
    /// Asks for `nice` on the calling thread.
    pub fn set(nice: i32) -> ThreadNice {
        let before = nice_of(0);
        let set = set_nice(0, nice) && nice_of(0) == Some(nice);
        ThreadNice { before, set }
    }

    /// The thread runs at the nice value asked for.
    pub fn is_set(&self) -> bool {
        self.set
    }
}

impl Drop for ThreadNice {
    fn drop(&mut self) {
        if let (true, Some(before)) = (self.set, self.before) {
            set_nice(0, before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_runs_at_a_higher_nice_asked_for_which_needs_no_privilege() {
        std::thread::spawn(|| {
            let before = nice_of(0).unwrap();
            let want = (before + 3).min(19);
            let n = ThreadNice::set(want);
            assert!(n.is_set());
            assert_eq!(nice_of(0), Some(want));
            drop(n);
            // Back down needs the privilege; without it the thread keeps
            // the higher value (and ends here).
            let back = if may_raise_priority() { before } else { want };
            assert_eq!(nice_of(0), Some(back));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_raised_priority_holds_only_with_the_privilege_and_says_which() {
        let privileged = may_raise_priority();
        std::thread::spawn(move || {
            let before = nice_of(0).unwrap();
            let want = (before - 5).max(-20);
            let n = ThreadNice::set(want);
            assert_eq!(n.is_set(), privileged);
            let now = if privileged { want } else { before };
            assert_eq!(nice_of(0), Some(now));
            drop(n);
            // Going back up needs nothing.
            assert_eq!(nice_of(0), Some(before));
        })
        .join()
        .unwrap();
    }
}
