//! Yardsticks measured in the same run as a scenario, so a figure can be read
//! against what the machine does without perfkit.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};

use super::children::reap;

/// Times `cat` is run per measurement; the fastest counts. One run of three
/// processes on a small machine is at the scheduler's mercy (measured on
/// 2 cores: 422 to 1,554 MB/s between runs of one scenario); the fastest
/// of a few is what the machine can do, a steadier yardstick and the
/// harder one to be measured against.
pub const CAT_TRIES: usize = 3;

/// What moving a file through `cat FILE | cat` cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cat {
    /// Seconds from the first bytes read to the last ([`cat_through_pipe`]).
    pub secs: f64,
    /// CPU time of the two `cat` processes, whole (start to exit), user
    /// plus system, in nanoseconds.
    pub cpu_ns: u64,
}

/// The fastest of [`CAT_TRIES`] runs of `cat FILE | cat`, and the least
/// CPU time of any (each the machine's best, so the harder to be measured
/// against).
pub fn cat_fastest(file: &Path) -> anyhow::Result<Cat> {
    least_of(CAT_TRIES, || cat_through_pipe(file))
}

/// The least time and the least CPU time, apart, of `tries` measurements;
/// the first error ends it.
fn least_of(tries: usize, mut measure: impl FnMut() -> anyhow::Result<Cat>) -> anyhow::Result<Cat> {
    let mut best = Cat {
        secs: f64::INFINITY,
        cpu_ns: u64::MAX,
    };
    for _ in 0..tries.max(1) {
        let c = measure()?;
        best.secs = best.secs.min(c.secs);
        best.cpu_ns = best.cpu_ns.min(c.cpu_ns);
    }
    Ok(best)
}

/// Seconds for `cat FILE | cat` to move the file through a real pipe (the
/// second `cat`'s output is read and counted here, so every byte crosses),
/// and the CPU time of the two processes.
///
/// The time runs from the first bytes read here to the last, the window a
/// perfkit receiver's own figure covers (its first message to its last):
/// starting and ending the two processes (2 to 8 ms of a 12 to 20 ms try
/// on a 2-vCPU machine) is left out of both, so the ratio compares moving
/// bytes with moving bytes. A file that arrives in one read has no such
/// window; then the whole run, spawn to exit, counts.
pub fn cat_through_pipe(file: &Path) -> anyhow::Result<Cat> {
    let start = Instant::now();
    let mut first = Command::new("cat")
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cat")?;
    let pipe = first.stdout.take().context("cat has no stdout")?;
    let mut second = Command::new("cat")
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cat")?;
    let mut out = second.stdout.take().context("cat has no stdout")?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    let mut window: Option<(Instant, Instant)> = None;
    loop {
        let n = out.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let now = Instant::now();
        window = Some((window.map_or(now, |(f, _)| f), now));
        total += n as u64;
    }
    // Both reaped before either error is reported: no zombie is left.
    let (a, b) = (reap(first), reap(second));
    let (a, b) = (a?, b?);
    let whole = start.elapsed();
    let expected = std::fs::metadata(file)?.len();
    if !(a.status.success() && b.status.success()) || total != expected {
        bail!("cat moved {total} of {expected} bytes");
    }
    Ok(Cat {
        secs: moving_secs(window, whole),
        cpu_ns: a.cpu_ns + b.cpu_ns,
    })
}

/// The first-to-last-read window, or `whole` when it is empty (one read).
fn moving_secs(window: Option<(Instant, Instant)>, whole: std::time::Duration) -> f64 {
    match window.map(|(f, l)| l - f) {
        Some(d) if !d.is_zero() => d.as_secs_f64(),
        _ => whole.as_secs_f64(),
    }
}

/// Throughput `iperf3` measures from this host to `server` (an IP on this
/// machine or in a network namespace here), in bytes per second of payload
/// received, over `seconds`: over TCP, or with `udp_len` over UDP in
/// datagrams of that many bytes sent as fast as they go (`-b 0`; what the
/// receiver got counts, what was lost does not). `in_server_ns` runs the
/// server there (`ip netns exec NAME`). The same path and machine as the
/// transfer it stands beside, measured in the same run.
pub fn iperf3(
    server: &str,
    in_server_ns: Option<&str>,
    seconds: u32,
    udp_len: Option<usize>,
) -> anyhow::Result<f64> {
    let mut srv = match in_server_ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "iperf3"]);
            c
        }
        None => Command::new("iperf3"),
    };
    // A port of its own, so runs beside each other do not collide.
    let port = 20_000 + (std::process::id() % 20_000);
    let mut srv = srv
        .args(["-s", "-B", server, "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run iperf3 (Debian package iperf3)")?;
    // The server needs a moment to listen: retry until a client run reports.
    let mut result = Err(anyhow::anyhow!("iperf3 could not reach its server"));
    for _ in 0..50 {
        let o = Command::new("iperf3")
            .args([
                "-c",
                server,
                "-p",
                &port.to_string(),
                "-t",
                &seconds.to_string(),
                "-J",
            ])
            .args(match udp_len {
                Some(n) => vec![
                    "-u".to_owned(),
                    "-b".into(),
                    "0".into(),
                    "-l".into(),
                    n.to_string(),
                ],
                None => vec![],
            })
            .output()
            .context("cannot run iperf3")?;
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if let Some(b) = j["end"]["sum_received"]["bits_per_second"].as_f64() {
            result = Ok(b / 8.0);
            break;
        }
        if let Some(e) = j["error"].as_str() {
            result = Err(anyhow::anyhow!("iperf3: {e}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = srv.kill();
    let _ = srv.wait();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cat_moves_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, vec![7u8; 300_000]).unwrap();
        let one = cat_through_pipe(&p).unwrap();
        assert!(one.secs > 0.0 && one.cpu_ns > 0, "{one:?}");
        assert!(cat_through_pipe(&dir.path().join("missing")).is_err());
        let best = cat_fastest(&p).unwrap();
        assert!(best.secs > 0.0 && best.cpu_ns > 0, "{best:?}");
    }

    #[test]
    fn cat_is_timed_from_first_to_last_byte() {
        let t0 = Instant::now();
        let ms = std::time::Duration::from_millis;
        let whole = ms(20);
        // Bytes from 5 ms to 17 ms of a 20 ms try: 12 ms of moving bytes.
        let w = Some((t0 + ms(5), t0 + ms(17)));
        assert!((moving_secs(w, whole) - 0.012).abs() < 1e-9);
        // One read, or none: the whole try.
        assert_eq!(moving_secs(Some((t0, t0)), whole), 0.020);
        assert_eq!(moving_secs(None, whole), 0.020);
    }

    #[test]
    fn the_least_time_and_cpu_count_apart_and_an_error_ends_the_tries() {
        let cat = |secs, cpu_ns| Cat { secs, cpu_ns };
        let mut tries = [cat(0.030, 9_000), cat(0.012, 14_000), cat(0.020, 11_000)].into_iter();
        let best = least_of(3, || Ok(tries.next().unwrap())).unwrap();
        assert_eq!(best, cat(0.012, 9_000));
        let mut n = 0;
        let r = least_of(3, || {
            n += 1;
            if n == 2 {
                bail!("cat moved 1 of 2 bytes")
            }
            Ok(cat(1.0, 1))
        });
        assert!(r.is_err());
        assert_eq!(n, 2);
    }

    #[test]
    fn iperf3_measures_udp_datagrams_of_a_given_size() {
        if Command::new("iperf3").arg("--version").output().is_err() {
            crate::errln!("skipped: iperf3 is not installed (scripts/setup.d/10-debian.sh)");
            return;
        }
        let bps = iperf3("127.0.0.1", None, 1, Some(256)).unwrap();
        assert!(bps > 0.0, "{bps}");
    }
}
