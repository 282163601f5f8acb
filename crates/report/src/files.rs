//! The files perfkit is handed on its command line or in a scenario: read
//! with a size limit, waiting on a FIFO only where a pipe is what was asked
//! for (the data `perfkit send` sends), and written without replacing what
//! is not an ordinary file.
//!
//! `perfkit check /dev/zero` must say "not a regular file" at once rather
//! than fill memory, a folder full of scenarios may hold a FIFO named
//! `x.toml`, and `perfkit recv /dev/null` run as root must write into the
//! device, not rename a regular file over it. [`read_limited`] and
//! [`Target`] (which [`crate::model::write_atomic`] uses) are those rules.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

/// Which kinds of file [`read_limited`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Regular files only: scenarios, results, tokens, settings.
    Regular,
    /// Regular files and pipes (`perfkit send <(make-data)`): data that is
    /// read once, up to the limit.
    RegularOrPipe,
}

/// Reads the whole file at `path`, refusing one larger than `limit` bytes
/// (from its size up front where it has one) and any file `accept` does not
/// take. The type is asked of the path before anything is opened: an
/// accepted pipe is opened once, so a named FIFO waits for its writer as
/// `cat` would (opening it twice would release a waiting writer to the
/// first open and leave the second waiting forever); anything refused is
/// refused without opening it. A regular file is opened without blocking
/// and checked again once open.
pub fn read_limited(path: &Path, limit: u64, accept: Accept) -> io::Result<Vec<u8>> {
    read_file(path, limit, accept, None)
}

/// [`read_limited`], except that a pipe has until `deadline` to reach its
/// end: one no writer opened, or whose writer neither finished nor closed
/// it, is then an [`io::ErrorKind::TimedOut`] error, not a wait without end.
/// (On Linux; elsewhere a FIFO is opened blocking, as [`read_limited`]
/// opens it, and `deadline` is not checked.)
pub fn read_limited_until(
    path: &Path,
    limit: u64,
    accept: Accept,
    deadline: Instant,
) -> io::Result<Vec<u8>> {
    read_file(path, limit, accept, Some(deadline))
}

fn read_file(
    path: &Path,
    limit: u64,
    accept: Accept,
    deadline: Option<Instant>,
) -> io::Result<Vec<u8>> {
    let named = std::fs::metadata(path)?;
    let kind = named.file_type();
    if kind.is_dir() {
        return Err(refused("is a folder, not a file"));
    }
    let not_regular =
        |kind: &std::fs::FileType| refused(&format!("is {}, not a regular file", describe(kind)));
    let (mut file, meta) = if kind.is_file() {
        let file = open_nonblocking(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(not_regular(&meta.file_type()));
        }
        if meta.len() > limit {
            return Err(too_large(meta.len(), limit));
        }
        (file, meta)
    } else if accept == Accept::RegularOrPipe && is_fifo(&kind) {
        #[cfg(target_os = "linux")]
        return read_pipe(path, limit, deadline);
        #[cfg(not(target_os = "linux"))]
        {
            let _ = deadline;
            (File::open(path)?, named)
        }
    } else {
        return Err(not_regular(&kind));
    };
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
    file.by_ref().take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// Reads a pipe to its end, waiting in poll(2) rather than in a blocking
/// open, so that `deadline` (if any) bounds the wait for a writer too.
///
/// Linux's rules for a FIFO opened for reading without blocking make this
/// exact: with no writer yet the open succeeds and a read says "end of
/// file", but poll reports nothing until a writer has written (readable)
/// or has come and gone (hang-up). A read is made only once poll reports
/// one of them, so an empty FIFO is never taken for an empty file, and a
/// writer already waiting in its own open is let through by this one.
#[cfg(target_os = "linux")]
fn read_pipe(path: &Path, limit: u64, deadline: Option<Instant>) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let file = open_nonblocking(path)?;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let wait_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        if bytes.is_empty() {
                            "nothing was written to it (no writer opened it, or none wrote)"
                                .to_owned()
                        } else {
                            format!("its writer had not closed it ({} bytes read)", bytes.len())
                        },
                    ));
                }
                // Rounded up: a wait cut short of the deadline would spin.
                i32::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
            }
        };
        let mut ready = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd this function owns, for a descriptor it holds.
        match unsafe { libc::poll(&mut ready, 1, wait_ms) } {
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            0 => continue,
            _ => {}
        }
        // Readable or hung up: a writer has been. Read what is there; the
        // end of file now means every writer has closed it.
        loop {
            match (&file).read(&mut buf) {
                Ok(0) => return Ok(bytes),
                Ok(n) => {
                    bytes.extend_from_slice(&buf[..n]);
                    if bytes.len() as u64 > limit {
                        return Err(too_large(bytes.len() as u64, limit));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// [`read_limited`] of a regular text file.
pub fn read_text_limited(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_limited(path, limit, Accept::Regular)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8 text: {e}")))
}

/// Where a write to a path lands, and how.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A regular file, or nothing yet: written whole beside it, then renamed
    /// over it, so a reader sees the old file or the new one.
    Replace(PathBuf),
    /// A symbolic link, device, FIFO or socket: opened by the kernel and
    /// written into (created if a link's target is missing, in a folder
    /// that exists). A link stays a link, its target keeps its owner and
    /// mode, and the kernel's link protections apply; `/dev/null` stays a
    /// device. Not atomic: a stream has no "half written" state to hide,
    /// and a link is the user's choice of where the bytes go.
    Through(PathBuf),
    /// `/dev/stdout`, `/dev/stderr`, `/dev/fd/N` or `/proc/self/fd/N`: the
    /// descriptor this process already holds, so a pipe works and a `>>`
    /// redirection appends.
    Descriptor(i32),
}

impl Target {
    /// How to write to `path`; an error for a folder (or a link to one).
    pub fn of(path: &Path) -> io::Result<Target> {
        if let Some(fd) = descriptor(path) {
            writable(fd)?;
            return Ok(Target::Descriptor(fd));
        }
        let own = match std::fs::symlink_metadata(path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let target = match std::fs::metadata(path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if target.as_ref().is_some_and(|m| m.is_dir()) {
            return Err(refused("is a folder: name a file to write"));
        }
        let link = own.as_ref().is_some_and(|m| m.file_type().is_symlink());
        if link {
            // Another name for this process's stdout or stderr
            // (`/dev//stdout`, a link to `/dev/stdout`): its descriptor.
            if let Some(fd) = target.as_ref().and_then(own_stream) {
                // A link to the /dev/null that stands in for a descriptor
                // closed at start is a link to /dev/null, not to it.
                if closed_at_start(fd) && !names_descriptor(path) {
                    return Ok(Target::Through(path.to_owned()));
                }
                writable(fd)?;
                return Ok(Target::Descriptor(fd));
            }
            if target.is_none() {
                dangling_link_folder(path)?;
            }
        }
        Ok(match target {
            _ if link => Target::Through(path.to_owned()),
            Some(m) if !m.is_file() => Target::Through(path.to_owned()),
            _ => Target::Replace(path.to_owned()),
        })
    }

    /// Writes `bytes` where this target says; for [`Target::Replace`], use
    /// [`crate::model::write_atomic`], which calls this for the others.
    pub(crate) fn write_directly(&self, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        match self {
            Target::Replace(p) | Target::Through(p) => {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(p)?;
                f.write_all(bytes)?;
                f.flush()
            }
            Target::Descriptor(fd) => write_fd(*fd, bytes),
        }
    }
}

/// Standard descriptors (bit `fd` for 0, 1, 2) that were closed when the
/// process started, as [`record_closed_at_start`] found them.
static CLOSED_AT_START: AtomicU8 = AtomicU8::new(0);

/// Notes which of descriptors 0, 1 and 2 are closed. A binary calls it
/// before `main` (an `.init_array` entry, as perfkit's does): Rust's runtime
/// then opens /dev/null on each closed one, after which a closed stdout
/// (`>&-`) cannot be told from one the caller discarded on purpose (a
/// read-write /dev/null is also what `subprocess.DEVNULL` and daemons hand a
/// child). Without the call, nothing is known to have been closed.
pub extern "C" fn record_closed_at_start() {
    #[cfg(unix)]
    for fd in 0..3 {
        // SAFETY: F_GETFD only asks whether the descriptor is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            CLOSED_AT_START.fetch_or(1 << fd, Ordering::Relaxed);
        }
    }
}

/// Whether standard descriptor `fd` was closed when the process started.
pub fn closed_at_start(fd: i32) -> bool {
    (0..3).contains(&fd) && CLOSED_AT_START.load(Ordering::Relaxed) & (1 << fd) != 0
}

/// An error unless descriptor `fd` is open for writing.
#[cfg(unix)]
fn writable(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl(F_GETFL) only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(refused(&format!("descriptor {fd} is not open")));
    }
    if flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(refused(&format!(
            "descriptor {fd} is open for reading only"
        )));
    }
    if closed_at_start(fd) {
        // What is there now is the /dev/null Rust's runtime opened in its
        // place, so that no file opened later takes its number. Written to,
        // it would swallow the output and report success.
        let name = ["stdin", "stdout", "stderr"][fd as usize];
        return Err(refused(&format!(
            "{name} was closed when perfkit started (`>&-`): there is nowhere to write"
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn writable(_: i32) -> io::Result<()> {
    Ok(())
}

/// 1 or 2 when `m` is the file this process's stdout or stderr is.
#[cfg(unix)]
fn own_stream(m: &std::fs::Metadata) -> Option<i32> {
    use std::os::unix::fs::MetadataExt;
    [1, 2].into_iter().find(|&fd| {
        // SAFETY: fstat into a zeroed struct this closure owns.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::fstat(fd, &mut st) } == 0;
        ok && st.st_dev as u64 == m.dev() && st.st_ino as u64 == m.ino()
    })
}

#[cfg(not(unix))]
fn own_stream(_: &std::fs::Metadata) -> Option<i32> {
    None
}

/// Whether `path`, or a link on the way from it, is a name of one of this
/// process's descriptors (an entry of `/proc/self/fd`, `/dev/fd` or a
/// thread's `fd` folder), rather than of the file a descriptor holds.
fn names_descriptor(path: &Path) -> bool {
    let pid = std::process::id().to_string();
    let own = |dir: &Path| -> bool {
        let Ok(dir) = std::fs::canonicalize(dir) else {
            return false;
        };
        let mut parts = dir.iter().map(|c| c.to_str().unwrap_or(""));
        match (parts.next(), parts.next(), parts.next()) {
            (Some("/"), Some("proc"), Some(p)) if p == pid => {
                let rest: Vec<&str> = parts.collect();
                matches!(rest[..], ["fd"] | ["task", _, "fd"])
            }
            _ => false,
        }
    };
    let mut p = path.to_owned();
    // Links to links, as far as the kernel itself follows them.
    for _ in 0..40 {
        if p.parent().is_some_and(own) {
            return true;
        }
        let Ok(to) = link_target(&p) else {
            return false;
        };
        p = to;
    }
    false
}

/// Where the symbolic link `link` points, a relative target taken from the
/// link's folder.
fn link_target(link: &Path) -> io::Result<PathBuf> {
    let to = std::fs::read_link(link)?;
    Ok(match link.parent() {
        Some(dir) if to.is_relative() => dir.join(to),
        _ => to,
    })
}

/// For a link whose target does not exist: an error unless the target's
/// folder does, so the write fails now, not after a transfer.
fn dangling_link_folder(link: &Path) -> io::Result<()> {
    let to = link_target(link)?;
    match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(refused(&format!(
            "is a link to {}, in a folder that does not exist",
            to.display()
        ))),
        _ => Ok(()),
    }
}

/// The descriptor a path names, for the names of this process's own
/// descriptors.
fn descriptor(path: &Path) -> Option<i32> {
    let s = path.to_str()?;
    match s {
        "/dev/stdout" => return Some(1),
        "/dev/stderr" => return Some(2),
        _ => {}
    }
    let n = s
        .strip_prefix("/dev/fd/")
        .or_else(|| s.strip_prefix("/proc/self/fd/"))?;
    n.parse::<i32>().ok().filter(|&fd| fd >= 0)
}

/// Writes to descriptor `fd` through a duplicate, leaving `fd` open.
#[cfg(unix)]
fn write_fd(fd: i32, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::fd::{BorrowedFd, OwnedFd};
    if fd == 1 {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        return out.flush();
    }
    if fd == 2 {
        let mut out = std::io::stderr().lock();
        out.write_all(bytes)?;
        return out.flush();
    }
    // Open (so borrowing it below is sound) and open for writing.
    writable(fd)?;
    // SAFETY: `fd` is open (checked above) and only borrowed here.
    let owned: OwnedFd = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
    let mut f = File::from(owned);
    f.write_all(bytes)?;
    f.flush()
}

#[cfg(not(unix))]
fn write_fd(_: i32, _: &[u8]) -> io::Result<()> {
    Err(io::Error::other("descriptors by name are a Unix feature"))
}

fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why.to_owned())
}

fn too_large(len: u64, limit: u64) -> io::Error {
    refused(&format!(
        "is larger than the {limit} bytes accepted here ({len} bytes or more)"
    ))
}

fn describe(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    let _ = kind;
    "a special file"
}

#[cfg(unix)]
fn is_fifo(kind: &std::fs::FileType) -> bool {
    use std::os::unix::fs::FileTypeExt;
    kind.is_fifo()
}

#[cfg(not(unix))]
fn is_fifo(_: &std::fs::FileType) -> bool {
    false
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_limited(&p, 5, Accept::Regular).unwrap(), b"12345");
        let e = read_limited(&p, 4, Accept::Regular).unwrap_err();
        assert!(e.to_string().contains("larger than the 4 bytes"), "{e}");
        let e = read_limited(dir.path(), 100, Accept::Regular).unwrap_err();
        assert!(e.to_string().contains("is a folder"), "{e}");
    }

    #[test]
    fn devices_are_refused_at_once() {
        for accept in [Accept::Regular, Accept::RegularOrPipe] {
            let e = read_limited(Path::new("/dev/zero"), 1 << 20, accept).unwrap_err();
            assert!(e.to_string().contains("a character device"), "{e}");
        }
    }

    #[cfg(unix)]
    fn fifo(dir: &Path) -> PathBuf {
        let p = dir.join("f.toml");
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and a mode.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        p
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_without_a_writer_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let p = fifo(dir.path());
        let e = read_limited(&p, 100, Accept::Regular).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
    }

    /// Reads `/proc/self/fd/N` of a pipe, as `<(command)` names one, on
    /// another thread while this one writes `n` bytes and closes the pipe.
    #[cfg(unix)]
    fn read_pipe_of(n: usize, limit: u64, accept: Accept) -> io::Result<Vec<u8>> {
        use std::io::Write;
        use std::os::fd::FromRawFd;
        let mut fds = [0; 2];
        // SAFETY: pipe fills two descriptors, which the Files then own.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (r, mut w) = unsafe {
            (
                std::fs::File::from_raw_fd(fds[0]),
                std::fs::File::from_raw_fd(fds[1]),
            )
        };
        let name = PathBuf::from(format!("/proc/self/fd/{}", fds[0]));
        let reader = std::thread::spawn(move || read_limited(&name, limit, accept));
        // Below the 64 KiB a pipe holds: never blocks, whatever the reader does.
        w.write_all(&vec![7u8; n]).unwrap();
        drop(w);
        let got = reader.join().unwrap();
        drop(r);
        got
    }

    #[cfg(unix)]
    #[test]
    fn a_pipe_is_read_to_its_end_or_to_the_limit() {
        let got = read_pipe_of(50_000, 1 << 20, Accept::RegularOrPipe).unwrap();
        assert_eq!(got, vec![7u8; 50_000]);
        let e = read_pipe_of(50_000, 1000, Accept::RegularOrPipe).unwrap_err();
        assert!(e.to_string().contains("larger than the 1000 bytes"), "{e}");
        let e = read_pipe_of(10, 1000, Accept::Regular).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_accepted_as_a_pipe_waits_for_its_writer() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = fifo(dir.path());
        let writer = {
            let p = p.clone();
            std::thread::spawn(move || {
                // Opens after the reader has looked: an early non-blocking
                // read would see end of file and return nothing.
                std::thread::sleep(std::time::Duration::from_millis(200));
                let mut w = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                w.write_all(b"late bytes").unwrap();
            })
        };
        let got = read_limited(&p, 100, Accept::RegularOrPipe).unwrap();
        writer.join().unwrap();
        assert_eq!(got, b"late bytes");
        // A writer that opened first (`printf hello > fifo &`) is waiting
        // in its open: one open of ours meets it.
        let writer = {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut w = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                w.write_all(b"early bytes").unwrap();
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        let got = read_limited(&p, 100, Accept::RegularOrPipe).unwrap();
        writer.join().unwrap();
        assert_eq!(got, b"early bytes");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_read_until_a_deadline_gives_up_then_or_reads_a_writer_in_time() {
        use std::io::Write;
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let p = fifo(dir.path());
        let within = |ms| Instant::now() + Duration::from_millis(ms);
        let t = Instant::now();
        let e = read_limited_until(&p, 100, Accept::RegularOrPipe, within(300)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("no writer opened it"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        // A writer that wrote part and holds it open.
        let mut w = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        w.write_all(b"part").unwrap();
        let e = read_limited_until(&p, 100, Accept::RegularOrPipe, within(300)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(
            e.to_string().contains("had not closed it (4 bytes read)"),
            "{e}"
        );
        drop(w);
        let writer = {
            let p = p.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let mut w = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                w.write_all(b"in time").unwrap();
            })
        };
        let got = read_limited_until(&p, 100, Accept::RegularOrPipe, within(20_000)).unwrap();
        writer.join().unwrap();
        assert_eq!(got, b"in time");
        // A writer that comes and goes without writing: an empty file.
        let writer = {
            let p = p.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(200));
                drop(std::fs::OpenOptions::new().write(true).open(p).unwrap());
            })
        };
        let got = read_limited_until(&p, 100, Accept::RegularOrPipe, within(20_000)).unwrap();
        writer.join().unwrap();
        assert!(got.is_empty());
    }

    #[test]
    fn writes_replace_files_and_go_through_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        assert_eq!(Target::of(&real).unwrap(), Target::Replace(real.clone()));
        #[cfg(unix)]
        {
            let link = dir.path().join("link.json");
            std::os::unix::fs::symlink("real.json", &link).unwrap();
            assert_eq!(Target::of(&link).unwrap(), Target::Through(link.clone()));
            let lp = dir.path().join("loop");
            std::os::unix::fs::symlink("loop", &lp).unwrap();
            assert!(Target::of(&lp).is_err());
            let to_dir = dir.path().join("to-dir");
            std::os::unix::fs::symlink(".", &to_dir).unwrap();
            assert!(Target::of(&to_dir).is_err());
        }
        assert_eq!(
            Target::of(Path::new("/dev/null")).unwrap(),
            Target::Through("/dev/null".into())
        );
        for (name, fd) in [
            ("/dev/stdout", 1),
            ("/dev/stderr", 2),
            ("/proc/self/fd/1", 1),
        ] {
            assert_eq!(Target::of(Path::new(name)).unwrap(), Target::Descriptor(fd));
        }
        // Other spellings of stdout are stdout too.
        for name in ["/dev//stdout", "/dev/./stdout", "/proc/thread-self/fd/1"] {
            assert_eq!(
                Target::of(Path::new(name)).unwrap(),
                Target::Descriptor(1),
                "{name}"
            );
        }
        let e = Target::of(Path::new("/dev/fd/987")).unwrap_err();
        assert!(e.to_string().contains("descriptor 987 is not open"), "{e}");
        #[cfg(unix)]
        {
            let link = dir.path().join("nowhere.json");
            std::os::unix::fs::symlink("no/such/folder/x.json", &link).unwrap();
            let e = Target::of(&link).unwrap_err();
            assert!(e.to_string().contains("does not exist"), "{e}");
        }
        assert!(Target::of(dir.path()).is_err());
    }
}
