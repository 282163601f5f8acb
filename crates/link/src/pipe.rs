//! Byte links over real file descriptors: a child process's stdin/stdout, or
//! this process's own stdin/stdout (for `perfkit send` / `perfkit recv`).
//!
//! Reads wait with poll(2) up to the caller's timeout, then take whatever one
//! read(2) returns, so the stream arrives in the chunks the kernel hands over.
//! Writes wait for room with poll(2) and give up after the write timeout, so
//! a peer that stops reading cannot hang a runner; a peer that exited gives
//! [`ErrorKind::Closed`] (SIGPIPE is ignored by Rust programs, so the write
//! fails with EPIPE instead of killing us).
//!
//! A descriptor that is a pipe is switched to non-blocking while the link
//! holds it (and back when the link lets it go), and its pipe buffer is
//! enlarged to [`PIPE_SIZE`] where the system allows: a write then hands the
//! kernel as much as fits in one call and a read tries first and waits only
//! when the pipe is empty, so a fast transfer costs one system call per
//! chunk rather than a poll(2) and a 4 KiB write per page. Other
//! descriptors (a terminal, a file) keep their blocking mode and are written
//! a page at a time after poll(2) reports room.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::sys::{poll_fd, read_outcome, Ready};
use crate::{ByteLink, Error, ErrorKind, LinkStats, ReadOutcome, Result};

/// Largest single write(2): a pipe that polls writable has room for at
/// least this much, so a blocking write of this size returns promptly.
const WRITE_CHUNK: usize = 4096;

/// Default time a write may wait for the peer to make room.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Pipe buffer asked for (Linux's default limit for unprivileged processes,
/// `/proc/sys/fs/pipe-max-size`): at 64 KiB, the default, sender and
/// receiver take turns waking each other every 64 KiB.
pub const PIPE_SIZE: usize = 1 << 20;

/// One end of the link: the descriptor, and its status flags to put back
/// when it was switched to non-blocking.
#[derive(Debug)]
struct Fd {
    file: File,
    restore: Option<libc::c_int>,
}

impl Fd {
    fn new(fd: OwnedFd) -> Self {
        let file = File::from(fd);
        let raw = file.as_raw_fd();
        // SAFETY: fstat on a descriptor we own, into a zeroed stat.
        let is_pipe = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            libc::fstat(raw, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFIFO
        };
        let mut restore = None;
        if is_pipe {
            // SAFETY: fcntl on a descriptor we own; failures leave it as it was.
            unsafe {
                // Best effort: a smaller buffer only means more wake-ups.
                libc::fcntl(raw, libc::F_SETPIPE_SZ, PIPE_SIZE as libc::c_int);
                let flags = libc::fcntl(raw, libc::F_GETFL);
                if flags >= 0
                    && flags & libc::O_NONBLOCK == 0
                    && libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
                {
                    restore = Some(flags);
                }
            }
        }
        Fd { file, restore }
    }

    fn nonblocking(&self) -> bool {
        self.restore.is_some()
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // The flags belong to the open file, which a duplicated stdin or
        // stdout shares with the rest of the process (and a shell's other
        // commands): leave it blocking again, as it was found.
        if let Some(flags) = self.restore {
            // SAFETY: fcntl on a descriptor still open here.
            unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_SETFL, flags) };
        }
    }
}

/// A byte link over a read descriptor and a write descriptor (either may be
/// absent for a one-way link).
#[derive(Debug)]
pub struct PipeLink {
    rd: Option<Fd>,
    wr: Option<Fd>,
    eof: bool,
    write_timeout: Duration,
    write_deadline: Option<Instant>,
    stats: LinkStats,
}

impl PipeLink {
    /// A link reading from `read` and writing to `write`.
    pub fn from_fds(read: Option<OwnedFd>, write: Option<OwnedFd>) -> Self {
        Self {
            rd: read.map(Fd::new),
            wr: write.map(Fd::new),
            eof: false,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            write_deadline: None,
            stats: LinkStats::default(),
        }
    }

    /// A link over this process's stdin (read) and stdout (write). The
    /// descriptors are duplicated, so dropping the link leaves 0 and 1 open.
    pub fn stdio() -> Result<Self> {
        let dup = |fd: libc::c_int| -> Result<OwnedFd> {
            // SAFETY: dup of a standard descriptor; the result is checked before use.
            let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
            if new < 0 {
                return Err(Error::io(
                    format!("duplicating descriptor {fd}"),
                    io::Error::last_os_error(),
                ));
            }
            // SAFETY: `new` is a fresh descriptor we own.
            Ok(unsafe { OwnedFd::from_raw_fd(new) })
        };
        Ok(Self::from_fds(Some(dup(0)?), Some(dup(1)?)))
    }

    /// A link to a child's pipes.
    pub fn from_child_pipes(stdin: Option<ChildStdin>, stdout: Option<ChildStdout>) -> Self {
        Self::from_fds(stdout.map(OwnedFd::from), stdin.map(OwnedFd::from))
    }

    /// Sets how long a write may wait for the peer to make room.
    pub fn set_write_timeout(&mut self, timeout: Duration) {
        self.write_timeout = timeout;
    }

    /// Sets when every write must have ended, whatever its time-out: the
    /// run's deadline. A write started near it would otherwise wait the
    /// whole write time-out past it, as the deadline is only checked
    /// between writes.
    pub fn set_write_deadline(&mut self, deadline: Option<Instant>) {
        self.write_deadline = deadline;
    }

    /// Closes the write side, so the peer reads end of file.
    pub fn close_write(&mut self) {
        self.wr = None;
    }

    /// True once a read has seen end of file.
    pub fn is_eof(&self) -> bool {
        self.eof
    }
}

impl ByteLink for PipeLink {
    fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        let total = bytes.len();
        // Includes waiting for room: a slow reader shows up here.
        let _measure = perfkit::span!("link.pipe.write", bytes = total);
        let timeout = self.write_timeout;
        let Some(wr) = self.wr.as_mut() else {
            return Err(Error::new(ErrorKind::Closed));
        };
        let (deadline, run_ends) = write_deadline(timeout, self.write_deadline);
        // A non-blocking pipe takes what fits at once; only a full pipe waits.
        let (chunk, wait_first) = if wr.nonblocking() {
            (bytes.len(), false)
        } else {
            (WRITE_CHUNK, true)
        };
        let mut wait = wait_first;
        while !bytes.is_empty() {
            if wait {
                let left = deadline.saturating_duration_since(Instant::now());
                match poll_fd(wr.file.as_raw_fd(), libc::POLLOUT, left)
                    .map_err(|e| Error::io("waiting to write to the pipe", e))?
                {
                    Ready::Yes => {}
                    Ready::No if run_ends => {
                        let what = format!(
                            "the run's deadline passed while {} bytes waited for the peer to read",
                            bytes.len()
                        );
                        return Err(Error::new(ErrorKind::TimedOut { what }));
                    }
                    Ready::No => {
                        return Err(Error::new(ErrorKind::TimedOut {
                            what: format!(
                                "the peer read nothing for {:.1} s while {} bytes waited",
                                timeout.as_secs_f64(),
                                bytes.len()
                            ),
                        }))
                    }
                    Ready::HangUp => return Err(Error::new(ErrorKind::Closed)),
                }
            }
            let n = bytes.len().min(chunk);
            match wr.file.write(&bytes[..n]) {
                Ok(0) => return Err(Error::new(ErrorKind::Closed)),
                Ok(k) => {
                    bytes = &bytes[k..];
                    wait = wait_first;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => wait = false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait = true,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Err(Error::new(ErrorKind::Closed))
                }
                Err(e) => return Err(Error::io("writing to the pipe", e)),
            }
        }
        self.stats.sent(total);
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<ReadOutcome> {
        if self.eof {
            return Ok(ReadOutcome::Eof);
        }
        let Some(rd) = self.rd.as_mut() else {
            return Ok(ReadOutcome::Eof);
        };
        if buf.is_empty() {
            return Ok(ReadOutcome::Timeout);
        }
        // A non-blocking pipe is read first and waited on only when empty.
        let mut wait = !rd.nonblocking();
        loop {
            if wait {
                // Measured apart from the read: the time a receiver waits for
                // its peer, which no stage of its own would otherwise show.
                let ready = perfkit::measure!(
                    "link.pipe.wait",
                    poll_fd(rd.file.as_raw_fd(), libc::POLLIN, timeout)
                )
                .map_err(|e| Error::io("waiting to read from the pipe", e))?;
                match ready {
                    Ready::No => return Ok(ReadOutcome::Timeout),
                    // On hang-up a read returns what is left, then 0.
                    Ready::Yes | Ready::HangUp => {}
                }
            }
            let r = perfkit::measure!("link.pipe.read", rd.file.read(buf));
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !wait => {
                    wait = true;
                    continue;
                }
                // Woken but empty again (another reader took it): wait anew.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => match read_outcome(r, &mut self.eof, &mut self.stats) {
                    Ok(Some(outcome)) => return Ok(outcome),
                    Ok(None) => {}
                    Err(e) => return Err(Error::io("reading from the pipe", e)),
                },
            }
        }
    }

    fn flush(&mut self) -> Result<()> {
        // Writes go straight to the descriptor; nothing is buffered here.
        Ok(())
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

/// When a write that starts now must end: after `timeout`, or at
/// `deadline` when that comes first (then `true`).
pub(crate) fn write_deadline(timeout: Duration, deadline: Option<Instant>) -> (Instant, bool) {
    let by_timeout = Instant::now() + timeout;
    match deadline {
        Some(d) if d < by_timeout => (d, true),
        _ => (by_timeout, false),
    }
}

/// A child process with a byte link to its stdin (our writes) and stdout
/// (our reads). Dropping it kills the child if it is still running, so a
/// failed run never leaves processes behind.
#[derive(Debug)]
pub struct ChildLink {
    child: Child,
    link: PipeLink,
    program: String,
}

impl ChildLink {
    /// Spawns `argv[0]` with arguments `argv[1..]`, stdin and stdout piped to
    /// the link, stderr inherited.
    pub fn spawn<S: AsRef<OsStr>>(argv: &[S]) -> Result<Self> {
        let Some((program, args)) = argv.split_first() else {
            return Err(Error::config("command", "empty command line"));
        };
        let mut cmd = Command::new(program);
        cmd.args(args);
        Self::spawn_command(cmd)
    }

    /// Spawns a prepared command; its stdin and stdout are replaced by pipes
    /// to the link, everything else (stderr, environment, directory) is kept.
    pub fn spawn_command(mut cmd: Command) -> Result<Self> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("starting `{program}`"), e))?;
        let link = PipeLink::from_child_pipes(child.stdin.take(), child.stdout.take());
        Ok(Self {
            child,
            link,
            program,
        })
    }

    /// The link to the child's stdin/stdout.
    pub fn link(&mut self) -> &mut PipeLink {
        &mut self.link
    }

    /// The child process (e.g. to take a piped stderr).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Closes the child's stdin, so it reads end of file.
    pub fn close_stdin(&mut self) {
        self.link.close_write();
    }

    /// Waits up to `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|e| Error::io(format!("waiting for `{}`", self.program), e))?
            {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Kills the child (if still running) and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Ok(status);
        }
        let _ = self.child.kill();
        self.child
            .wait()
            .map_err(|e| Error::io(format!("reaping `{}`", self.program), e))
    }
}

impl ByteLink for ChildLink {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.link.write(bytes)
    }
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<ReadOutcome> {
        self.link.read(buf, timeout)
    }
    fn stats(&self) -> LinkStats {
        self.link.stats()
    }
}

impl Drop for ChildLink {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Starts `sender | receiver`: the sender's stdout is the receiver's stdin,
/// a real pipe between two processes as in a shell pipeline. The caller
/// configures everything else (stderr capture, arguments) before the call,
/// and waits for both children.
pub fn spawn_pipeline(mut sender: Command, mut receiver: Command) -> Result<(Child, Child)> {
    let name = |c: &Command| c.get_program().to_string_lossy().into_owned();
    let mut tx = sender
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("starting `{}`", name(&sender)), e))?;
    let pipe = tx.stdout.take().expect("stdout was piped");
    match receiver.stdin(Stdio::from(pipe)).spawn() {
        Ok(rx) => Ok((tx, rx)),
        Err(e) => {
            let _ = tx.kill();
            let _ = tx.wait();
            Err(Error::io(format!("starting `{}`", name(&receiver)), e))
        }
    }
}
