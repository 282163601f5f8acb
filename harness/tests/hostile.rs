//! Hostile input and concurrent use of the real `perfkit` binary: each test
//! reproduces a way it was once broken.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::perfkit_in as perfkit;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `perfkit recv` with `args`, in `dir`, fed through a pipe held here.
fn spawn_recv(dir: &Path, args: &[&OsStr]) -> std::process::Child {
    Command::new(common::exe())
        .arg("recv")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The wire bytes `perfkit send --quiet ARGS fixtures/test35k.jpg` writes.
fn fixture_stream(args: &[&str]) -> Vec<u8> {
    Command::new(common::exe())
        .args(["send", "--quiet"])
        .args(args)
        .arg(common::root().join("fixtures/test35k.jpg"))
        .output()
        .unwrap()
        .stdout
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// A scenario of in-process loopback runs of about a second each (a small
/// input, throttled), long enough for a second process to meet the first.
fn loopback(dir: &Path, name: &str, runs: u32) -> String {
    std::fs::write(dir.join("input.bin"), [7u8; 1000]).unwrap();
    let text = format!(
        "name = \"{name}\"\ninput = \"input.bin\"\nruns = {runs}\n\n\
         [link]\nkind = \"loopback\"\n\n[transfer]\nthrottle_pps = 100\n"
    );
    let file = format!("{name}.toml");
    std::fs::write(dir.join(&file), text).unwrap();
    file
}

fn runs_in(results: &Path) -> usize {
    let text = std::fs::read_to_string(results).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["runs"].as_array().unwrap().len()
}

/// Waits until `path` exists (the first run's first record is written).
fn wait_for(path: &Path) {
    let t = Instant::now();
    while !path.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `perfkit run SCENARIO --out out` and waits for its first record.
fn start_run(dir: &Path, scenario: &str, stderr: Stdio) -> std::process::Child {
    let child = common::signals_default(&mut Command::new(common::exe()))
        .args(["run", scenario, "--quiet", "--no-report", "--out", "out"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    wait_for(&dir.join("out/results.json"));
    child
}

#[test]
fn a_second_run_into_a_busy_output_folder_is_refused_and_loses_nothing() {
    let d = tempfile::tempdir().unwrap();
    let long = loopback(d.path(), "long", 3);
    let out = d.path().join("out");
    let mut first = start_run(d.path(), &long, Stdio::null());
    for extra in [&[][..], &["--append"][..]] {
        let mut args = vec!["run", &long, "--quiet", "--no-report", "--out", "out"];
        args.extend(extra);
        let o = perfkit(d.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("is in use by another `perfkit run`"),
            "{}",
            stderr(&o)
        );
    }
    let still_running = first.try_wait().unwrap().is_none();
    assert!(first.wait().unwrap().success());
    assert_eq!(runs_in(&out.join("results.json")), 3);
    assert!(
        still_running,
        "the first run ended before the second started"
    );
    // Once the first run is over the folder is free again.
    let o = perfkit(
        d.path(),
        &[
            "run",
            &long,
            "--quiet",
            "--no-report",
            "--out",
            "out",
            "--repeat",
            "1",
            "--append",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(runs_in(&out.join("results.json")), 4);
}

#[test]
fn a_killed_run_frees_its_folder_and_its_leftovers_are_cleared() {
    let d = tempfile::tempdir().unwrap();
    let long = loopback(d.path(), "long", 3);
    let out = d.path().join("out");
    let mut first = start_run(d.path(), &long, Stdio::null());
    first.kill().unwrap();
    first.wait().unwrap();
    // What a kill between creating and renaming a temporary file leaves.
    let stale = out.join(format!("{}Ab12Cd", perfkit_report::model::TEMP_PREFIX));
    std::fs::write(&stale, "{\"schema_ver").unwrap();
    let short = loopback(d.path(), "short", 1);
    let o = perfkit(
        d.path(),
        &["run", &short, "--quiet", "--no-report", "--out", "out"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stale.exists());
    assert!(
        stderr(&o).contains("removed 1 unfinished temporary file(s)"),
        "{}",
        stderr(&o)
    );
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp") || n.starts_with(perfkit_report::model::TEMP_PREFIX))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn lost_data_exits_4_unless_the_scenario_expects_loss() {
    let d = tempfile::tempdir().unwrap();
    let shipped =
        std::fs::read_to_string(common::root().join("scenarios/uart-unthrottled.toml")).unwrap();
    let input = common::root().join("fixtures/test35k.jpg");
    let plain: String = shipped
        .lines()
        .filter(|l| !l.starts_with("expect") && !l.starts_with("input"))
        .map(|l| format!("{l}\n"))
        .collect();
    let plain = format!("input = {:?}\n{plain}", input.display().to_string());
    std::fs::write(d.path().join("lossy.toml"), &plain).unwrap();
    let o = perfkit(
        d.path(),
        &["run", "lossy.toml", "--quiet", "--no-report", "--out", "a"],
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("lost or corrupted data"),
        "{}",
        stderr(&o)
    );
    std::fs::write(
        d.path().join("lossy.toml"),
        format!("expect = \"loss\"\n{plain}"),
    )
    .unwrap();
    let o = perfkit(
        d.path(),
        &["run", "lossy.toml", "--quiet", "--no-report", "--out", "b"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.path().join("b/results.json")).unwrap();
    assert!(text.contains("\"expect\": \"loss\""));
    std::fs::write(
        d.path().join("lossy.toml"),
        format!("expect = \"some\"\n{plain}"),
    )
    .unwrap();
    let o = perfkit(d.path(), &["check", "lossy.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("lossy.toml:1:10: key `expect`: `some` is not one of intact, loss"),
        "{}",
        stderr(&o)
    );
}

fn list(from: u32, n: u32) -> String {
    let v: Vec<String> = (from..from + n).map(|i| i.to_string()).collect();
    format!("[{}]", v.join(","))
}

#[test]
fn sweeps_too_large_to_count_are_refused_without_building_them() {
    let d = tempfile::tempdir().unwrap();
    // 256^8 = 2^64 configurations: a product that wraps to 0 in a usize.
    let mut text = String::from("name = \"huge\"\n[sweep]\n");
    for (key, from) in [
        ("start_meta", 0),
        ("meta_every", 1),
        ("seed", 0),
        ("slowdown_ns_per_packet", 0),
        ("input_size", 0),
        ("mtu", 8),
        ("chunk", 1),
        ("baud", 300),
    ] {
        text.push_str(&format!("{key} = {}\n", list(from, 256)));
    }
    std::fs::write(d.path().join("huge.toml"), text).unwrap();
    let o = perfkit(d.path(), &["check", "huge.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("key `sweep`: more than"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("too many (at most 100000)"),
        "{}",
        stderr(&o)
    );
    // `--set` sweeps meet the same cap and the same duplicate check.
    std::fs::write(d.path().join("small.toml"), "name = \"small\"\n").unwrap();
    for (set, says) in [
        (
            vec![
                "--set",
                &*format!("seed={}", list(0, 400)),
                "--set",
                &*format!("mtu={}", list(8, 400)),
            ],
            "--set mtu: 160000 configurations: too many",
        ),
        (vec!["--set", "seed=[1,2,1]"], "--set seed: 1 appears twice"),
    ] {
        let mut args = vec!["run", "small.toml", "--out", "x"];
        args.extend(set.iter().map(|s| &**s));
        let o = perfkit(d.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
}

#[test]
fn scenario_names_that_are_not_safe_folder_names_are_refused() {
    let d = tempfile::tempdir().unwrap();
    for (name, says) in [
        ("../../../tmp/x", "is not a safe folder name"),
        ("", "must not be empty"),
        ("..", "is not a safe folder name"),
        ("a/b", "is not a safe folder name"),
    ] {
        std::fs::write(d.path().join("s.toml"), format!("\nname = {name:?}\n")).unwrap();
        for cmd in ["check", "run"] {
            let o = perfkit(d.path(), &[cmd, "s.toml"]);
            assert_eq!(o.status.code(), Some(2), "{name:?}: {}", stderr(&o));
            let e = stderr(&o);
            assert!(
                e.contains("s.toml:2:8: key `name`: ") && e.contains(says),
                "{name:?}: {e}"
            );
        }
    }
    assert!(!d.path().join("reports").exists());
    let image = common::root().join("fixtures/test35k.jpg");
    let text = format!(
        "name = \"ok-name_1.2\"\ninput = {:?}\n",
        image.display().to_string()
    );
    std::fs::write(d.path().join("s.toml"), text).unwrap();
    assert_eq!(
        perfkit(d.path(), &["check", "s.toml"]).status.code(),
        Some(0)
    );
}

#[test]
fn every_numeric_flag_refuses_extreme_values_with_exit_2() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("in.bin"), [1u8; 100]).unwrap();
    let extremes = [
        "inf",
        "-inf",
        "nan",
        "1e300",
        "-1",
        "-0.5",
        "18446744073709551615",
        "99999999999999999999999",
    ];
    let flags: [(&str, &str); 12] = [
        ("send", "--block-size"),
        ("send", "--start-meta"),
        ("send", "--meta-every"),
        ("send", "--repeats"),
        ("send", "--throttle-pps"),
        ("send", "--slowdown-ns"),
        ("send", "--timeout-s"),
        ("send", "--channel"),
        ("recv", "--timeout-s"),
        ("recv", "--idle-s"),
        ("recv", "--chunk"),
        ("recv", "--channel"),
    ];
    for (cmd, flag) in flags {
        for v in extremes {
            let target = if cmd == "send" { "in.bin" } else { "out.bin" };
            let o = Command::new(common::exe())
                .args([cmd, target, &format!("{flag}={v}"), "--quiet"])
                .current_dir(d.path())
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let e = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {flag} {v}: {e}");
            assert!(
                e.contains(flag) && !e.contains("panicked"),
                "{cmd} {flag} {v}: {e}"
            );
        }
    }
    let o = perfkit(
        d.path(),
        &["run", "x.toml", "--repeat", "18446744073709551615"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // Serial speeds take the same care.
    let o = perfkit(
        d.path(),
        &["send", "in.bin", "--serial", "/dev/null", "--baud", "0"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn values_every_run_would_refuse_fail_check_and_run_up_front() {
    let d = tempfile::tempdir().unwrap();
    let image = common::root().join("fixtures/test35k.jpg");
    let input = format!("input = {:?}\n", image.display().to_string());
    for (text, says) in [
        (
            format!("{input}[transfer]\nmeta_every = 1\n"),
            "s.toml:3:1: key `transfer.meta_every`: 1 makes every tick",
        ),
        (
            format!("{input}[link]\nkind = \"loopback\"\nmtu = 40\n"),
            "s.toml:4:1: key `link.mtu`: 40 is below the largest message",
        ),
        (
            format!("{input}[sweep]\nmtu = [256, 40]\n"),
            "s.toml:3:1: key `link.mtu`: 40 is below",
        ),
        (
            "input = \"no-such-file.bin\"\n".to_owned(),
            "s.toml:1:1: key `input`: ",
        ),
        // Never read: a device or a folder is not a file to send.
        (
            "input = \"/dev/zero\"\n".to_owned(),
            "s.toml:1:1: key `input`: /dev/zero is not a regular file",
        ),
        ("input = \".\"\n".to_owned(), "s.toml:1:1: key `input`: . is a folder"),
        (
            format!("{input}[transfer]\nstart_meta = 0\nmeta_every = 0\n"),
            "s.toml:4:1: key `transfer.meta_every`: 0 with start_meta 0 sends no META",
        ),
        // Checked across keys, yet placed at the key's line: a dotted key
        // at the top, and a key under its table.
        (
            format!("{input}hosts.receiver = \"agent://\"\n"),
            "s.toml:2:1: key `hosts.receiver`: `agent://`: expected",
        ),
        (
            format!("{input}[link]\nkind = \"tcp\"\nlisten = \"nonsense\"\n"),
            "s.toml:4:1: key `link.listen`: `nonsense`: invalid socket address",
        ),
        // 0.3 would round to 0, unthrottled.
        (
            format!("{input}[transfer]\nthrottle_pps = 0.3\n"),
            "s.toml:3:1: key `transfer.throttle_pps`: must be a whole number",
        ),
        (
            format!("{input}[gate]\n\"rx.bsp\" = 5\n"),
            "s.toml:3:1: key `gate.rx.bsp`: unknown metric `rx.bsp`",
        ),
        (
            "[transfer]\ninput_size = 5000000\nblock_size = 50\n".to_owned(),
            "s.toml:2:1: key `transfer.input_size`: 5000000 bytes is more than",
        ),
        (
            "kind = \"heaps\"\n[heaps]\nheap_size = 67108865\n".to_owned(),
            "s.toml:3:1: key `heaps.heap_size`: heap size 67108865 must be between 1 and 67108864",
        ),
        (
            format!("kind = \"pico\"\n{input}[pico]\nelf = \"no-such.elf\"\n"),
            "s.toml:4:1: key `pico.elf`: ",
        ),
        (
            format!("{input}[link]\nkind = \"uart\"\nprofile = \"no-such-profile\"\n"),
            "s.toml:4:1: key `link.profile`: ",
        ),
        (
            format!("{input}[link]\nkind = \"pipe\"\nreceiver_cmd = [\"no-such-program-7q\"]\n"),
            "s.toml:4:1: key `link.receiver_cmd`: program `no-such-program-7q` is not found on PATH",
        ),
        (
            format!("{input}[link]\nkind = \"pipe\"\nsender_cmd = [\"./no/such.py\", \"{{input}}\"]\n"),
            "s.toml:4:1: key `link.sender_cmd`: program `./no/such.py` is not an executable file",
        ),
    ] {
        std::fs::write(d.path().join("s.toml"), &text).unwrap();
        for cmd in ["check", "run"] {
            let args = &[cmd, "s.toml", "--out", "x"][..if cmd == "run" { 4 } else { 2 }];
            // The firmware's runner is found; the ELF named is not.
            let o = Command::new(common::exe())
                .args(args)
                .env("PERFKIT_ROOT", common::root())
                .current_dir(d.path())
                .output()
                .unwrap();
            let e = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {text}: {e}");
            assert!(e.contains(says), "{cmd} {text}: {e}");
        }
        assert!(!d.path().join("x").exists(), "{text}: nothing runs");
    }
}

#[test]
fn messages_say_what_is_known_once() {
    let d = tempfile::tempdir().unwrap();
    // No META ever arrived: nothing is known about missing blocks.
    let mut rx = spawn_recv(d.path(), &["out.bin".as_ref(), "--quiet".as_ref()]);
    use std::io::Write;
    rx.stdin
        .take()
        .unwrap()
        .write_all(b"no frames here\xff\x01\x02")
        .unwrap();
    let o = rx.wait_with_output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(
        e.contains("no META arrived") && !e.contains("0 block(s) missing"),
        "{e}"
    );
    // An OS error is printed once.
    let o = perfkit(d.path(), &["report", "no-such.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).matches("(os error 2)").count(),
        1,
        "{}",
        stderr(&o)
    );
    let o = perfkit(d.path(), &["recv", "--serial", "/dev/no-such-tty", "x.bin"]);
    assert_eq!(
        stderr(&o).matches("No such file or directory").count(),
        1,
        "{}",
        stderr(&o)
    );
    // recv does not make the folder it is told to write into.
    let o = perfkit(d.path(), &["recv", "no/such/dir/out.bin"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the folder no/such/dir does not exist"),
        "{}",
        stderr(&o)
    );
    assert!(!d.path().join("no").exists());
}

#[test]
fn an_interrupted_run_is_not_counted_as_completed() {
    let d = tempfile::tempdir().unwrap();
    let long = loopback(d.path(), "long", 5);
    let out = d.path().join("out");
    let child = start_run(d.path(), &long, Stdio::piped());
    // Into the second run (a second each): interrupt it mid-run.
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let runs = v["runs"].as_array().unwrap();
    let done = runs.iter().filter(|r| r["error"].is_null()).count();
    assert!(
        done < runs.len(),
        "the interrupted run is recorded with its error: {text}"
    );
    assert!(
        e.contains(&format!("interrupted; {done} completed run(s) kept")),
        "{e}"
    );
}

#[test]
fn printing_commands_end_quietly_when_the_reader_has_gone() {
    use std::os::unix::process::ExitStatusExt;
    let d = tempfile::tempdir().unwrap();
    let scenario = common::root().join("scenarios/uart-sweep.toml");
    let scenario = scenario.to_str().unwrap();
    for args in [&["check", scenario][..], &["params"], &["list"]] {
        let o = Command::new(common::exe())
            .args(args)
            .current_dir(d.path())
            .stdout(closed_pipe())
            .output()
            .unwrap();
        let e = stderr(&o);
        assert!(!e.contains("panicked"), "{args:?}: {e}");
        assert_eq!(o.status.signal(), Some(libc::SIGPIPE), "{args:?}: {e}");
    }
}

/// A pipe whose reading end is closed before the command writes:
/// `perfkit ... | head` once head has exited.
fn closed_pipe() -> std::fs::File {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // Close-on-exec: a child another test starts meanwhile must not keep
    // the reading end open, or the writes this pipe is for would succeed.
    // SAFETY: pipe2(2) fills both descriptors, each owned once below.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors from pipe(2), not used elsewhere.
    let (read, write) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    drop(read);
    write
}

#[test]
fn a_run_whose_reader_has_gone_finishes_and_keeps_its_results() {
    // `perfkit run ... | head`: the console goes, the run and its files stay.
    let d = tempfile::tempdir().unwrap();
    let scenario = common::root().join("scenarios/loopback.toml");
    let o = Command::new(common::exe())
        .arg("run")
        .arg(&scenario)
        .args(["--runs", "1", "--out"])
        .arg(d.path().join("out"))
        .current_dir(common::root())
        .stdout(closed_pipe())
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("going on without console output"), "{e}");
    let results = std::fs::read_to_string(d.path().join("out/results.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&results).unwrap();
    // Both block sizes and both repeat counts: every configuration ran.
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(4), "{results}");
    assert!(d.path().join("out/report.html").exists());
}

/// Runs `perfkit ARGS` in `dir` with a stdin that stays open, and fails the
/// test if it is still running after 20 s.
fn within_20s(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(common::exe())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stdin_open = child.stdin.take();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("perfkit {args:?} still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn devices_fifos_and_folders_are_refused_without_reading_them() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("waits.toml");
    mkfifo(&fifo);
    for (args, says) in [
        (
            &["check", "/dev/zero"][..],
            "is a character device, not a regular file",
        ),
        (&["check", "waits.toml"], "is a FIFO, not a regular file"),
        (
            &["compare", "/dev/zero", "/dev/zero"],
            "/dev/zero: is a character device",
        ),
        (
            &["gate", "--baseline", "/dev/zero", "/dev/zero"],
            "is a character device",
        ),
        (
            &["history", "import", "/dev/zero", "--db", "h.db"],
            "is a character device",
        ),
        (
            &["send", "/dev/zero"],
            "cannot read /dev/zero: is a character device",
        ),
        (
            &[
                "agent",
                "--token-file",
                "/dev/zero",
                "--listen",
                "127.0.0.1:0",
            ],
            "agent token from /dev/zero: is a character device",
        ),
        // Before a byte is received: a folder cannot be the output.
        (&["recv", "."], ".: is a folder"),
    ] {
        let o = within_20s(d.path(), args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(says), "{args:?}: {e}");
    }
    // A FIFO among the scenarios is listed as unreadable, not waited on.
    let o = within_20s(d.path(), &["list", "."]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.contains("is a FIFO, not a regular file"), "{out}");
}

#[test]
fn recv_writes_through_a_link_and_into_a_fifo_without_replacing_them() {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let d = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(d.path().join("data.bin"), &data).unwrap();
    // `perfkit send data.bin | perfkit recv OUT`: whether both succeeded.
    let send_recv = |out: &str| {
        let mut tx = Command::new(common::exe())
            .args(["send", "data.bin", "--quiet"])
            .current_dir(d.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = Command::new(common::exe())
            .args(["recv", out, "--quiet"])
            .current_dir(d.path())
            .stdin(tx.stdout.take().unwrap())
            .status()
            .unwrap();
        tx.wait().unwrap().success() && rx.success()
    };
    std::os::unix::fs::symlink("kept.bin", d.path().join("link.bin")).unwrap();
    assert!(send_recv("link.bin"));
    let link = std::fs::symlink_metadata(d.path().join("link.bin")).unwrap();
    assert!(link.is_symlink(), "the link stays a link");
    assert_eq!(std::fs::read(d.path().join("kept.bin")).unwrap(), data);

    let fifo = d.path().join("out.fifo");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut f = std::fs::File::open(fifo).unwrap();
            f.read_to_end(&mut got).unwrap();
            got
        })
    };
    assert!(send_recv("out.fifo"));
    // Checked before joining: a FIFO renamed over would leave the reader
    // waiting for a writer that never comes.
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO stays a FIFO");
    assert_eq!(
        reader.join().unwrap(),
        data,
        "the FIFO's reader gets the file"
    );
}

/// Processes whose command line mentions `needle`, other than this test.
fn processes_naming(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) && e.file_name() != std::process::id().to_string().as_str() {
            found.push(format!("{}: {text}", e.file_name().to_string_lossy()));
        }
    }
    found
}

#[test]
fn sigterm_stops_a_pipe_run_with_its_children_and_temporary_folders() {
    let d = tempfile::tempdir().unwrap();
    let tmp = d.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // One run of a few seconds: 20 KB at 1,000 blocks a second.
    std::fs::write(d.path().join("input.bin"), [7u8; 20_000]).unwrap();
    std::fs::write(
        d.path().join("slow.toml"),
        "name = \"slow\"\ninput = \"input.bin\"\nruns = 3\nwarmup = 0\n\n\
         [link]\nkind = \"pipe\"\n\n[transfer]\nblock_size = 50\nthrottle_pps = 1000\n",
    )
    .unwrap();
    let child = common::signals_default(&mut Command::new(common::exe()))
        .args(["run", "slow.toml", "--quiet", "--no-report", "--out", "out"])
        .current_dir(d.path())
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until the pipe's two ends are running (their files are in TMPDIR).
    let needle = tmp.to_str().unwrap();
    let t = Instant::now();
    while processes_naming(needle).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the sender never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(e.contains("interrupted; 0 completed run(s) kept"), "{e}");
    let left = processes_naming(needle);
    assert!(left.is_empty(), "children outlived the run: {left:?}");
    let tmp_left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
    assert!(tmp_left.is_empty(), "temporary files left: {tmp_left:?}");
}

#[test]
fn a_receiver_that_goes_once_it_has_the_file_ends_the_send_without_failing_it() {
    // Throttled with repeats: the receiver has the file with the last
    // block's first copy, 150 ms before the sender has sent its repeats
    // (15 at 100 per second), and closes the pipe. (With 3 repeats, 30 ms,
    // a receiver slowed by a busy machine sometimes exited after the
    // sender had written everything.)
    let d = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..2_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(d.path().join("data.bin"), &data).unwrap();
    let mut tx = Command::new(common::exe())
        .args(["send", "data.bin", "--block-size", "200", "--repeats", "15"])
        .args(["--throttle-pps", "100"])
        .current_dir(d.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = Command::new(common::exe())
        .args(["recv", "out.bin", "--quiet"])
        .current_dir(d.path())
        .stdin(tx.stdout.take().unwrap())
        .output()
        .unwrap();
    let tx = tx.wait_with_output().unwrap();
    let e = stderr(&tx);
    assert!(rx.status.success(), "{}", stderr(&rx));
    assert_eq!(std::fs::read(d.path().join("out.bin")).unwrap(), data);
    assert_eq!(tx.status.code(), Some(0), "{e}");
    assert!(e.contains("once META and every block were"), "{e}");

    // A reader gone before anything was written, with a file that fits in
    // one write: nothing arrived, so the send fails.
    let o = Command::new(common::exe())
        .args(["send", "data.bin", "--repeats", "0", "--quiet"])
        .current_dir(d.path())
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("(0 bytes written)"), "{}", stderr(&o));

    // One that goes before the file is whole fails the send (exit 3).
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(d.path().join("big.bin"), &big).unwrap();
    let mut tx = Command::new(common::exe())
        .args(["send", "big.bin", "--block-size", "50"])
        .current_dir(d.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Reads 1,000 bytes and goes: `perfkit send big.bin | head -c 1000`.
    let mut out = tx.stdout.take().unwrap();
    let mut first = [0u8; 1000];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    drop(out);
    let tx = tx.wait_with_output().unwrap();
    let e = stderr(&tx);
    assert_eq!(tx.status.code(), Some(3), "{e}");
    assert!(
        e.contains("the receiver closed the link before the whole file was written"),
        "{e}"
    );
}

#[test]
fn send_and_recv_finish_when_their_stderr_is_closed() {
    let d = tempfile::tempdir().unwrap();
    let data = vec![5u8; 30_000];
    std::fs::write(d.path().join("data.bin"), &data).unwrap();
    let mut tx = Command::new(common::exe())
        .args(["send", "data.bin"])
        .current_dir(d.path())
        .stdout(Stdio::piped())
        .stderr(closed_pipe())
        .spawn()
        .unwrap();
    let rx = Command::new(common::exe())
        .args(["recv", "out.bin"])
        .current_dir(d.path())
        .stdin(tx.stdout.take().unwrap())
        .stderr(closed_pipe())
        .status()
        .unwrap();
    // Both print their stats to stderr, which fails: no panic (101).
    assert_eq!(tx.wait().unwrap().code(), Some(0));
    assert_eq!(rx.code(), Some(0));
    assert_eq!(std::fs::read(d.path().join("out.bin")).unwrap(), data);
}

#[test]
fn sigterm_stops_what_an_external_end_started_and_an_ignored_sighup_stays_ignored() {
    use std::os::unix::process::CommandExt;
    let d = tempfile::tempdir().unwrap();
    // The receiver is a shell whose own child sleeps: killing the shell
    // alone would leave the sleep running.
    std::fs::write(
        d.path().join("ext.toml"),
        "name = \"ext\"\nruns = 2\nwarmup = 0\n[link]\nkind = \"pipe\"\n\
         receiver_cmd = [\"sh\", \"-c\", \"sleep 37.25; cat > {output}\"]\n\
         [transfer]\ninput_size = 20000\n",
    )
    .unwrap();
    let mut cmd = Command::new(common::exe());
    common::signals_default(&mut cmd);
    // No pipes to the test: waiting for their end would wait for whatever
    // still holds them, and hide a sleep left running.
    cmd.args(["run", "ext.toml", "--quiet", "--no-report", "--out", "out"])
        .current_dir(d.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // As `nohup` starts it.
    // SAFETY: signal(2) between fork and exec, async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    let t = Instant::now();
    while processes_naming("sleep 37.25").len() < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the receiver never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id() as libc::pid_t;
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap()
                .contains(") Z "),
        "an ignored SIGHUP stopped the run"
    );
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut child = child;
    assert_eq!(child.wait().unwrap().code(), Some(3));
    let left = processes_naming("sleep 37.25");
    assert!(left.is_empty(), "outlived the run: {left:?}");
}

#[test]
fn dev_stdout_is_the_open_stdout_a_pipe_or_a_file_appended_to() {
    let d = tempfile::tempdir().unwrap();
    let results = common::root().join("fixtures/baselines/uart-sweep.json");
    let results = results.to_str().unwrap();
    // A pipe: the report arrives on it.
    let o = Command::new(common::exe())
        .args(["report", results, "-o", "/dev/stdout"])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = String::from_utf8_lossy(&o.stdout);
    assert!(html.contains("<html"));
    // Only the report: where it went is said on stderr.
    assert!(
        html.trim_end().ends_with("</html>"),
        "{}",
        &html[html.len() - 80..]
    );
    assert!(stderr(&o).contains("report: /dev/stdout"), "{}", stderr(&o));
    // `>> log`: appended to, not replaced.
    let log = d.path().join("log.txt");
    std::fs::write(&log, "kept\n").unwrap();
    let out = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let status = Command::new(common::exe())
        .args(["report", results, "-o", "/dev/stdout"])
        .current_dir(d.path())
        .stdout(out)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("kept\n") && text.contains("<html"),
        "{}",
        &text[..40]
    );
}

#[test]
fn dev_stdout_is_refused_when_stdout_was_closed_not_swallowed() {
    // `>&-` closes stdout; Rust's runtime puts a read-write /dev/null in its
    // place, and writing the report or the received file there reported
    // success with the bytes gone. A stdout discarded on purpose (`>
    // /dev/null`, or the read-write /dev/null `subprocess.DEVNULL` hands a
    // child, here `1<>/dev/null`) still works, as does any other name for it.
    let d = tempfile::tempdir().unwrap();
    let results = common::root().join("fixtures/baselines/uart-sweep.json");
    let exe = common::exe();
    let run = |to: &str, redirect: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("exec \"$0\" report \"$1\" -o {to} {redirect}"))
            .arg(exe)
            .arg(&results)
            .current_dir(d.path())
            .output()
            .unwrap()
    };
    // A link to /dev/null is a link to /dev/null, whatever stands in for
    // the closed stdout.
    std::os::unix::fs::symlink("/dev/null", d.path().join("null")).unwrap();
    let o = run("null", ">&-");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for to in [
        "/dev/stdout",
        "/dev//stdout",
        "/dev/fd/1",
        "/proc/thread-self/fd/1",
    ] {
        let o = run(to, ">&-");
        assert_eq!(o.status.code(), Some(2), "{to}: {}", stderr(&o));
        assert!(stderr(&o).contains("stdout was closed"), "{}", stderr(&o));
        for open in [">/dev/null", "1<>/dev/null"] {
            let o = run(to, open);
            assert_eq!(o.status.code(), Some(0), "{to} {open}: {}", stderr(&o));
        }
    }
    // `recv` refuses before receiving anything, for its output and for its
    // `--stats-json`: the sender finds the link closed and fails too, rather
    // than both ending "complete".
    let fixture = common::root().join("fixtures/test35k.jpg");
    for recv in ["/dev/stdout", "out.jpg --stats-json /dev/stdout"] {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "\"$0\" send --quiet \"$1\" | \"$0\" recv --quiet {recv} >&-"
            ))
            .arg(exe)
            .arg(&fixture)
            .current_dir(d.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{recv}: {}", stderr(&o));
        assert!(stderr(&o).contains("stdout was closed"), "{}", stderr(&o));
        assert!(!d.path().join("out.jpg").exists());
    }
}

#[test]
fn send_to_a_closed_stdout_and_recv_from_a_closed_stdin_are_refused() {
    // With stdout closed (`>&-`) the runtime's /dev/null stood in for the
    // link: `send` threw every byte away and exited 0. A discarded stdout
    // (`>/dev/null`) is the caller's choice and still sends.
    let d = tempfile::tempdir().unwrap();
    let fixture = common::root().join("fixtures/test35k.jpg");
    let sh = |script: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(common::exe())
            .arg(&fixture)
            .current_dir(d.path())
            .output()
            .unwrap()
    };
    let o = sh("exec \"$0\" send --quiet \"$1\" >&-");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("stdout was closed"), "{}", stderr(&o));
    let o = sh("exec \"$0\" send --quiet \"$1\" >/dev/null");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = sh("exec \"$0\" recv --quiet out.jpg <&-");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("stdin was closed"), "{}", stderr(&o));
    // --stats-json into a folder that is not there: refused, nothing made.
    let o =
        sh("\"$0\" send --quiet \"$1\" | \"$0\" recv --quiet --stats-json nothere/x.json out.jpg");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert!(!d.path().join("nothere").exists());
    assert!(!d.path().join("out.jpg").exists());
}

#[test]
fn recv_stops_on_sigterm_and_leaves_nothing_in_the_output_folder() {
    // SIGTERM killed `recv` wherever it was; in the middle of writing OUT
    // that left a temporary file beside it. It now stops at its next step,
    // writes nothing and exits 3.
    let d = tempfile::tempdir().unwrap();
    let stream = fixture_stream(&[]);
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut rx = spawn_recv(d.path(), &["--quiet".as_ref(), "out/x.jpg".as_ref()]);
    let mut stdin = rx.stdin.take().unwrap();
    use std::io::Write;
    stdin.write_all(&stream[..stream.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(rx.id() as libc::pid_t, libc::SIGTERM) };
    let o = rx.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `child`'s exit status once it ends, or `None` if it is still running
/// after `within`.
fn ended_within(child: &mut std::process::Child, within: Duration) -> Option<ExitStatus> {
    let t = Instant::now();
    while t.elapsed() < within {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Runs `cmd` and fails the test if it is still running after `limit`;
/// its exit status and how long it took.
fn timed(cmd: &mut Command, limit: Duration) -> (Output, Duration) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > limit {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: {}", stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = t.elapsed();
    (child.wait_with_output().unwrap(), took)
}

#[test]
fn a_send_whose_reader_stalls_gives_up_at_the_run_s_time_out() {
    // `perfkit send --timeout-s 2 big 3> >(sleep 50) >/dev/fd/3`: a reader
    // that holds the pipe and reads nothing. The write waited its own 30 s
    // time-out; the run's 2 s were checked only between writes.
    let d = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(d.path().join("big.bin"), &big).unwrap();
    let mut cmd = Command::new(common::exe());
    cmd.args(["send", "--timeout-s", "2", "--quiet", "big.bin"])
        .current_dir(d.path())
        .stdout(Stdio::piped());
    let (o, took) = timed(&mut cmd, Duration::from_secs(25));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(e.contains("gave up after 2.0 s (timeout_s)"), "{e}");
    assert!(took < Duration::from_secs(15), "{took:?}: {e}");
}

/// A pseudo-terminal whose slave is the device a test names, and whose
/// master it holds without reading: a serial line nobody drains.
struct Pty {
    _master: std::fs::File,
    slave: String,
}

impl Pty {
    fn open() -> Pty {
        use std::os::fd::FromRawFd;
        // SAFETY: posix_openpt and friends on a descriptor checked before use;
        // ptsname_r writes into the buffer it is given.
        unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
            let master = std::fs::File::from_raw_fd(m);
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
            let slave = std::ffi::CStr::from_ptr(name.as_ptr())
                .to_string_lossy()
                .into_owned();
            Pty {
                _master: master,
                slave,
            }
        }
    }
}

#[test]
fn a_serial_send_nobody_drains_gives_up_at_its_time_out() {
    // A blocking write of 64 KiB to a device with a little room never
    // returned: neither the write's time-out nor the run's fired.
    let d = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(d.path().join("big.bin"), &big).unwrap();
    let pty = Pty::open();
    let mut cmd = Command::new(common::exe());
    cmd.args([
        "send",
        "--serial",
        &pty.slave,
        "--timeout-s",
        "3",
        "--quiet",
        "big.bin",
    ])
    .current_dir(d.path())
    .stdout(Stdio::null());
    let (o, took) = timed(&mut cmd, Duration::from_secs(25));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(e.contains("gave up after 3.0 s (timeout_s)"), "{e}");
    assert!(took < Duration::from_secs(15), "{took:?}: {e}");
}

#[test]
fn a_missing_agent_token_fails_the_run_up_front_not_check() {
    // Found only by the run, it failed every run (exit 3, "see `error` in
    // results.json") with a record of runs that never started. `check` (a
    // lint step without the secret) does not ask for it.
    let d = tempfile::tempdir().unwrap();
    let base = "[link]\nkind = \"tcp\"\n[transfer]\ninput_size = 1000\n\
                [hosts]\nreceiver = \"agent://127.0.0.1:9\"\n";
    for (text, says) in [
        (
            base.to_owned(),
            [
                "s.toml: key `hosts.token_file`: no agent token",
                "PERFKIT_AGENT_TOKEN",
            ],
        ),
        (
            format!("{base}token_file = \"no-such-token\"\n"),
            ["s.toml:7:1: key `hosts.token_file`", "no-such-token"],
        ),
    ] {
        std::fs::write(d.path().join("s.toml"), &text).unwrap();
        for cmd in ["check", "run"] {
            let args = &[cmd, "s.toml", "--out", "x"][..if cmd == "run" { 4 } else { 2 }];
            let o = Command::new(common::exe())
                .args(args)
                .env_remove("PERFKIT_AGENT_TOKEN")
                .current_dir(d.path())
                .output()
                .unwrap();
            let e = stderr(&o);
            if cmd == "check" {
                assert!(o.status.success(), "{cmd} {text}: {e}");
                continue;
            }
            assert_eq!(o.status.code(), Some(2), "{cmd} {text}: {e}");
            for s in says {
                assert!(e.contains(s), "{cmd} {text}: {e}");
            }
        }
        assert!(!d.path().join("x").exists(), "{text}: nothing runs");
    }
    // The variable is a token too: the run gets past the check (and fails
    // on the agent nobody serves at port 9).
    std::fs::write(d.path().join("s.toml"), base).unwrap();
    let o = Command::new(common::exe())
        .args(["run", "s.toml", "--out", "y"])
        .env("PERFKIT_AGENT_TOKEN", "0123456789abcdef0123")
        .current_dir(d.path())
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains("token_file"), "{}", stderr(&o));
}

#[test]
fn recv_blocked_writing_into_a_fifo_nobody_reads_still_ends_on_sigterm() {
    // Written into directly, the output may block on another process (a
    // FIFO nobody opens): the interrupt flag is not polled there, so a
    // signal ends perfkit again, as it did before recv handled signals.
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("ff");
    mkfifo(&fifo);
    let stream = fixture_stream(&["--repeats", "0"]);
    let mut rx = spawn_recv(d.path(), &["--quiet".as_ref(), fifo.as_os_str()]);
    {
        use std::io::Write;
        let mut stdin = rx.stdin.take().unwrap();
        stdin.write_all(&stream).unwrap();
    }
    // The file is whole; recv now waits in open(2) for a reader.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        rx.try_wait().unwrap().is_none(),
        "recv should wait for a reader"
    );
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(rx.id() as libc::pid_t, libc::SIGTERM) };
    let status = ended_within(&mut rx, Duration::from_secs(10)).expect("recv ignored SIGTERM");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}

#[test]
fn send_from_a_fifo_nobody_writes_gives_up_at_its_time_out() {
    // `perfkit send FIFO` waited in open(2) for a writer that never came,
    // whatever --timeout-s said.
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("in.fifo");
    mkfifo(&fifo);
    let send = |timeout: &str| {
        let mut cmd = Command::new(common::exe());
        cmd.args(["send", "--timeout-s", timeout, "--quiet", "in.fifo"])
            .current_dir(d.path())
            .stdout(Stdio::null());
        cmd
    };
    let gives_up = |held: &str| {
        let (o, took) = timed(&mut send("1"), Duration::from_secs(20));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{held}: {e}");
        assert!(
            e.contains("cannot read in.fifo") && e.contains("gave up after 1.0 s (timeout_s)"),
            "{held}: {e}"
        );
        assert!(took < Duration::from_secs(10), "{held}: {took:?}: {e}");
    };
    gives_up("no writer");
    // A writer that holds the FIFO open and writes nothing is waited on
    // as long, no longer (read-write: it never waits for a reader).
    let writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    gives_up("a silent writer");
    drop(writer);
}

#[test]
fn send_from_a_fifo_takes_a_writer_that_comes_in_time_and_a_signal_ends_the_wait() {
    let d = tempfile::tempdir().unwrap();
    // Named as the fixture, so META and every frame are the fixture's.
    let fifo = d.path().join("test35k.jpg");
    mkfifo(&fifo);
    let data = std::fs::read(common::root().join("fixtures/test35k.jpg")).unwrap();
    let writer = {
        let (fifo, data) = (fifo.clone(), data.clone());
        std::thread::spawn(move || {
            // After the sender has looked: it must keep waiting, not take
            // the empty FIFO for an empty file.
            std::thread::sleep(Duration::from_millis(300));
            use std::io::Write;
            let mut w = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            w.write_all(&data).unwrap();
        })
    };
    let o = Command::new(common::exe())
        .args(["send", "--timeout-s", "20", "--quiet", "test35k.jpg"])
        .current_dir(d.path())
        .output()
        .unwrap();
    writer.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, fixture_stream(&[]), "the FIFO's bytes are sent");
    // SIGTERM (or Ctrl-C) while no writer has come ends the wait at once.
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut tx = common::signals_default(&mut Command::new(common::exe()))
            .args(["send", "--quiet", "test35k.jpg"])
            .current_dir(d.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(tx.try_wait().unwrap().is_none(), "send should wait");
        // SAFETY: signalling a child this test started.
        unsafe { libc::kill(tx.id() as libc::pid_t, signal) };
        let status = ended_within(&mut tx, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("send ignored signal {signal}"));
        assert!(!status.success(), "{status:?}");
    }
}

#[test]
fn recv_without_meta_names_a_framing_or_channel_mismatch_only_when_bytes_came() {
    // "no META arrived" was all it said, whether the link carried nothing
    // or a whole file framed or addressed otherwise than this end expects.
    let d = tempfile::tempdir().unwrap();
    let recv = |args: &[&str], input: &[u8]| {
        let mut all: Vec<&OsStr> = vec!["--quiet".as_ref(), "out.jpg".as_ref()];
        all.extend(args.iter().map(OsStr::new));
        let mut rx = spawn_recv(d.path(), &all);
        {
            use std::io::Write;
            let mut stdin = rx.stdin.take().unwrap();
            // recv reads to the end of its input whatever it makes of it.
            stdin.write_all(input).unwrap();
        }
        let o = rx.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert!(!d.path().join("out.jpg").exists());
        stderr(&o)
    };
    let dttk = fixture_stream(&[]);
    let e = recv(&["--framing", "cobs"], &dttk);
    assert!(
        e.contains("no META arrived")
            && e.contains("no message decoded")
            && e.contains("--framing (this end: cobs)")
            && e.contains("--channel (this end: 0)"),
        "{e}"
    );
    let e = recv(&["--channel", "5"], &dttk);
    assert!(
        e.contains("no META arrived")
            && e.contains("2845 messages arrived, none on channel 5")
            && e.contains("--channel"),
        "{e}"
    );
    assert!(!e.contains("--framing"), "{e}");
    let e = recv(&[], b"");
    assert!(
        e.contains("no META arrived: nothing arrived (0 bytes)"),
        "{e}"
    );
    assert!(!e.contains("--framing") && !e.contains("--channel"), "{e}");
    // Messages of this framing and channel, the META among them lost: no
    // mismatch to suggest.
    let one_meta = fixture_stream(&["--start-meta", "1", "--meta-every", "0"]);
    let after_meta = 2 + one_meta[1..].iter().position(|&b| b == 0xFF).unwrap();
    let e = recv(&[], &one_meta[after_meta..]);
    assert!(e.contains("no META arrived, so the file's size"), "{e}");
    assert!(!e.contains("--framing") && !e.contains("--channel"), "{e}");
}

/// Whether `strace` runs here (installed, and tracing allowed).
fn strace_runs() -> bool {
    Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn recv_writes_its_output_as_one_look_found_it() {
    // recv looked at OUT to decide whether a signal may end the write
    // (written into, a FIFO may wait for a reader for ever), then the
    // write looked again. A FIFO that appeared in between was written into
    // with signals still caught: recv waited for a reader and ignored
    // SIGTERM. strace makes the look after the transfer find nothing,
    // while a FIFO is there all along; that one look must decide.
    // scripts/setup.d/10-debian.sh installs strace.
    assert!(strace_runs(), "strace cannot run here: run scripts/test.sh");
    use std::io::Write;
    let d = tempfile::tempdir().unwrap();
    let stream = fixture_stream(&["--repeats", "0"]);
    let out = d.path().join("out.jpg");
    mkfifo(&out);
    // Which of recv's statx calls are that look: in a run whose FIFO is
    // read, the 1st and 2nd lookups of OUT are the check before receiving
    // (lstat, then stat), the 3rd and 4th the look after it.
    let reader = {
        let out = out.clone();
        std::thread::spawn(move || std::fs::read(out).unwrap())
    };
    let mut rx = Command::new("strace")
        .args(["-qq", "-o", "calls.log", "-e", "trace=statx"])
        .args([common::exe(), "recv", "--quiet", "out.jpg"])
        .current_dir(d.path())
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    rx.stdin.take().unwrap().write_all(&stream).unwrap();
    assert!(rx.wait().unwrap().success());
    let data = std::fs::read(common::root().join("fixtures/test35k.jpg")).unwrap();
    assert_eq!(reader.join().unwrap(), data);
    let calls = std::fs::read_to_string(d.path().join("calls.log")).unwrap();
    let of_out: Vec<usize> = calls
        .lines()
        .filter(|l| l.starts_with("statx("))
        .enumerate()
        .filter(|(_, l)| l.contains("\"out.jpg\""))
        .map(|(i, _)| i + 1)
        .collect();
    assert!(of_out.len() >= 4, "{calls}");
    let look = format!(
        "inject=statx:error=ENOENT:when={}..{}",
        of_out[2], of_out[3]
    );
    // -D: the process started here is recv itself, for the signal.
    let mut rx = common::signals_default(&mut Command::new("strace"))
        .args([
            "-D",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=statx",
            "-e",
            &look,
        ])
        .args([common::exe(), "recv", "--quiet", "out.jpg"])
        .current_dir(d.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    rx.stdin.take().unwrap().write_all(&stream).unwrap();
    let status = match ended_within(&mut rx, Duration::from_secs(10)) {
        Some(s) => s,
        None => {
            // SAFETY: signalling a child this test started.
            unsafe { libc::kill(rx.id() as libc::pid_t, libc::SIGTERM) };
            let after = ended_within(&mut rx, Duration::from_secs(5));
            if after.is_none() {
                rx.kill().unwrap();
            }
            let o = rx.wait_with_output().unwrap();
            panic!(
                "recv waited on the FIFO the look did not find{}: {}",
                if after.is_none() {
                    ", ignoring SIGTERM"
                } else {
                    ""
                },
                stderr(&o)
            );
        }
    };
    let o = rx.wait_with_output().unwrap();
    assert!(status.success(), "{status:?}: {}", stderr(&o));
    // Nothing was there, so a file was put there: the FIFO is replaced.
    assert!(std::fs::symlink_metadata(&out).unwrap().is_file());
    assert_eq!(std::fs::read(&out).unwrap(), data);
}
