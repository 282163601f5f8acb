//! Which CPUs each end of a run may use.
//!
//! On one machine a UDP receiver shares the cores with its sender, and on
//! loopback the kernel's receive-side work runs in the sender's system
//! call. Each moment the receiving thread waits for a core, its socket
//! buffer must hold the datagrams, and once that is full the kernel drops
//! them. A nice value ([`crate::priority`]) puts the receiver first in line
//! for a core; a CPU of its own keeps the sender off that core altogether,
//! as capture hosts dedicate cores to their receivers.
//!
//! [`crate::run::RunConfig::rx_cpu`] runs the receiving end on one CPU, and
//! [`crate::run::RunConfig::tx_avoid_cpu`] keeps the sender on every other
//! CPU this process may use. Each is set on a thread or process that ends
//! with the run, or put back when the run ends, and whether it held is
//! read back from the kernel and recorded, never assumed.

use std::borrow::ToOwned;
use std::format;
use std::mem;
use std::string::{String, ToString};
use std::vec::Vec;

/// A set of CPUs, as `sched_setaffinity(2)` takes it.
#[derive(Clone, Copy)]
pub struct CpuSet(libc::cpu_set_t);

impl CpuSet {
    /// The CPUs a set can name: 0 to this, less one.
    pub const CAPACITY: usize = libc::CPU_SETSIZE as usize;

    fn empty() -> CpuSet {
        // SAFETY: cpu_set_t is a plain bit array; all zeros is the empty set.
        CpuSet(unsafe { mem::zeroed() })
    }

    /// `cpu` alone; `None` past [`CpuSet::CAPACITY`].
    pub fn only(cpu: usize) -> Option<CpuSet> {
        let mut s = CpuSet::empty();
        (cpu < Self::CAPACITY).then(|| {
            // SAFETY: `cpu` is within the set, checked above.
            unsafe { libc::CPU_SET(cpu, &mut s.0) };
            s
        })
    }

    /// The set without `cpu`.
    pub fn without(mut self, cpu: usize) -> CpuSet {
        if cpu < Self::CAPACITY {
            // SAFETY: `cpu` is within the set, checked above.
            unsafe { libc::CPU_CLR(cpu, &mut self.0) };
        }
        self
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: usize) -> bool {
        // SAFETY: `cpu` is within the set where it is read.
        cpu < Self::CAPACITY && unsafe { libc::CPU_ISSET(cpu, &self.0) }
    }

    /// The CPUs in the set, lowest first.
    pub fn cpus(&self) -> Vec<usize> {
        (0..Self::CAPACITY).filter(|&c| self.contains(c)).collect()
    }

    /// The set as a list of ranges, `0-3,6`.
    pub fn describe(&self) -> String {
        let cpus = self.cpus();
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for c in cpus {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == c => *end = c,
                _ => runs.push((c, c)),
            }
        }
        let parts: Vec<String> = runs
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        parts.join(",")
    }
}

impl PartialEq for CpuSet {
    fn eq(&self, other: &CpuSet) -> bool {
        // SAFETY: both are initialised cpu_set_t values.
        unsafe { libc::CPU_EQUAL(&self.0, &other.0) }
    }
}

impl Eq for CpuSet {}

impl std::fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CpuSet({})", self.describe())
    }
}

/// The CPUs thread or process `who` may run on (0 = the calling thread),
/// or `None` when the kernel will not say.
pub fn cpus_of(who: libc::pid_t) -> Option<CpuSet> {
    let mut s = CpuSet::empty();
    // SAFETY: the kernel writes at most size_of::<cpu_set_t>() bytes into `s`.
    let r = unsafe { libc::sched_getaffinity(who, mem::size_of::<libc::cpu_set_t>(), &mut s.0) };
    (r == 0).then_some(s)
}

/// Sets the CPUs thread or process `who` may run on (0 = the calling
/// thread); whether the kernel took them. Makes one system call and
/// allocates nothing, so it may run between fork and exec.
pub fn set_cpus(who: libc::pid_t, cpus: &CpuSet) -> bool {
    // SAFETY: the kernel reads size_of::<cpu_set_t>() bytes from `cpus`.
    unsafe { libc::sched_setaffinity(who, mem::size_of::<libc::cpu_set_t>(), &cpus.0) == 0 }
}

/// The set a receiver on `cpu` asks for: `cpu` alone, if this process may
/// run there.
pub fn receiver_set(cpu: usize) -> Option<CpuSet> {
    cpus_of(0)
        .filter(|now| now.contains(cpu))
        .and_then(|_| CpuSet::only(cpu))
}

/// The set a sender keeping off `cpu` asks for: every CPU the calling
/// thread may use but `cpu`, if that leaves one.
pub fn sender_set(cpu: usize) -> Option<CpuSet> {
    cpus_of(0)
        .map(|now| now.without(cpu))
        .filter(|s| !s.cpus().is_empty())
}

/// Why a run cannot give its receiver `cpu` here (by the calling thread's
/// CPUs), or `None` when it can: the CPU must be one the thread may use,
/// and one more must be left for the sender.
pub fn refusal(cpu: usize) -> Option<String> {
    let Some(now) = cpus_of(0) else {
        return Some("the kernel did not say which CPUs this process may use".to_owned());
    };
    if !now.contains(cpu) {
        return Some(format!(
            "CPU {cpu} is not one this process may run on ({})",
            now.describe()
        ));
    }
    if now.without(cpu).cpus().is_empty() {
        return Some(format!(
            "CPU {cpu} is the only one this process may run on, and the sender needs another"
        ));
    }
    None
}

/// The calling thread on a set of CPUs for as long as this lives; the set
/// it had before comes back on drop.
#[derive(Debug)]
pub struct ThreadCpus {
    before: Option<CpuSet>,
    set: bool,
}

impl ThreadCpus {
    /// The calling thread on `cpus`, when given (`None`: the set could not
    /// be made, and the thread stays where it was).
    pub fn set(cpus: Option<CpuSet>) -> ThreadCpus {
        let before = cpus_of(0);
        let set = match cpus {
            Some(want) => set_cpus(0, &want) && cpus_of(0) == Some(want),
            None => false,
        };
        ThreadCpus { before, set }
    }

    /// The receiving thread on `cpu` alone.
    pub fn receiver(cpu: usize) -> ThreadCpus {
        ThreadCpus::set(receiver_set(cpu))
    }

    /// The sending thread (and the threads it starts) off `cpu`.
    pub fn sender(cpu: usize) -> ThreadCpus {
        ThreadCpus::set(sender_set(cpu))
    }

    /// The thread runs on the CPUs asked for.
    pub fn is_set(&self) -> bool {
        self.set
    }
}

impl Drop for ThreadCpus {
    fn drop(&mut self) {
        if let (true, Some(before)) = (self.set, self.before) {
            set_cpus(0, &before);
        }
    }
}

/// A receiving end's claim on its CPU, so that two runs on one host that
/// name the same `receiver_cpu` (two sweeps started at once, a local run
/// beside an agent) are told apart from a receiver that had the CPU to
/// itself.
///
/// Each claim holds a read lock on a file per CPU in `/dev/shm` (the
/// temporary directory where there is none) for as long as it lives: an
/// open-file-description lock (`F_OFD_SETLK`, fcntl(2)), which belongs to
/// the claim's own open file, so two claims in one process see each other
/// as two in two processes do. [`check`](Self::check) asks the kernel
/// whether a write lock could be placed (`F_OFD_GETLK`): not while any other
/// claim on the CPU holds its read lock, and a claim's own lock never stands
/// in its way, so a check takes and drops nothing. A claim checks when it is
/// taken and whenever its holder asks, so each of two runs that overlap
/// finds the other: the later one at once, the earlier one at its next
/// check. The kernel lets go of the lock when its holder exits, however it
/// ends, so a killed run leaves no stale claim.
///
/// A claim only sees other perfkit runs: any other process may still run
/// on the CPU, and any process that can read the file can hold a lock on
/// it and so make every claim shared. Where the file cannot be opened as a
/// regular file (another user made it unreadable, or put something else in
/// its place), nothing can be told, and the claim does not count against
/// the receiver.
#[derive(Debug)]
pub struct CpuClaim {
    file: Option<std::fs::File>,
    shared: bool,
}

impl CpuClaim {
    /// Claims `cpu` for a receiving end, and checks it.
    pub fn take(cpu: usize) -> CpuClaim {
        Self::take_in(&Self::dir(), cpu)
    }

    fn dir() -> std::path::PathBuf {
        let shm = std::path::Path::new("/dev/shm");
        if shm.is_dir() {
            shm.to_owned()
        } else {
            std::env::temp_dir()
        }
    }

    fn take_in(dir: &std::path::Path, cpu: usize) -> CpuClaim {
        let file = Self::open(&dir.join(format!("perfkit-receiver-cpu-{cpu}.lock")));
        let mut claim = CpuClaim {
            file,
            shared: false,
        };
        // Read locks share: this fails only on a write lock, which no claim
        // takes; someone is there.
        if !claim.fcntl(libc::F_OFD_SETLK, libc::F_RDLCK as libc::c_short) {
            claim.shared = true;
        }
        claim.check();
        claim
    }

    /// The lock file, opened or made: read-only is enough for a read lock,
    /// so a file another user made can still be locked; never through a
    /// link someone put in its place, never waiting (a FIFO there would
    /// block an open), and a regular file only.
    fn open(path: &std::path::Path) -> Option<std::fs::File> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
        {
            Ok(f) => f,
            Err(_) => {
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .mode(0o644)
                    .custom_flags(flags)
                    .open(path)
                    .ok()?;
                // Readable by every user's runs whatever the umask (a
                // file someone else made keeps its mode: this fails).
                let _ = f.set_permissions(std::fs::Permissions::from_mode(0o644));
                f
            }
        };
        file.metadata().ok()?.is_file().then_some(file)
    }

    /// One non-blocking `fcntl` lock call on the claim's file for the whole
    /// file; true when it held, or when there is no file. For `F_OFD_GETLK`,
    /// true when the lock asked about could be placed.
    fn fcntl(&self, cmd: libc::c_int, kind: libc::c_short) -> bool {
        use std::os::unix::io::AsRawFd;
        let Some(f) = &self.file else {
            return true;
        };
        // SAFETY: all zeros is a valid flock (whole file from offset 0,
        // l_pid 0 as OFD locks require).
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: fcntl on a descriptor this claim owns, with a flock it
        // may write into.
        let r = unsafe { libc::fcntl(f.as_raw_fd(), cmd, &mut fl) };
        r == 0 && (cmd != libc::F_OFD_GETLK || fl.l_type == libc::F_UNLCK as libc::c_short)
    }

    /// Looks again: whether another claim on the CPU is held now, which
    /// then stays recorded. One system call, which takes and drops no lock.
    pub fn check(&mut self) {
        if !self.fcntl(libc::F_OFD_GETLK, libc::F_WRLCK as libc::c_short) {
            self.shared = true;
        }
    }

    /// Another perfkit run's receiver held the CPU at a check.
    pub fn is_shared(&self) -> bool {
        self.shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_cpus() -> Option<(usize, CpuSet)> {
        let now = cpus_of(0)?;
        let cpus = now.cpus();
        (cpus.len() >= 2).then(|| (cpus[cpus.len() - 1], now))
    }

    #[test]
    fn a_set_lists_and_describes_its_cpus() {
        let s = CpuSet::only(3).unwrap();
        assert!(s.contains(3) && !s.contains(2));
        assert_eq!(s.cpus(), [3]);
        assert_eq!(s.describe(), "3");
        assert!(CpuSet::only(CpuSet::CAPACITY).is_none());
        assert!(!s.contains(CpuSet::CAPACITY + 5));
        let mut many = CpuSet::only(0).unwrap();
        for c in [1, 2, 3, 6, 8, 9] {
            // SAFETY: c is within the set.
            unsafe { libc::CPU_SET(c, &mut many.0) };
        }
        assert_eq!(many.describe(), "0-3,6,8-9");
        assert_eq!(many.without(2).describe(), "0-1,3,6,8-9");
        assert_eq!(CpuSet::empty().describe(), "");
    }

    #[test]
    fn a_receiving_thread_runs_on_its_cpu_until_dropped() {
        let Some((cpu, before)) = two_cpus() else {
            std::eprintln!("skipped: one CPU");
            return;
        };
        std::thread::spawn(move || {
            let t = ThreadCpus::receiver(cpu);
            assert!(t.is_set());
            assert_eq!(cpus_of(0), CpuSet::only(cpu));
            drop(t);
            assert_eq!(cpus_of(0), Some(before));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_sending_thread_and_the_threads_it_starts_keep_off_the_cpu() {
        let Some((cpu, before)) = two_cpus() else {
            std::eprintln!("skipped: one CPU");
            return;
        };
        std::thread::spawn(move || {
            let t = ThreadCpus::sender(cpu);
            assert!(t.is_set());
            assert_eq!(cpus_of(0), Some(before.without(cpu)));
            let child = std::thread::spawn(|| cpus_of(0)).join().unwrap();
            assert_eq!(child, Some(before.without(cpu)));
            drop(t);
            assert_eq!(cpus_of(0), Some(before));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_cpu_the_process_cannot_use_is_refused_and_not_set() {
        let now = cpus_of(0).unwrap();
        let missing = (0..CpuSet::CAPACITY).find(|&c| !now.contains(c)).unwrap();
        let why = refusal(missing).unwrap();
        assert!(why.contains(&format!("CPU {missing} is not one")), "{why}");
        std::thread::spawn(move || {
            let t = ThreadCpus::receiver(missing);
            assert!(!t.is_set());
            assert_eq!(cpus_of(0), Some(now));
        })
        .join()
        .unwrap();
        if let Some((cpu, _)) = two_cpus() {
            assert_eq!(refusal(cpu), None);
        }
    }

    #[test]
    fn two_claims_on_a_cpu_each_find_the_other() {
        let dir = std::env::temp_dir().join(format!("perfkit-claim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut first = CpuClaim::take_in(&dir, 3);
        assert!(!first.is_shared());
        first.check();
        assert!(!first.is_shared(), "alone, a check finds no one");
        // A second open of the file, as another process would make: it is
        // told at once, the first at its next check, and it stays told.
        let second = CpuClaim::take_in(&dir, 3);
        assert!(second.is_shared());
        assert!(!first.is_shared());
        first.check();
        assert!(first.is_shared());
        assert!(
            !CpuClaim::take_in(&dir, 4).is_shared(),
            "another CPU is free"
        );
        drop(second);
        first.check();
        assert!(first.is_shared(), "a claim that was shared stays so");
        drop(first);
        let mut later = CpuClaim::take_in(&dir, 3);
        later.check();
        assert!(!later.is_shared(), "the claims let go when dropped");
        // A file that cannot be opened tells nothing, and counts for nothing:
        // a link in its place is not followed, a FIFO not waited on.
        let link = dir.join("perfkit-receiver-cpu-5.lock");
        std::os::unix::fs::symlink(dir.join("elsewhere"), &link).unwrap();
        let c = CpuClaim::take_in(&dir, 5);
        assert!(!c.is_shared() && c.file.is_none());
        assert!(!dir.join("elsewhere").exists(), "followed the link");
        let fifo = std::ffi::CString::new(
            dir.join("perfkit-receiver-cpu-6.lock")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: a path made above, NUL-terminated.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let c = CpuClaim::take_in(&dir, 6);
        assert!(!c.is_shared() && c.file.is_none());
        // Made under a strict umask, the file is still readable by all.
        // SAFETY: umask only sets the mode bits new files lose.
        let old = unsafe { libc::umask(0o077) };
        let c = CpuClaim::take_in(&dir, 7);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        assert!(c.file.is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("perfkit-receiver-cpu-7.lock"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_process_on_one_cpu_leaves_none_for_the_sender() {
        std::thread::spawn(|| {
            let cpu = cpus_of(0).unwrap().cpus()[0];
            let _t = ThreadCpus::receiver(cpu);
            let why = refusal(cpu).unwrap();
            assert!(why.contains("the only one"), "{why}");
            assert!(sender_set(cpu).is_none());
            assert!(!ThreadCpus::sender(cpu).is_set());
        })
        .join()
        .unwrap();
    }
}
