//! The run's child processes: waited for with the CPU time they used, and
//! killed, with everything they started, if the run leaves before they end.
//!
//! `std::process::Child::wait` throws away the kernel's resource usage of
//! the child it reaps. Reaping with wait4(2) keeps it, so a transfer
//! between processes can be measured in CPU time as well as in wall-clock
//! time: the CPU time a copy costs does not depend on how the scheduler
//! shared the cores while it ran, which the wall-clock rate of three busy
//! processes on two cores does.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::time::Duration;

use anyhow::bail;
use perfkit_engine::{Clock, Policy};

/// How a reaped child ended, and the CPU time it used.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exit {
    pub status: ExitStatus,
    /// User plus system time of the child and all its threads, and of
    /// every descendant it waited for, in nanoseconds (the kernel gives
    /// microseconds).
    pub cpu_ns: u64,
}

/// Reaps `pid`: `block` waits for it to end, else `None` while it runs.
fn wait4(pid: u32, block: bool) -> io::Result<Option<Exit>> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid; wait4 writes one rusage and
        // one status.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
        if rc == pid {
            let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
            return Ok(Some(Exit {
                status: ExitStatus::from_raw(status),
                cpu_ns: (us(ru.ru_utime) + us(ru.ru_stime)) * 1_000,
            }));
        }
        if rc == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Waits for `child` to end and reaps it, with its CPU time. The `Child`
/// must not be waited for again (its id may belong to another process).
pub(crate) fn reap(child: Child) -> io::Result<Exit> {
    wait4(child.id(), true)?.ok_or_else(|| io::Error::other("wait4 returned without the child"))
}

/// A child of the run that is killed, with everything it started
/// (`sh -c "sleep 30; ..."`), if the run leaves before it has ended
/// (cancelled, timed out, an error): none of it outlives the run. The
/// children stay in perfkit's process group, so a terminal's signals and a
/// kill of the whole group reach them as before.
pub(crate) struct Stopped {
    child: Child,
    exit: Option<Exit>,
}

impl Stopped {
    pub fn new(child: Child) -> Stopped {
        Stopped { child, exit: None }
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the child to end, polling `policy`: once it says stop, the
    /// child and its descendants are killed and the wait fails.
    pub fn wait(&mut self, clock: &dyn Clock, policy: &Policy<'_>) -> anyhow::Result<Exit> {
        loop {
            if let Some(exit) = self.try_reap()? {
                return Ok(exit);
            }
            if let Err(stop) = policy.check(clock.now_ns()) {
                self.kill();
                bail!("waiting for a child: {stop}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn try_reap(&mut self) -> io::Result<Option<Exit>> {
        if self.exit.is_none() {
            self.exit = wait4(self.child.id(), false)?;
        }
        Ok(self.exit)
    }

    /// Kills the child and its descendants, and reaps it.
    fn kill(&mut self) {
        // Not yet reaped, so its id is still its own (a zombie's too).
        if self.exit.is_none() {
            kill_tree(self.child.id());
            self.exit = wait4(self.child.id(), true).ok().flatten();
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Ok(None) = self.try_reap() {
            self.kill();
        }
    }
}

/// SIGKILLs `pid` and its descendants, found through `/proc` (parents
/// first, so none is left to start another).
fn kill_tree(pid: u32) {
    let mut parent_of = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces and ')'.
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(pp) = ppid {
                parent_of.push((p, pp));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    for p in tree {
        // SAFETY: kill(2) with a pid and a signal number.
        unsafe { libc::kill(p as libc::pid_t, libc::SIGKILL) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(script: &str) -> Child {
        Command::new("sh").args(["-c", script]).spawn().unwrap()
    }

    #[test]
    fn a_reaped_child_brings_its_status_and_cpu_time() {
        // About 100 ms of shell arithmetic on any machine this runs on.
        let busy = reap(sh(
            "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exit 3",
        ))
        .unwrap();
        assert_eq!(busy.status.code(), Some(3));
        assert!(busy.cpu_ns >= 10_000_000, "{busy:?}");
        let idle = reap(sh("sleep 0.2")).unwrap();
        assert!(idle.status.success());
        // Sleeping costs next to nothing: the time is CPU time, not wall time.
        assert!(idle.cpu_ns < busy.cpu_ns / 4, "{idle:?} against {busy:?}");
    }

    #[test]
    fn a_stopped_child_is_waited_once_and_killed_when_left() {
        let clock = perfkit_engine::WallClock::start();
        let policy = Policy::seconds(30.0);
        let mut done = Stopped::new(sh("exit 0"));
        let first = done.wait(&clock, &policy).unwrap();
        // Asked again, the same exit: the id is not waited for twice.
        assert_eq!(done.wait(&clock, &policy).unwrap().status, first.status);
        drop(done);

        let mut left = Stopped::new(sh("sleep 30"));
        let pid = left.child().id() as libc::pid_t;
        drop(left);
        // Killed and reaped: no process, not even a zombie, has the id.
        // SAFETY: kill with signal 0 only asks whether the process exists.
        assert_eq!(unsafe { libc::kill(pid, 0) }, -1);

        let mut late = Stopped::new(sh("sleep 30"));
        let err = late
            .wait(&clock, &Policy::seconds(0.05))
            .unwrap_err()
            .to_string();
        assert!(err.contains("waiting for a child"), "{err}");
    }
}
