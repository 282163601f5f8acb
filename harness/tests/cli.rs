//! Runs the real `perfkit` binary in temporary folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (scenarios and fixtures live there).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A temporary folder to run the binary in.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn perfkit(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_perfkit"))
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn unknown_key_exits_2_naming_file_line_and_key() {
    let d = Dir::new();
    d.write(
        "bad.toml",
        "name = \"x\"\n\n[transfer]\nblock_size = 50\nblok_size = 50\n",
    );
    for cmd in ["check", "run"] {
        let o = d.perfkit(&[cmd, "bad.toml"]);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("bad.toml:5:1: key `transfer.blok_size`: unknown key"),
            "{cmd}: {e}"
        );
    }
}

#[test]
fn wrong_type_exits_2_with_expected_type() {
    let d = Dir::new();
    d.write("bad.toml", "[transfer]\nthrottle_pps = \"fast\"\n");
    let o = d.perfkit(&["run", "bad.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("bad.toml:2:16: key `transfer.throttle_pps`"),
        "{e}"
    );
    assert!(e.contains("expected a number"), "{e}");
}

#[test]
fn missing_scenario_file_exits_2() {
    let d = Dir::new();
    let o = d.perfkit(&["run", "nowhere.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("nowhere.toml: cannot read scenario"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_input_file_is_bad_input_naming_the_key() {
    let d = Dir::new();
    d.write(
        "s.toml",
        "input = \"no-such.jpg\"\n[link]\nkind = \"loopback\"\n",
    );
    let o = d.perfkit(&["run", "s.toml", "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("s.toml:1:1: key `input`: input no-such.jpg not found"));
    assert!(!d.path().join("reports").exists(), "nothing runs");
}

#[test]
fn bad_set_and_runs_exit_2() {
    let d = Dir::new();
    d.write("s.toml", "[link]\nkind = \"loopback\"\n");
    let o = d.perfkit(&["run", "s.toml", "--set", "block_size=999"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--set block_size: 999 is out of range"),
        "{}",
        stderr(&o)
    );
    for (n, said) in [
        ("0", "not 0"),
        ("10001", "not 10001"),
        ("4000000000", "not 4000000000"),
    ] {
        let o = d.perfkit(&["run", "s.toml", "--runs", n]);
        assert_eq!(o.status.code(), Some(2));
        let e = stderr(&o);
        assert!(
            e.contains("--runs must be 1 to 10000") && e.contains(said),
            "{e}"
        );
    }
    let o = d.perfkit(&["run", "s.toml", "--warmup", "10001"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--warmup must be 0 to 10000, not 10001"),
        "{}",
        stderr(&o)
    );
    let o = d.perfkit(&["run", "s.toml", "--bogus-flag"]);
    assert_eq!(o.status.code(), Some(2), "clap usage errors are exit 2");
    // A value the file holds fine but --set replaced: the flag is blamed,
    // not the file's line.
    d.write(
        "t.toml",
        "[link]\nkind = \"loopback\"\n[transfer]\nthrottle_pps = 40\n",
    );
    let o = d.perfkit(&["run", "t.toml", "--set", "throttle_pps=0.5"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("t.toml: key `transfer.throttle_pps`: ")
            && e.contains("(the value given by --set throttle_pps)"),
        "{e}"
    );
}

#[test]
fn check_accepts_every_shipped_scenario() {
    let d = Dir::new();
    let dir = root().join("scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    let args: Vec<&str> = std::iter::once("check")
        .chain(files.iter().map(String::as_str))
        .collect();
    let o = d.perfkit(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().filter(|l| l.contains(": ok")).count(),
        files.len()
    );
}

#[test]
fn list_shows_descriptions() {
    let d = Dir::new();
    let o = d.perfkit(&["list", root().join("scenarios").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("uart-throttled.toml"), "{out}");
    assert!(out.contains("throttled to 40 packets/s"), "{out}");
}

#[test]
fn help_has_examples() {
    let d = Dir::new();
    let o = d.perfkit(&["run", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("perfkit run scenarios/uart-throttled.toml"));
    let o = d.perfkit(&["params"]);
    assert!(stdout(&o).contains("throttle_pps"));
}

/// Runs a small deterministic scenario into `dir/name/` and returns the results path.
fn uart_results(d: &Dir, name: &str, extra: &[&str]) -> PathBuf {
    let scenario = root().join("scenarios/uart-throttled.toml");
    let out = d.path().join(name);
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = d.perfkit(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        out.join("report.html").exists(),
        "run writes report.html by default"
    );
    out.join("results.json")
}

#[test]
fn report_compare_and_gate_exit_codes() {
    let d = Dir::new();
    let a = uart_results(&d, "a", &[]);
    let b = uart_results(&d, "b", &[]);
    let slow = uart_results(&d, "slow", &["--set", "throttle_pps=30"]);
    let (a, b, slow) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        slow.to_str().unwrap(),
    );

    let o = d.perfkit(&["report", a, b, "-o", "r.html"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(d.path().join("r.html")).unwrap();
    assert!(html.contains("<svg"), "charts are inline SVG");

    let o = d.perfkit(&["compare", a, b, "-o", "c.html"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(d.path().join("c.html").exists());
    // Virtual time: every figure compares exactly, and the table says so.
    assert!(stdout(&o).contains("  method  "), "{}", stdout(&o));
    assert!(stdout(&o).contains(" exact "), "{}", stdout(&o));

    // Same deterministic model: no change.
    let o = d.perfkit(&[
        "gate",
        "--baseline",
        a,
        b,
        "--threshold",
        "rx.bps=1",
        "--summary-md",
        "s.md",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(std::fs::read_to_string(d.path().join("s.md"))
        .unwrap()
        .contains('|'));
    // A slower throttle is a different (regressed) configuration: the gate
    // refuses to compare different configurations (exit 2)...
    let o = d.perfkit(&["gate", "--baseline", a, slow, "--threshold", "rx.bps=1"]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    // ...while the same configuration with a changed figure fails it (exit 1).
    let text = std::fs::read_to_string(b).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let bps = v["runs"][0]["rx"]["bps"].as_f64().unwrap();
    let edited = text.replacen(
        &format!("\"bps\": {}", v["runs"][0]["rx"]["bps"]),
        &format!("\"bps\": {}", bps * 0.8),
        1,
    );
    assert_ne!(edited, text);
    std::fs::write(d.path().join("worse.json"), edited).unwrap();
    let o = d.perfkit(&[
        "gate",
        "--baseline",
        a,
        "worse.json",
        "--threshold",
        "rx.bps=1",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    // A summary path that cannot take the file (a folder) is refused before
    // judging (exit 2), not after a verdict it would hide.
    std::fs::create_dir(d.path().join("adir")).unwrap();
    let o = d.perfkit(&[
        "gate",
        "--baseline",
        a,
        "worse.json",
        "--threshold",
        "rx.bps=1",
        "--summary-md",
        "adir",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(!stdout(&o).contains("REGRESSION"), "{}", stdout(&o));
    assert!(stderr(&o).contains("adir"), "{}", stderr(&o));

    // --update-baseline writes the current results over the baseline.
    std::fs::copy(a, d.path().join("base.json")).unwrap();
    let o = d.perfkit(&[
        "gate",
        "--baseline",
        "base.json",
        "worse.json",
        "--threshold",
        "rx.bps=1",
        "--update-baseline",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let o = d.perfkit(&[
        "gate",
        "--baseline",
        "base.json",
        "worse.json",
        "--threshold",
        "rx.bps=1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// `perfkit compare` on two wall-clock results whose runs alternate in time
/// compares them pair by pair, as the gate does, and says so; the same runs
/// without start times are two independent samples.
#[test]
fn compare_pairs_runs_interleaved_in_time() {
    let d = Dir::new();
    let one = uart_results(&d, "one", &[]);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(one).unwrap()).unwrap();
    // Three wall-clock runs per side, round k of side s starting at 2k + s.
    let side = |s: u32, timed: bool| {
        let mut f = v.clone();
        let runs: Vec<serde_json::Value> = (0..3u32)
            .map(|k| {
                let mut r = v["runs"][0].clone();
                r["repeat"] = k.into();
                r["time_base"] = "real".into();
                r["started_unix_s"] = if timed {
                    (1.79e9 + f64::from(2 * k + s)).into()
                } else {
                    serde_json::Value::Null
                };
                let bps = r["rx"]["bps"].as_f64().unwrap();
                r["rx"]["bps"] =
                    (bps * (1.0 + 0.1 * f64::from(k)) * (1.0 - 0.05 * f64::from(s))).into();
                r
            })
            .collect();
        f["runs"] = runs.into();
        serde_json::to_string_pretty(&f).unwrap()
    };
    d.write("base.json", &side(0, true));
    d.write("cand.json", &side(1, true));
    let o = d.perfkit(&["compare", "base.json", "cand.json", "-o", "c.html"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let row = stdout(&o)
        .lines()
        .find(|l| l.contains("rx.bps"))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(row.contains("paired, 3 pairs"), "{}", stdout(&o));
    // Every pair is 5 % slower: the paired change is exactly that.
    assert!(row.contains("-5.0 %  [-5.0 %, -5.0 %]"), "{row}");
    let html = std::fs::read_to_string(d.path().join("c.html")).unwrap();
    assert!(html.contains(">paired, 3 pairs<"));

    d.write("base.json", &side(0, false));
    d.write("cand.json", &side(1, false));
    let o = d.perfkit(&["compare", "base.json", "cand.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("unpaired, 3/3 runs"), "{}", stdout(&o));
}

/// `perfkit compare` with an input none of whose runs completed refuses
/// (exit 2, as the gate does), naming the input and its first error, and
/// writes no report; a stage only one side has is listed, not dropped.
#[test]
fn compare_refuses_failed_inputs_and_lists_one_sided_stages() {
    let d = Dir::new();
    let good = uart_results(&d, "good", &[]);
    let good = good.to_str().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(good).unwrap()).unwrap();
    let mut failed = v.clone();
    for r in failed["runs"].as_array_mut().unwrap() {
        r["error"] = "link: the peer went away".into();
    }
    d.write(
        "failed.json",
        &serde_json::to_string_pretty(&failed).unwrap(),
    );
    let o = d.perfkit(&["compare", good, "failed.json", "-o", "c.html"]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains(
            "every run failed in failed.json (first error: link: the peer went away), \
             so there is nothing to compare"
        ),
        "{}",
        stderr(&o)
    );
    assert!(!d.path().join("c.html").exists());

    let mut renamed = v.clone();
    let mut old = String::new();
    for r in renamed["runs"].as_array_mut().unwrap() {
        let site = &mut r["stages"]["sites"][0]["name"];
        old = site.as_str().unwrap().to_owned();
        *site = "renamed::stage".into();
    }
    d.write(
        "renamed.json",
        &serde_json::to_string_pretty(&renamed).unwrap(),
    );
    let o = d.perfkit(&["compare", good, "renamed.json", "-o", "c.html"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "only in good: stage.{old}.p99_ns (not in renamed;"
        )) && out.contains("only in renamed: stage.renamed::stage.p99_ns (not in good;"),
        "{out}"
    );
    let html = std::fs::read_to_string(d.path().join("c.html")).unwrap();
    assert!(html.contains("Only in renamed: stage.renamed::stage.p99_ns"));
}

#[test]
fn bad_results_files_exit_2_naming_the_file() {
    let d = Dir::new();
    let good = uart_results(&d, "g", &[]);
    let text = std::fs::read_to_string(&good).unwrap();
    d.write("cut.json", &text[..text.len() / 3]);
    d.write(
        "newer.json",
        &text.replacen("\"schema_version\": 1", "\"schema_version\": 7", 1),
    );
    for (file, want) in [
        ("cut.json", "cut.json:"),
        ("newer.json", "upgrade perfkit"),
        ("absent.json", "absent.json"),
    ] {
        let o = d.perfkit(&["report", file]);
        assert_eq!(o.status.code(), Some(2), "{file}");
        assert!(stderr(&o).contains(want), "{file}: {}", stderr(&o));
    }
    let o = d.perfkit(&["gate", "--baseline", "absent.json", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--update-baseline"),
        "says how to make a baseline: {}",
        stderr(&o)
    );
}

#[test]
fn send_refuses_a_file_the_wire_profile_cannot_describe() {
    let d = Dir::new();
    std::fs::write(d.path().join("big.bin"), vec![0u8; 70_000]).unwrap();
    // 1-byte blocks: u16 block numbers reach 65,535 bytes.
    let o = d.perfkit(&["send", "big.bin", "--block-size", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("at most 65535 bytes with 1-byte blocks"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty(), "nothing goes on the wire");
}

#[test]
fn append_adds_runs_and_refuses_unlike_ones() {
    let d = Dir::new();
    d.write(
        "lb.toml",
        "name = \"lb\"\nruns = 1\nwarmup = 0\n[link]\nkind = \"loopback\"\n\
         [transfer]\ninput_size = 20000\n[sweep]\nblock_size = [50, 249]\n",
    );
    let repeats = |d: &Dir| -> Vec<(u64, u64)> {
        out_runs(d)
            .iter()
            .map(|r| (r.config_id, r.repeat))
            .collect()
    };
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "lb.toml", "--quiet", "--no-report", "--out", "out"];
        a.extend_from_slice(extra);
        d.perfkit(&a)
    };
    // --append on a folder with no results starts a new file.
    let o = run(&["--append"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&["--append", "--runs", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut got = repeats(&d);
    got.sort();
    assert_eq!(got, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
    // Each invocation's plan is kept, in order: what the file alone does
    // not say about how its runs were made.
    let o = run(&[
        "--append",
        "--order",
        "configs",
        "--warmup",
        "1",
        "--set",
        "block_size=[50,249]",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.path().join("out/results.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let plans: Vec<String> = v["meta"]["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        plans,
        [
            r#"{"order":"rounds","runs":1,"warmup":0}"#,
            r#"{"order":"rounds","runs":2,"warmup":0}"#,
            r#"{"order":"configs","runs":1,"set":["block_size=[50,249]"],"warmup":1}"#,
        ]
    );
    // A file from before plans were kept: the runs appended to it are not
    // passed off as all of them.
    let path = d.path().join("out/results.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["meta"].as_object_mut().unwrap().remove("plans");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let o = run(&["--append"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        v["meta"]["plans"].to_string(),
        r#"[null,{"order":"rounds","runs":1,"warmup":0}]"#
    );

    // Other parameters, another sweep or another scenario file: refused, file kept.
    let before = std::fs::read(d.path().join("out/results.json")).unwrap();
    for extra in [
        &["--append", "--set", "input_size=30000"][..],
        &["--append", "--set", "block_size=50"][..],
    ] {
        let o = run(extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("--append"), "{}", stderr(&o));
    }
    d.write(
        "lb.toml",
        "name = \"lb\"\nruns = 1\nwarmup = 0\n[link]\nkind = \"loopback\"\n\
         [transfer]\ninput_size = 20001\n[sweep]\nblock_size = [50, 249]\n",
    );
    let o = run(&["--append"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not of this file"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(d.path().join("out/results.json")).unwrap(),
        before
    );
    // Without --append the file is replaced.
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(repeats(&d).len(), 2);
}

/// A record of `out/results.json` as these tests read it.
struct OutRun {
    config_id: u64,
    repeat: u64,
    started: f64,
}

/// The records of `out/results.json` under `d`, in the file's order.
fn out_runs(d: &Dir) -> Vec<OutRun> {
    let text = std::fs::read_to_string(d.path().join("out/results.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| OutRun {
            config_id: r["config_id"].as_u64().unwrap(),
            repeat: r["repeat"].as_u64().unwrap(),
            started: r["started_unix_s"].as_f64().unwrap(),
        })
        .collect()
}

/// By default (and with `order = "rounds"` or `--order rounds`) a run makes
/// one run of every configuration per round, in the file's records as on
/// the clock; `order = "configs"` or `--order configs` makes every run of
/// one configuration first.
#[test]
fn rounds_alternate_the_configurations() {
    let d = Dir::new();
    let scenario = |order: &str| {
        format!(
            "name = \"lb\"\nruns = 2\nwarmup = 0\n{order}[link]\nkind = \"loopback\"\n\
             [transfer]\ninput_size = 20000\n[sweep]\nblock_size = [50, 100, 249]\n"
        )
    };
    // (config, run) in the order the runs started.
    let order_of = |d: &Dir| -> Vec<(u64, u64)> {
        let mut runs = out_runs(d);
        let in_file: Vec<(u64, u64)> = runs.iter().map(|r| (r.config_id, r.repeat)).collect();
        runs.sort_by(|a, b| a.started.total_cmp(&b.started));
        let started: Vec<(u64, u64)> = runs.iter().map(|r| (r.config_id, r.repeat)).collect();
        assert_eq!(in_file, started, "records are kept in the order they ran");
        in_file
    };
    let rounds = [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)];
    let configs = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)];
    for (file_order, flag, want) in [
        ("order = \"configs\"\n", None, &configs),
        ("", None, &rounds),
        ("", Some("configs"), &configs),
        ("order = \"configs\"\n", Some("rounds"), &rounds),
    ] {
        d.write("lb.toml", &scenario(file_order));
        // `perfkit check` says the file's order.
        let o = d.perfkit(&["check", "lb.toml"]);
        let said = stdout(&o);
        assert!(said.contains("3 configuration(s) x 2 run(s)"), "{said}");
        let phrase = if file_order.is_empty() {
            ", in rounds)"
        } else {
            ", configuration by configuration)"
        };
        assert!(said.contains(phrase), "{said}");
        let mut a = vec!["run", "lb.toml", "--quiet", "--no-report", "--out", "out"];
        if let Some(f) = flag {
            a.extend(["--order", f]);
        }
        let o = d.perfkit(&a);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(&order_of(&d), want, "{file_order:?} {flag:?}");
        // The summary has one row per configuration, whatever the order.
        let said = stdout(&o);
        let rows: Vec<&str> = said
            .lines()
            .skip_while(|l| !l.starts_with("#  block_size"))
            .skip(1)
            .take_while(|l| !l.starts_with("rates"))
            .collect();
        let ids: Vec<&str> = rows
            .iter()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(ids, ["0", "1", "2"], "{said}");
    }
    let o = d.perfkit(&["run", "lb.toml", "--order", "random", "--out", "out"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("rounds, configs"), "{}", stderr(&o));
    // A file whose run numbers leave no room to number more after is
    // refused by --append, not wrapped round.
    let path = d.path().join("out/results.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["runs"][0]["repeat"] = serde_json::json!(u32::MAX - 1);
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    let before = std::fs::read(&path).unwrap();
    let o = d.perfkit(&["run", "lb.toml", "--append", "--quiet", "--out", "out"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("too high"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// The number of runs is `--runs` wherever a person reads it; `repeats` is
/// the transfer parameter and never names it. `--repeat` is still accepted.
#[test]
fn the_run_count_is_runs_not_repeats() {
    let d = Dir::new();
    let o = d.perfkit(&["run", "--help"]);
    let help = stdout(&o);
    assert!(help.contains("--runs <N>"), "{help}");
    assert!(!help.contains("repeat"), "{help}");
    d.write(
        "lb.toml",
        "name = \"lb\"\nwarmup = 0\n[link]\nkind = \"loopback\"\n[transfer]\ninput_size = 2000\n",
    );
    for flag in ["--runs", "--repeat"] {
        let o = d.perfkit(&[
            "run",
            "lb.toml",
            flag,
            "2",
            "--quiet",
            "--no-report",
            "--out",
            "o",
        ]);
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", stderr(&o));
        let text = std::fs::read_to_string(d.path().join("o/results.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["runs"].as_array().unwrap().len(), 2, "{flag}");
    }
}

/// `--warmup N` overrides the scenario's `warmup`: the warm-up runs go
/// first, on the first configuration, and are not recorded.
#[test]
fn warmup_runs_are_set_on_the_command_line() {
    let d = Dir::new();
    d.write(
        "lb.toml",
        "name = \"lb\"\nwarmup = 0\n[link]\nkind = \"loopback\"\n[transfer]\ninput_size = 2000\n",
    );
    let o = d.perfkit(&[
        "run",
        "lb.toml",
        "--warmup",
        "3",
        "--runs",
        "1",
        "--no-report",
        "--out",
        "o",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("after 3 warm-up run(s)"), "{e}");
    let text = std::fs::read_to_string(d.path().join("o/results.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
}

/// `--update-baseline` with no baseline yet creates it (folders included)
/// instead of failing on the missing file; later gates judge against it.
#[test]
fn update_baseline_creates_a_missing_baseline() {
    let d = Dir::new();
    let a = uart_results(&d, "a", &[]);
    let a = a.to_str().unwrap();
    let o = d.perfkit(&["gate", "--baseline", "new/base.json", a]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--update-baseline"), "{}", stderr(&o));
    let o = d.perfkit(&[
        "gate",
        "--baseline",
        "new/base.json",
        a,
        "--update-baseline",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("baseline created"), "{}", stdout(&o));
    let o = d.perfkit(&[
        "gate",
        "--baseline",
        "new/base.json",
        a,
        "--threshold",
        "rx.bps=1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

/// A git repository in `d` with one commit; returns the commit.
fn git_repo(d: &Dir) -> String {
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(d.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    git(&["init", "-q"]);
    d.write("README", "x\n");
    git(&["add", "README"]);
    git(&["commit", "-q", "-m", "one"]);
    git(&["rev-parse", "HEAD"])
}

/// `gate --against`: a revision that is not there, or that cannot build,
/// is no silent pass but exit 2 saying so.
#[test]
fn gate_against_a_missing_or_unbuildable_revision_exits_2() {
    let d = Dir::new();
    let scenario = root().join("scenarios/gate-loopback.toml");
    let s = scenario.to_str().unwrap();
    let o = d.perfkit(&["gate", "--against", "HEAD~1", s]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot build the base revision `HEAD~1`"),
        "{}",
        stderr(&o)
    );
    git_repo(&d);
    let o = d.perfkit(&["gate", "--against", "HEAD~1", s]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no commit `HEAD~1`"), "{}", stderr(&o));
    // HEAD exists but is no Cargo workspace: the build fails, loudly.
    let o = d.perfkit(&["gate", "--against", "HEAD", s]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cargo build failed"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no wall-clock verdict"),
        "{}",
        stderr(&o)
    );
    let o = d.perfkit(&["gate", "--against", "HEAD", s, "--baseline", "b.json"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--against and --baseline conflict"
    );
}

/// `gate --against` end to end, with this very binary standing in for the
/// base revision's cached build: rounds of both builds alternate, the
/// deterministic scenario passes at the first look, and a build made slower
/// per packet (`--head-set`) fails naming the metric, with its power.
#[test]
fn gate_against_measures_both_builds_in_rounds() {
    let d = Dir::new();
    let sha = git_repo(&d);
    let cached = d.path().join("target/perfkit-gate/bin").join(&sha);
    std::fs::create_dir_all(&cached).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_perfkit"), cached.join("perfkit")).unwrap();

    let uart = root().join("scenarios/uart-throttled.toml");
    let o = d.perfkit(&[
        "gate",
        "--against",
        "HEAD",
        uart.to_str().unwrap(),
        "--min-rounds",
        "3",
        "--max-rounds",
        "4",
        "--summary-md",
        "s.md",
        "--threshold",
        "rx.bps=1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("from the cache"), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("3 rounds of uart-throttled"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("3 pairs") || stdout(&o).contains("exact"),
        "{}",
        stdout(&o)
    );
    assert!(std::fs::read_to_string(d.path().join("s.md"))
        .unwrap()
        .contains("pass"));
    let base = d
        .path()
        .join("build/gate-against/uart-throttled/base/results.json");
    let text = std::fs::read_to_string(base).unwrap();
    assert_eq!(
        text.matches("\"config_id\"").count(),
        3,
        "one run per round"
    );

    // 200 packets, each 50 us slower in the candidate: many times the
    // loopback's own cost per packet, so no noise hides it.
    d.write(
        "lb.toml",
        "name = \"lb\"\nwarmup = 0\n[link]\nkind = \"loopback\"\n\
         [transfer]\nblock_size = 100\ninput_size = 20000\n[gate]\n\"tx.seconds\" = 10\n",
    );
    let o = d.perfkit(&[
        "gate",
        "--against",
        "HEAD",
        "lb.toml",
        "--min-rounds",
        "5",
        "--max-rounds",
        "8",
        "--head-set",
        "slowdown_ns_per_packet=50000",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("FAIL: 1 of 1 checks regressed or changed in lb: tx.seconds"),
        "{out}"
    );
    assert!(
        out.contains("power: every check would have caught"),
        "{out}"
    );
    assert!(out.contains("5 pairs"), "{out}");
}

#[test]
fn a_run_into_a_pipe_prints_progress_lines_even_when_quiet() {
    let d = Dir::new();
    let scenario = root().join("scenarios/uart-throttled.toml");
    let out = d.path().join("out");
    // stderr is a pipe here, as in a CI log; a short period so the test is quick.
    let o = Command::new(env!("CARGO_BIN_EXE_perfkit"))
        .args(["run", scenario.to_str().unwrap(), "--quiet", "--no-report"])
        .args(["--runs", "4", "--out", out.to_str().unwrap()])
        .env("PERFKIT_PROGRESS_MS", "20")
        .current_dir(d.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("perfkit: configuration 1/1, run "))
        .collect();
    assert!(!lines.is_empty(), "no progress lines in\n{err}");
    for l in &lines {
        assert!(l.contains("/4 runs done, elapsed "), "{l}");
        assert!(l.contains(", ETA "), "{l}");
    }
    // Once a run is done the ETA is a time, not "unknown".
    assert!(lines.iter().any(|l| !l.contains("ETA unknown")), "{err}");
    // Progress goes to stderr only; stdout keeps the summary for scripts.
    assert!(!stdout(&o).contains("runs done"), "{}", stdout(&o));
}

/// The binary copied elsewhere, as an install puts it, run from a folder
/// with none of the project's files and no PERFKIT_ROOT.
fn installed(d: &Dir, args: &[&str], columns: Option<&str>) -> Output {
    let bin = d.path().join("bin/perfkit");
    if !bin.exists() {
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_perfkit"), &bin).unwrap();
    }
    let work = d.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut c = Command::new(&bin);
    c.args(args).current_dir(&work).env_remove("PERFKIT_ROOT");
    match columns {
        Some(n) => c.env("COLUMNS", n),
        None => c.env_remove("COLUMNS"),
    };
    c.output().unwrap()
}

#[test]
fn an_installed_binary_lists_and_runs_its_shipped_scenarios() {
    let d = Dir::new();
    let o = installed(&d, &["list"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for name in ["uart-throttled ", "uart-sweep ", "batched-heaps "] {
        assert!(out.lines().any(|l| l.starts_with(name)), "{name}: {out}");
    }
    assert!(out.contains("throttled to 40 packets/s"), "{out}");
    assert!(out.contains("perfkit run NAME"), "{out}");

    // The main job by name, its input the binary's own copy of the test image.
    let o = installed(
        &d,
        &[
            "run",
            "uart-throttled",
            "--quiet",
            "--no-report",
            "--out",
            "r",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = std::fs::read_to_string(d.path().join("work/r/results.json")).unwrap();
    assert!(
        results.contains("5bbd826fbd47f8c1"),
        "the test image arrived: {results}"
    );

    let o = installed(&d, &["run", "uart-throttle"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("see `perfkit list`"), "{}", stderr(&o));
}

#[test]
fn params_wrap_to_the_width_and_list_descriptions_too() {
    let d = Dir::new();
    for cols in ["60", "100", "200"] {
        for cmd in ["params", "list"] {
            let o = installed(&d, &[cmd], Some(cols));
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            let out = stdout(&o);
            let width: usize = cols.parse().unwrap();
            for l in out.lines() {
                assert!(l.chars().count() <= width, "{cmd} at {cols}: {l:?}");
            }
            assert!(out.contains("throttle_pps") || cmd == "list", "{out}");
        }
    }
    // Into a pipe with no COLUMNS: one line per parameter, for grep.
    let o = installed(&d, &["params"], None);
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.starts_with("throttle_pps ") && l.contains("[transfer] throttle_pps")),
        "{out}"
    );
}
