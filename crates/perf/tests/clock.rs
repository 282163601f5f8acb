//! The default clock: the CPU counter where trustworthy, the monotonic clock
//! when forced with `PERFKIT_CLOCK=monotonic` (checked in a child process,
//! since the choice is made once per process).
#![cfg(not(feature = "off"))]

use std::process::Command;

#[test]
fn default_clock_measures_real_time() {
    let name = perfkit::clock::clock_name();
    if std::env::var_os("PERFKIT_CLOCK").is_none() {
        #[cfg(target_arch = "x86_64")]
        {
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            let invariant = cpuinfo.contains("constant_tsc") && cpuinfo.contains("nonstop_tsc");
            assert_eq!(name == "tsc", invariant, "clock {name}");
        }
    }
    // 20 ms of sleep measure as 20 ms or a little more, whatever the clock.
    perfkit::measure!(
        "clock.sleep",
        std::thread::sleep(std::time::Duration::from_millis(20))
    );
    let snap = perfkit::snapshot();
    let s = snap.site("clock.sleep").unwrap();
    assert!(s.cum_ns >= 19_000_000, "{name}: {s:?}");
    assert!(s.cum_ns < 2_000_000_000, "{name}: {s:?}");
}

#[test]
fn monotonic_clock_when_forced() {
    if std::env::var_os("PERFKIT_CLOCK").is_some() {
        assert_eq!(perfkit::clock::clock_name(), "monotonic");
        assert_eq!(perfkit::ticks_per_second(), 1_000_000_000);
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "--test-threads=1",
            "default_clock_measures_real_time",
            "monotonic_clock_when_forced",
        ])
        .env("PERFKIT_CLOCK", "monotonic")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 passed"), "{stdout}");
}
