//! poll(2) on one file descriptor, the only system call the links need
//! beyond what std offers.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// What poll reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    /// The requested event is ready.
    Yes,
    /// The timeout expired.
    No,
    /// The peer hung up (and, for reads, there is no data left).
    HangUp,
}

/// Waits until `fd` is ready for `events` (libc::POLLIN or POLLOUT), at most `timeout`.
pub(crate) fn poll_fd(fd: RawFd, events: libc::c_short, timeout: Duration) -> io::Result<Ready> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Round up so a 0.5 ms timeout does not become a busy 0 ms poll.
        let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int;
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if rc == 0 {
            return Ok(Ready::No);
        }
        if pfd.revents & events != 0 {
            return Ok(Ready::Yes);
        }
        if pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return Ok(Ready::HangUp);
        }
    }
}

/// What a byte link reports for one read(2): data (counted), or end of
/// stream (remembered in `eof`); `Ok(None)` when the call was interrupted
/// and should be retried; other errors (would block, reset) to the caller.
pub(crate) fn read_outcome(
    r: io::Result<usize>,
    eof: &mut bool,
    stats: &mut crate::LinkStats,
) -> io::Result<Option<crate::ReadOutcome>> {
    match r {
        Ok(0) => {
            *eof = true;
            Ok(Some(crate::ReadOutcome::Eof))
        }
        Ok(n) => {
            stats.received(n);
            Ok(Some(crate::ReadOutcome::Data(n)))
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
        Err(e) => Err(e),
    }
}
