//! `perfkit run --measure instructions`: counts repeat exactly, and the
//! exact gate catches a deliberate change of a few percent in one stage
//! while every other count stays put. Needs valgrind (scripts/setup.d).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_perfkit")
}

/// A small transfer (callgrind runs about 50 times slower than native).
const SCENARIO: &str = r#"
name = "instructions-test"
runs = 1
[link]
kind = "loopback"
mtu = 256
[transfer]
block_size = 50
repeats = 0
input_size = 16384
"#;

fn have_valgrind() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the scenario counted, with `--set`s, into `out`; its `instr.*` metrics.
fn counted(dir: &Path, out: &str, sets: &[&str]) -> BTreeMap<String, f64> {
    let scenario = dir.join("s.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let mut cmd = Command::new(exe());
    cmd.current_dir(dir)
        .args(["run", "s.toml", "--quiet", "--no-report", "--measure"])
        .arg("instructions")
        .args(["--out", out]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(out).join("results.json")).unwrap())
            .unwrap();
    let m: BTreeMap<String, f64> = serde_json::from_value(v["runs"][0]["metrics"].clone()).unwrap();
    m.into_iter()
        .filter(|(k, _)| k.starts_with("instr."))
        .collect()
}

fn gate(dir: &Path, base: &str, current: &str) -> (i32, String) {
    let o = Command::new(exe())
        .current_dir(dir)
        .args(["gate", "--baseline"])
        .arg(format!("{base}/results.json"))
        .arg(format!("{current}/results.json"))
        .args(["--threshold", "metrics.instr.*=0.5"])
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[test]
fn counts_repeat_exactly_and_the_exact_gate_catches_extra_work_in_one_stage() {
    if !have_valgrind() {
        eprintln!("skipped: valgrind is not installed (scripts/setup.d/10-debian.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = counted(dir.path(), "a", &[]);
    let b = counted(dir.path(), "b", &[]);
    // Every stage of both sides is attributed.
    for site in [
        "sender::read_block",
        "sender::add_header",
        "wire::crc16",
        "receiver::parse",
        "receiver::crc_check",
        "receiver::store",
        "receiver::sha256",
    ] {
        let k = format!("instr.{site}.per_call");
        assert!(a.get(&k).is_some_and(|v| *v > 0.0), "{k} missing: {a:?}");
    }
    assert!(a["instr.tx.total"] > 0.0 && a["instr.rx.total"] > 0.0);
    // Two runs: identical counts.
    assert_eq!(a, b, "two runs counted differently");
    let (code, text) = gate(dir.path(), "a", "b");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("counted:"), "{text}");

    // One round of the knob adds a few percent to sender::read_block (5 %
    // in the release build at 50-byte blocks, more in this unoptimised
    // one) and nothing anywhere else.
    let c = counted(dir.path(), "c", &["extra_work_per_packet=1"]);
    let moved: Vec<&String> = a.keys().filter(|k| a[*k] != c[*k]).collect();
    assert_eq!(
        moved,
        [
            "instr.sender::read_block.per_byte",
            "instr.sender::read_block.per_call",
            "instr.tx.per_byte",
            "instr.tx.total",
        ],
        "{a:?}\n{c:?}"
    );
    let grew = c["instr.sender::read_block.per_call"] / a["instr.sender::read_block.per_call"];
    eprintln!(
        "sender::read_block: {} -> {} instructions per call ({:+.1} %)",
        a["instr.sender::read_block.per_call"],
        c["instr.sender::read_block.per_call"],
        (grew - 1.0) * 100.0
    );
    assert!(grew > 1.005 && grew < 1.3, "{grew}");
    let (code, text) = gate(dir.path(), "a", "c");
    assert_eq!(code, 1, "{text}");
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("REGRESSION"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // The stage fails; the sending side's total fails too only where the
    // stage's growth is beyond 0.5 % of it (the unoptimised build).
    assert!(
        failed.contains(&"metrics.instr.sender::read_block.per_call"),
        "{text}"
    );
    for f in &failed {
        assert!(
            moved
                .iter()
                .any(|m| f.strip_prefix("metrics.") == Some(m.as_str())),
            "{f} failed but did not move:\n{text}"
        );
    }
}

#[test]
fn counting_is_refused_up_front_where_counts_would_not_repeat() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        SCENARIO.replace("kind = \"loopback\"\nmtu = 256", "kind = \"pipe\""),
    )
    .unwrap();
    for args in [
        &["run", "p.toml", "--measure", "instructions"][..],
        &["run", "p.toml", "--set", "measure=instructions"][..],
    ] {
        let o = Command::new(exe())
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("transfer.measure"), "{err}");
    }
    let o = Command::new(exe())
        .current_dir(dir.path())
        .args(["run", "p.toml", "--measure", "cycles"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--measure"));
}
