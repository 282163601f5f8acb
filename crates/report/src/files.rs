//! The files perfkit is handed on its command line or in a scenario: read
//! with a size limit, never waiting on a FIFO that no one writes, and written
//! without replacing what is not an ordinary file.
//!
//! `perfkit check /dev/zero` must say "not a regular file" at once rather
//! than fill memory, a folder full of scenarios may hold a FIFO named
//! `x.toml`, and `perfkit recv /dev/null` run as root must write into the
//! device, not rename a regular file over it. [`read_limited`] and
//! [`Target`] (which [`crate::model::write_atomic`] uses) are those rules.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

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
/// take. Opening never blocks: a FIFO with no writer is refused, or, where
/// pipes are accepted, read as it is written.
pub fn read_limited(path: &Path, limit: u64, accept: Accept) -> io::Result<Vec<u8>> {
    let mut file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(refused("is a folder, not a file"));
    }
    if kind.is_file() {
        if meta.len() > limit {
            return Err(too_large(meta.len(), limit));
        }
    } else if accept == Accept::RegularOrPipe && is_fifo(&kind) {
        set_blocking(&file)?;
    } else {
        return Err(refused(&format!(
            "is {}, not a regular file",
            describe(&kind)
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
    file.by_ref().take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64, limit));
    }
    Ok(bytes)
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
    /// over it. The path is the one found by following symbolic links, so a
    /// link stays a link and its target gets the new bytes.
    Replace(PathBuf),
    /// A device, FIFO or socket (`/dev/null`, `/dev/stdout`): written into
    /// as it is, since renaming over it would destroy it and a stream has no
    /// "half written" state a reader could see.
    InPlace(PathBuf),
}

impl Target {
    /// Follows `path`'s symbolic links and says how to write there; an
    /// error for a folder, a link loop, or a link that cannot be read.
    pub fn of(path: &Path) -> io::Result<Target> {
        let end = follow_links(path)?;
        match std::fs::metadata(&end) {
            Ok(m) if m.is_dir() => Err(refused("is a folder: name a file to write")),
            Ok(m) if m.is_file() => Ok(Target::Replace(end)),
            Ok(_) => Ok(Target::InPlace(end)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Target::Replace(end)),
            Err(e) => Err(e),
        }
    }
}

/// Writes `bytes` into an existing device, FIFO or socket.
pub(crate) fn write_in_place(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(bytes)?;
    f.flush()
}

/// The path `path` names after following every symbolic link (at most 40,
/// as the kernel allows); a missing last component is fine.
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(refused("has more than 40 levels of symbolic links"))
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

/// Clears `O_NONBLOCK`, so reading a pipe waits for its writer.
#[cfg(unix)]
fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns, with
    // integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_blocking(_: &File) -> io::Result<()> {
    Ok(())
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

    /// A pipe holding `n` bytes whose writer has gone, named by
    /// `/proc/self/fd`, as `<(command)` names one.
    #[cfg(unix)]
    fn pipe_with(n: usize) -> (std::fs::File, PathBuf) {
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
        w.write_all(&vec![7u8; n]).unwrap(); // below the 64 KiB a pipe holds
        drop(w);
        (r, PathBuf::from(format!("/proc/self/fd/{}", fds[0])))
    }

    #[cfg(unix)]
    #[test]
    fn a_pipe_is_read_to_its_end_or_to_the_limit() {
        let (_keep, p) = pipe_with(50_000);
        let got = read_limited(&p, 1 << 20, Accept::RegularOrPipe).unwrap();
        assert_eq!(got, vec![7u8; 50_000]);
        let (_keep, p) = pipe_with(50_000);
        let e = read_limited(&p, 1000, Accept::RegularOrPipe).unwrap_err();
        assert!(e.to_string().contains("larger than the 1000 bytes"), "{e}");
        let (_keep, p) = pipe_with(10);
        let e = read_limited(&p, 1000, Accept::Regular).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
    }

    #[test]
    fn writes_follow_links_and_keep_special_files() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        assert_eq!(Target::of(&real).unwrap(), Target::Replace(real.clone()));
        #[cfg(unix)]
        {
            let link = dir.path().join("link.json");
            std::os::unix::fs::symlink("real.json", &link).unwrap();
            assert_eq!(Target::of(&link).unwrap(), Target::Replace(real.clone()));
            let lp = dir.path().join("loop");
            std::os::unix::fs::symlink("loop", &lp).unwrap();
            assert!(Target::of(&lp).is_err());
        }
        assert_eq!(
            Target::of(Path::new("/dev/null")).unwrap(),
            Target::InPlace("/dev/null".into())
        );
        assert!(Target::of(dir.path()).is_err());
    }
}
