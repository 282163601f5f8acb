//! Bad results files give clear errors that name the file and the problem
//! (exit code 2), never a panic; good files on disk render and compare.

mod common;

use std::path::{Path, PathBuf};

use common::{synthetic, Spec};
use perfkit_report::model::ErrorKind;
use perfkit_report::{compare, exit, load_all, render_report, Results};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn good_text() -> String {
    synthetic(&Spec::default()).to_json()
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = good_text();
    let p = write(dir.path(), "cut.json", &text[..text.len() * 2 / 3]);
    let e = Results::load(&p).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with(&p.display().to_string()), "{msg}");
    assert!(
        matches!(e.kind(), ErrorKind::Parse { line, .. } if *line > 1),
        "{msg}"
    );
    assert!(msg.contains("not a valid perfkit results file"), "{msg}");
    assert_eq!(e.exit_code(), exit::BAD_INPUT);
}

#[test]
fn hand_edited_wrong_type_names_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = good_text().replacen("\"blocks\": 1000", "\"blocks\": \"many\"", 1);
    let p = write(dir.path(), "edited.json", &text);
    let e = Results::load(&p).unwrap_err();
    let msg = e.to_string();
    let line = text.lines().position(|l| l.contains("\"many\"")).unwrap() + 1;
    assert!(msg.contains(&format!("edited.json:{line}:")), "{msg}");
    assert!(msg.contains("invalid type"), "{msg}");
}

#[test]
fn hand_edited_unknown_field_and_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    let text = good_text().replacen("\"host\":", "\"hots\":", 1);
    let p = write(dir.path(), "typo.json", &text);
    let msg = Results::load(&p).unwrap_err().to_string();
    assert!(msg.contains("typo.json") && msg.contains("hots"), "{msg}");

    let mut r = synthetic(&Spec::default());
    r.runs[3].rx.bps = 1.0;
    let text = r.to_json().replacen("\"bps\": 1.0", "\"bps\": -5.0", 1);
    let p = write(dir.path(), "neg.json", &text);
    let msg = Results::load(&p).unwrap_err().to_string();
    assert!(
        msg.contains("neg.json") && msg.contains("runs[3].rx.bps"),
        "{msg}"
    );
}

#[test]
fn newer_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let text = good_text().replacen("\"schema_version\": 1", "\"schema_version\": 7", 1);
    let p = write(dir.path(), "future.json", &text);
    let e = Results::load(&p).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::NewerSchema { found: 7 }));
    let msg = e.to_string();
    assert!(
        msg.contains("future.json") && msg.contains("upgrade perfkit"),
        "{msg}"
    );
}

#[test]
fn not_json_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "notes.txt", "hello\n");
    assert!(Results::load(&p)
        .unwrap_err()
        .to_string()
        .contains("notes.txt:1:"));
    let p = write(dir.path(), "other.json", "{\"name\": 1}");
    let msg = Results::load(&p).unwrap_err().to_string();
    assert!(msg.contains("not a perfkit results file"), "{msg}");
    let missing = dir.path().join("nope.json");
    let msg = Results::load(&missing).unwrap_err().to_string();
    assert!(msg.contains("nope.json"), "{msg}");
}

#[test]
fn load_all_stops_at_the_bad_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &good_text());
    let b = write(dir.path(), "b.json", "{");
    let e = load_all(&[&a, &b]).unwrap_err();
    assert_eq!(e.path(), b.as_path());
}

#[test]
fn files_on_disk_render_and_compare() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &good_text());
    let b = write(
        dir.path(),
        "b.json",
        &synthetic(&Spec {
            seed: 9,
            ..Spec::default()
        })
        .to_json(),
    );
    let inputs = load_all(&[&a, &b]).unwrap();
    let html = render_report(&inputs);
    assert!(html.starts_with("<!DOCTYPE html>"));
    let cmp = compare(&inputs);
    assert_eq!(cmp.inputs, ["a", "b"]);
    assert!(!cmp.rows.is_empty());
}

#[test]
fn failed_runs_and_empty_files_do_not_panic() {
    let mut r = synthetic(&Spec::default());
    for rec in r.runs.iter_mut().filter(|x| x.config_id == 0) {
        rec.error = Some("link <down>".into());
    }
    let html = render_report(&[(PathBuf::from("f.json"), r.clone())]);
    assert!(html.contains("link &lt;down&gt;"));
    let mut empty = r.clone();
    empty.runs.clear();
    let html = render_report(&[(PathBuf::from("e.json"), empty.clone())]);
    assert!(html.contains("</html>"));
    let cmp = compare(&[
        (PathBuf::from("e.json"), empty),
        (PathBuf::from("f.json"), r),
    ]);
    assert!(cmp.rows.is_empty());
}

/// Runs of one config_id with different configurations are refused on
/// load (readers group by the id and pooled them); one configuration under
/// two ids is refused by the gate, which would judge only the first.
#[test]
fn one_id_two_configurations_and_one_configuration_two_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = synthetic(&Spec::default());
    let other = r.runs.iter().position(|x| x.config_id != 0).unwrap();
    r.runs[other].config_id = 0;
    let p = write(dir.path(), "dupid.json", &r.to_json());
    let e = Results::load(&p).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("dupid.json") && msg.contains("config_id 0 but different configurations"),
        "{msg}"
    );
    assert_eq!(e.exit_code(), exit::BAD_INPUT);

    // The same configuration under ids 0 and 99: loads (a report may show
    // it), the gate refuses it.
    let mut r = synthetic(&Spec::default());
    let first = r.runs[0].config.clone();
    let last = r.runs.len() - 1;
    r.runs[last].config = first;
    r.runs[last].config_id = 99;
    let p = write(dir.path(), "dupcfg.json", &r.to_json());
    let r = Results::load(&p).unwrap();
    let good = synthetic(&Spec::default());
    let flags = ["tx.bps=10".to_owned()];
    let cfg =
        perfkit_report::gate::GateConfig::from_flags_and_meta(&flags, &Default::default()).unwrap();
    for (b, c) in [(&r, &good), (&good, &r)] {
        let e = perfkit_report::gate::evaluate(b, c, &cfg).unwrap_err();
        assert!(
            e.to_string()
                .contains("one configuration under two ids (0 and 99"),
            "{e}"
        );
    }
}
