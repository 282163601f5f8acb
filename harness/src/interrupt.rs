//! Ctrl-C, SIGTERM and SIGHUP: one flag that the long commands poll.
//!
//! Ctrl-C reaches perfkit's children as well (the terminal signals the
//! whole foreground group); `kill`, a CI job's timeout (SIGTERM) and a
//! closed terminal (SIGHUP) reach perfkit alone. Either way perfkit stops at
//! its next check, stops the children it started, keeps the runs that
//! finished and exits 3: no child is left running and no temporary folder
//! is left behind.

use std::io;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{mpsc, Once};
use std::time::Duration;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: Once = Once::new();
/// The signals the handler took over (not ignored when perfkit started).
static TAKEN: AtomicU8 = AtomicU8::new(0);
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The flag, cleared, with the handler installed on first use. A process
/// has one handler, so a second command in the same process (tests) shares
/// it; each call starts from "not interrupted".
pub fn watch() -> &'static AtomicBool {
    HANDLER.call_once(|| {
        // A signal perfkit was started with ignored stays ignored: `nohup`
        // ignores SIGHUP, a shell's background job SIGINT.
        let ignored: Vec<libc::c_int> = SIGNALS.into_iter().filter(|&s| is_ignored(s)).collect();
        let taken = SIGNALS
            .iter()
            .enumerate()
            .filter(|(_, s)| !ignored.contains(s))
            .fold(0u8, |m, (i, _)| m | 1 << i);
        TAKEN.store(taken, Ordering::SeqCst);
        // Fails only if something else installed a handler first; perfkit
        // then runs without one.
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
        for s in ignored {
            // SAFETY: setting a signal's disposition back to "ignore".
            unsafe { libc::signal(s, libc::SIG_IGN) };
        }
    });
    INTERRUPTED.store(false, Ordering::SeqCst);
    &INTERRUPTED
}

/// Gives the signals [`watch`] took over their default action back (they
/// end the process again), for a step that may block without polling the
/// flag: `recv` writing into a FIFO nobody opens, or a stdout nobody reads.
pub fn default_action_again() {
    let taken = TAKEN.swap(0, Ordering::SeqCst);
    for (i, s) in SIGNALS.into_iter().enumerate() {
        if taken & 1 << i != 0 {
            // SAFETY: setting a signal's disposition back to the default.
            unsafe { libc::signal(s, libc::SIG_DFL) };
        }
    }
}

/// Whether `signal`'s disposition is "ignore".
fn is_ignored(signal: libc::c_int) -> bool {
    // SAFETY: sigaction with no new action only reads the current one into
    // a zeroed struct this function owns.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Whether a signal came since the last [`watch`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Runs `cmd` to its end as [`Command::output`] does (its stdio as set on
/// `cmd`; unset, it inherits perfkit's), passing SIGTERM on to it when
/// perfkit is interrupted meanwhile; an [`io::ErrorKind::Interrupted`]
/// error then, once the child has ended.
pub fn output(cmd: &mut Command) -> io::Result<Output> {
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let mut passed_on = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(out) if passed_on => {
                out?;
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
            Ok(out) => return out,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if !passed_on && interrupted() {
                    // The child is not reaped until the thread's wait
                    // returns, so `pid` is still this child's.
                    // SAFETY: kill(2) with a pid and a signal number.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                    passed_on = true;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(io::Error::other("lost the thread waiting for a child"))
            }
        }
    }
}
