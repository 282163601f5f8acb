//! The serial link over real pseudo-terminals: a pair from openpty
//! (serialport's `TTYPort::pair`) and a pair made by socat, opened by path as
//! a real device would be.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use perfkit_link::{ByteLink, ReadOutcome, SerialLink};

fn pattern(n: usize, salt: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + salt) % 256) as u8).collect()
}

/// Sends `a_data` from a and `b_data` from b at the same time, in pieces,
/// and checks both arrive byte-exact.
fn exchange(a: &mut SerialLink, b: &mut SerialLink, a_data: &[u8], b_data: &[u8]) {
    let (mut at_b, mut at_a) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut ai, mut bi) = (0, 0);
    while (at_b.len() < a_data.len() || at_a.len() < b_data.len()) && Instant::now() < deadline {
        if ai < a_data.len() {
            let end = (ai + 256).min(a_data.len());
            a.write(&a_data[ai..end]).unwrap();
            ai = end;
        }
        if bi < b_data.len() {
            let end = (bi + 256).min(b_data.len());
            b.write(&b_data[bi..end]).unwrap();
            bi = end;
        }
        if let ReadOutcome::Data(n) = b.read(&mut buf, Duration::from_millis(5)).unwrap() {
            at_b.extend_from_slice(&buf[..n]);
        }
        if let ReadOutcome::Data(n) = a.read(&mut buf, Duration::from_millis(5)).unwrap() {
            at_a.extend_from_slice(&buf[..n]);
        }
    }
    assert!(
        at_b == a_data,
        "a->b differs ({} of {} bytes)",
        at_b.len(),
        a_data.len()
    );
    assert!(
        at_a == b_data,
        "b->a differs ({} of {} bytes)",
        at_a.len(),
        b_data.len()
    );
}

#[test]
fn openpty_pair_moves_kilobytes_both_ways() {
    let (mut a, mut b) = SerialLink::pair().unwrap();
    // Every byte value, including 0x11/0x13 (XON/XOFF) and 0x0d: the line is raw.
    exchange(&mut a, &mut b, &pattern(6000, 0), &pattern(5000, 3));
    assert_eq!(a.stats().bytes_out, 6000);
    assert_eq!(a.stats().bytes_in, 5000);
    let mut buf = [0u8; 8];
    assert_eq!(
        a.read(&mut buf, Duration::from_millis(10)).unwrap(),
        ReadOutcome::Timeout
    );
}

#[test]
fn a_write_nobody_drains_gives_up_at_its_time_out() {
    let (mut a, b) = SerialLink::pair().unwrap();
    a.set_write_timeout(Duration::from_secs(1));
    // Far more than a pty holds, and b never reads: a blocking write(2)
    // waited for room for all of it, for ever, past the time-out.
    let (done, got) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let t = Instant::now();
        let r = a.write(&pattern(1 << 20, 5));
        let _ = done.send((r, t.elapsed()));
        drop(b);
    });
    let (r, took) = got
        .recv_timeout(Duration::from_secs(20))
        .expect("the write was still blocked after 20 s");
    let err = r.expect_err("1 MiB fitted into an undrained pty");
    assert!(
        matches!(err.kind(), perfkit_link::ErrorKind::TimedOut { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("no room for"), "{err}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

struct Socat(Child);

impl Drop for Socat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn socat_pair(dir: &Path) -> (Socat, String, String) {
    let a = dir.join("ttyA").display().to_string();
    let b = dir.join("ttyB").display().to_string();
    let child = Command::new("socat")
        .arg("-d")
        .arg("-d")
        .arg(format!("pty,raw,echo=0,link={a}"))
        .arg(format!("pty,raw,echo=0,link={b}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run socat ({e}): install it with scripts/setup.d/10-debian.sh")
        });
    let guard = Socat(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(Path::new(&a).exists() && Path::new(&b).exists()) {
        assert!(
            Instant::now() < deadline,
            "socat did not create {a} and {b}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (guard, a, b)
}

#[test]
fn socat_pty_pair_moves_kilobytes_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (_socat, pa, pb) = socat_pair(dir.path());
    let mut a = SerialLink::open(&pa, 115_200).unwrap();
    let mut b = SerialLink::open(&pb, 115_200).unwrap();
    assert_eq!(a.baud(), 115_200);
    exchange(&mut a, &mut b, &pattern(4096, 1), &pattern(3000, 9));
}

#[test]
fn missing_device_is_a_clear_error() {
    let err = SerialLink::open("/dev/perfkit-no-such-tty", 115_200).unwrap_err();
    assert!(
        err.to_string().contains("/dev/perfkit-no-such-tty"),
        "{err}"
    );
}
