//! The pipe link against real child processes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use perfkit_link::faults::{FaultConfig, Faulty};
use perfkit_link::{spawn_pipeline, ByteLink, ChildLink, ErrorKind, ReadOutcome};

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 131 % 251) as u8).collect()
}

/// Writes `data` to the link in pieces while reading what comes back, so
/// neither pipe fills up; returns what was read before EOF.
fn echo_through(link: &mut ChildLink, data: &[u8], piece: usize) -> Vec<u8> {
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 8192];
    let mut reads_with_data = 0;
    for chunk in data.chunks(piece) {
        link.write(chunk).unwrap();
        while let ReadOutcome::Data(n) = link.read(&mut buf, Duration::ZERO).unwrap() {
            got.extend_from_slice(&buf[..n]);
            reads_with_data += 1;
        }
    }
    link.close_stdin();
    loop {
        match link.read(&mut buf, Duration::from_secs(10)).unwrap() {
            ReadOutcome::Data(n) => {
                got.extend_from_slice(&buf[..n]);
                reads_with_data += 1;
            }
            ReadOutcome::Eof => break,
            ReadOutcome::Timeout => panic!("cat went silent without closing"),
        }
    }
    assert!(reads_with_data > 0);
    got
}

#[test]
fn cat_echoes_byte_exact() {
    let mut link = ChildLink::spawn(&["cat"]).unwrap();
    let data = pattern(300_000);
    let got = echo_through(&mut link, &data, 1000);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echo differs");
    let s = link.stats();
    assert_eq!((s.bytes_out, s.bytes_in), (300_000, 300_000));
    assert!(link
        .wait_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap()
        .success());
}

#[test]
fn eof_is_reported_and_sticks() {
    let mut link = ChildLink::spawn(&["printf", "abc"]).unwrap();
    let mut buf = [0u8; 16];
    let mut got = Vec::new();
    loop {
        match link.read(&mut buf, Duration::from_secs(10)).unwrap() {
            ReadOutcome::Data(n) => got.extend_from_slice(&buf[..n]),
            ReadOutcome::Eof => break,
            ReadOutcome::Timeout => panic!("printf went silent"),
        }
    }
    assert_eq!(got, b"abc");
    assert_eq!(
        link.read(&mut buf, Duration::ZERO).unwrap(),
        ReadOutcome::Eof
    );
}

#[test]
fn silent_peer_times_out_instead_of_hanging() {
    let mut link = ChildLink::spawn(&["sleep", "30"]).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        link.read(&mut buf, Duration::from_millis(50)).unwrap(),
        ReadOutcome::Timeout
    );
    // A peer that never reads: writes give up after the write timeout.
    link.link().set_write_timeout(Duration::from_millis(100));
    // More than the (enlarged) pipe holds.
    let big = vec![0u8; 4 * perfkit_link::pipe::PIPE_SIZE];
    let err = link.write(&big).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::TimedOut { .. }), "{err}");
    // Dropping the link kills the child; killing explicitly reports it.
    let status = link.kill().unwrap();
    assert!(!status.success());
}

#[test]
fn dead_peer_gives_closed() {
    let mut link = ChildLink::spawn(&["true"]).unwrap();
    link.wait_timeout(Duration::from_secs(5)).unwrap().unwrap();
    let start = Instant::now();
    let mut result = Ok(());
    // The first write may land in the pipe buffer before EPIPE is seen.
    while result.is_ok() && start.elapsed() < Duration::from_secs(5) {
        result = link.write(&[0u8; 4096]);
    }
    assert!(result.unwrap_err().is_closed());
    let mut buf = [0u8; 8];
    assert_eq!(
        link.read(&mut buf, Duration::from_secs(1)).unwrap(),
        ReadOutcome::Eof
    );
}

#[test]
fn missing_program_is_a_clear_error() {
    let err = ChildLink::spawn(&["/nonexistent/perfkit-peer"]).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/perfkit-peer"),
        "{err}"
    );
    let empty: [&str; 0] = [];
    assert!(ChildLink::spawn(&empty).is_err());
}

#[test]
fn two_processes_joined_by_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.bin");
    let dst = dir.path().join("out.bin");
    let data = pattern(100_000);
    std::fs::write(&src, &data).unwrap();
    let mut sender = Command::new("cat");
    sender.arg(&src);
    let mut receiver = Command::new("dd");
    receiver
        .arg(format!("of={}", dst.display()))
        .stderr(Stdio::null());
    let (mut tx, mut rx) = spawn_pipeline(sender, receiver).unwrap();
    assert!(tx.wait().unwrap().success());
    assert!(rx.wait().unwrap().success());
    assert!(std::fs::read(&dst).unwrap() == data);
}

#[test]
fn faults_over_a_real_pipe_are_counted_and_repeat() {
    let run = || {
        let cfg = FaultConfig {
            seed: 3,
            byte_drop: 0.01,
            byte_duplicate: 0.01,
            bit_error_rate: 1e-4,
            ..FaultConfig::default()
        };
        let mut link = Faulty::new(ChildLink::spawn(&["cat"]).unwrap(), &cfg).unwrap();
        let data = pattern(50_000);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 8192];
        for chunk in data.chunks(500) {
            link.write(chunk).unwrap();
        }
        link.inner_mut().close_stdin();
        loop {
            match link.read(&mut buf, Duration::from_secs(10)).unwrap() {
                ReadOutcome::Data(n) => got.extend_from_slice(&buf[..n]),
                ReadOutcome::Eof => break,
                ReadOutcome::Timeout => panic!("cat went silent"),
            }
        }
        (got, link.fault_stats())
    };
    let (a, stats) = run();
    let (b, stats_b) = run();
    assert_eq!(stats, stats_b);
    assert!(a == b, "same seed, same damage");
    assert_eq!(
        a.len() as u64,
        50_000 - stats.bytes_dropped + stats.bytes_duplicated
    );
    assert!(
        stats.bytes_dropped > 300 && stats.bits_flipped > 10,
        "{stats:?}"
    );
}

#[test]
fn a_pipe_is_non_blocking_only_while_the_link_holds_it() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two descriptors, owned right after.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fresh descriptors from pipe(2), each owned once.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Duplicates share the open files, as stdin and stdout share them with
    // the link `PipeLink::stdio` makes.
    let (r2, w2) = (r.try_clone().unwrap(), w.try_clone().unwrap());
    // SAFETY: fcntl queries on open descriptors.
    let nonblocking = |fd: &OwnedFd| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) } & libc::O_NONBLOCK != 0;
    let mut link = perfkit_link::PipeLink::from_fds(Some(r), Some(w));
    assert!(nonblocking(&r2) && nonblocking(&w2));
    let data = pattern(50_000);
    link.write(&data).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while got.len() < data.len() {
        match link.read(&mut buf, Duration::from_secs(1)).unwrap() {
            ReadOutcome::Data(n) => got.extend_from_slice(&buf[..n]),
            other => panic!("{other:?} after {} bytes", got.len()),
        }
    }
    assert_eq!(got, data);
    // Empty: a read waits its timeout out rather than failing on EAGAIN.
    let t = Instant::now();
    assert_eq!(
        link.read(&mut buf, Duration::from_millis(30)).unwrap(),
        ReadOutcome::Timeout
    );
    assert!(t.elapsed() >= Duration::from_millis(25));
    drop(link);
    assert!(!nonblocking(&r2) && !nonblocking(&w2));
}
