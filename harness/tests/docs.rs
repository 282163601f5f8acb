//! Every code block in the project's Markdown is checked: Rust blocks are
//! doc tests of the `perfkit` crate (its `markdown` module includes each
//! file), TOML blocks parse, shell blocks pass `bash -n`, and every block
//! names its language so none is skipped by mistake.

#[allow(dead_code)] // only `root` is needed here
mod common;

use common::root;
use std::path::PathBuf;
use std::process::Command;

/// The Markdown a reader meets: the READMEs and everything under docs/.
fn markdown() -> Vec<PathBuf> {
    let mut files = vec![
        root().join("README.md"),
        root().join("crates/perf/README.md"),
        root().join("scenarios/README.md"),
    ];
    let mut dirs = vec![root().join("docs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// `(line, info string, body)` of each fenced block.
fn blocks(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        match (&mut open, t.strip_prefix("```")) {
            (None, Some(info)) => open = Some((i + 1, info.trim().to_owned(), String::new())),
            (Some(_), Some("")) => out.extend(open.take()),
            (Some((_, _, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

#[test]
fn every_code_block_is_labelled_and_checked() {
    let lib = std::fs::read_to_string(root().join("crates/perf/src/lib.rs")).unwrap();
    let mut checked = 0;
    for file in markdown() {
        let rel = file.strip_prefix(root()).unwrap().display().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, info, body) in blocks(&text) {
            let lang = info.split(',').next().unwrap_or("");
            let at = format!("{rel}:{line}");
            match lang {
                "" => panic!(
                    "{at}: a code block without a language (rustdoc would compile it as Rust)"
                ),
                "rust" => {
                    // The doc tests compile it when the crate includes the file.
                    let included = if rel == "crates/perf/README.md" {
                        "include_str!(\"../README.md\")".to_owned()
                    } else {
                        format!("include_str!(\"../../../{rel}\")")
                    };
                    assert!(
                        lib.contains(&included),
                        "{at}: add {rel} to perfkit's `markdown` module"
                    );
                }
                "toml" => {
                    if let Err(e) = body.parse::<toml::Table>() {
                        panic!("{at}: not TOML: {e}");
                    }
                }
                "sh" => {
                    let o = Command::new("bash")
                        .args(["-n", "-c", &body])
                        .output()
                        .unwrap();
                    assert!(
                        o.status.success(),
                        "{at}: {}",
                        String::from_utf8_lossy(&o.stderr)
                    );
                }
                "text" | "console" => {}
                other => panic!("{at}: unknown block language `{other}`"),
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} blocks found");
}
