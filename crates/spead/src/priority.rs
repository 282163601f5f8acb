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
//! Lowering a thread's nice (raising its priority) needs `CAP_SYS_NICE`.
//! Whether the value asked for was in effect is read back from the kernel
//! and recorded ([`crate::run::RxStats::nice_set`]), never assumed.

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
    fn a_thread_runs_at_the_nice_asked_for_and_gets_its_own_back() {
        std::thread::spawn(|| {
            let before = nice_of(0).unwrap();
            // Raising the nice value needs no privilege.
            let want = (before + 3).min(19);
            {
                let n = ThreadNice::set(want);
                assert!(n.is_set());
                assert_eq!(nice_of(0), Some(want));
            }
            assert_eq!(nice_of(0), Some(before));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_raised_priority_is_granted_only_with_the_privilege_and_said_either_way() {
        std::thread::spawn(|| {
            let before = nice_of(0).unwrap();
            let want = (before - 5).max(-20);
            // SAFETY: geteuid reads no memory.
            let root = unsafe { libc::geteuid() } == 0;
            let n = ThreadNice::set(want);
            if root {
                assert!(n.is_set());
                assert_eq!(nice_of(0), Some(want));
            } else {
                // Refused (no CAP_SYS_NICE): said so, and nothing changed.
                assert_eq!(n.is_set(), nice_of(0) == Some(want));
            }
            drop(n);
            assert_eq!(nice_of(0), Some(before));
        })
        .join()
        .unwrap();
    }
}
