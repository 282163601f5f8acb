//! Real-browser test: headless Chromium loads a generated report from a
//! local file; the rendered DOM must hold non-empty SVG charts. A screenshot
//! is saved under the build directory for a human to look at.
//!
//! Needs Debian's `chromium` (scripts/setup.d/20-chromium.sh installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{synthetic, Spec};
use perfkit_report::{compare, render_compare, render_report};
use scraper::{Html, Selector};

const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
];

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {name}"))
            .output()
        {
            let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !p.is_empty() {
                return PathBuf::from(p);
            }
        }
    }
    panic!(
        "chromium not found: run `bash scripts/setup.d/20-chromium.sh` (installs Debian's \
         chromium package) or `bash scripts/test.sh`, which runs every setup script"
    );
}

/// Runs chromium with a fresh profile and a time limit; returns stdout.
fn run_chromium(extra: &[String], url: &str, dir: &Path) -> String {
    let profile = tempfile::tempdir_in(dir).unwrap();
    let out_path = profile.path().join("stdout");
    let err_path = profile.path().join("stderr");
    let mut cmd = Command::new(chromium());
    cmd.args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        // Files, not pipes: the dumped DOM is larger than a pipe buffer and
        // chromium would block writing it while we wait for it to exit.
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = cmd.spawn().expect("start chromium");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "chromium failed: {status}\n{stderr}");
    stdout
}

fn check_rendered(dom: &str, min_charts: usize) {
    let doc = Html::parse_document(dom);
    let charts = Selector::parse("figure.chart svg").unwrap();
    let mut n = 0;
    for svg in doc.select(&charts) {
        n += 1;
        let shapes = svg
            .select(&Selector::parse("path, polyline, rect, circle, line").unwrap())
            .count();
        let texts: String = svg
            .select(&Selector::parse("text").unwrap())
            .map(|t| t.text().collect::<String>())
            .collect();
        assert!(shapes > 3, "chart {n} has only {shapes} shapes");
        assert!(!texts.trim().is_empty(), "chart {n} has no text");
        let vb = svg.value().attr("viewBox").unwrap_or("");
        assert!(
            vb.split_whitespace().count() == 4,
            "chart {n} viewBox {vb:?}"
        );
    }
    assert!(
        n >= min_charts,
        "{n} charts rendered, expected at least {min_charts}"
    );
    let frames = Selector::parse("iframe.flamegraph").unwrap();
    assert!(doc.select(&frames).count() >= 1, "flamegraph frame present");
}

#[test]
fn chromium_renders_the_report() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = Spec {
        device: true,
        ..Spec::default()
    };
    let r = synthetic(&spec);
    let html = render_report(&[(PathBuf::from("reports/synthetic/results.json"), r)]);
    let page = dir.join("report.html");
    std::fs::write(&page, html).unwrap();
    let url = format!("file://{}", page.display());

    let dom = run_chromium(
        &["--virtual-time-budget=5000".into(), "--dump-dom".into()],
        &url,
        &dir,
    );
    // 2 swept parameters x 6 headline metrics, plus one share chart per
    // configuration.
    check_rendered(&dom, 12);

    let shot = dir.join("report.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,3000".into(),
        ],
        &url,
        &dir,
    );
    let len = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(len > 10_000, "screenshot {} is {len} bytes", shot.display());
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn chromium_runs_the_flamegraph_script() {
    // The flamegraph document on its own, as the iframe holds it: inferno's
    // init() removes the fixed width for fluid drawing, which shows the
    // script ran.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    std::fs::create_dir_all(&dir).unwrap();
    let a = synthetic(&Spec::default());
    let b = synthetic(&Spec {
        slowdown: 1.3,
        seed: 2,
        ..Spec::default()
    });
    let inputs = vec![
        (PathBuf::from("reports/a/results.json"), a),
        (PathBuf::from("reports/b/results.json"), b),
    ];
    let html = render_compare(&inputs, &compare(&inputs));
    let page = dir.join("compare.html");
    std::fs::write(&page, &html).unwrap();
    let doc = Html::parse_document(&html);
    let frame = doc
        .select(&Selector::parse("iframe.flamegraph[data-kind=differential]").unwrap())
        .next()
        .expect("differential flamegraph");
    let inner = frame.value().attr("srcdoc").unwrap();
    let before = Html::parse_document(inner);
    let svg_sel = Selector::parse("svg").unwrap();
    let width_before = before
        .select(&svg_sel)
        .next()
        .unwrap()
        .value()
        .attr("width")
        .map(str::to_owned);
    assert!(width_before.is_some(), "inferno writes a width");
    let flame = dir.join("flame.html");
    std::fs::write(&flame, inner).unwrap();
    let dom = run_chromium(
        &["--virtual-time-budget=5000".into(), "--dump-dom".into()],
        &format!("file://{}", flame.display()),
        &dir,
    );
    let after = Html::parse_document(&dom);
    let svg = after.select(&svg_sel).next().expect("svg rendered");
    assert_eq!(
        svg.value().attr("width"),
        None,
        "inferno's init() ran and made the flamegraph fluid"
    );
    // And the compare page itself renders its charts.
    let dom = run_chromium(
        &["--virtual-time-budget=5000".into(), "--dump-dom".into()],
        &format!("file://{}", page.display()),
        &dir,
    );
    check_rendered(&dom, 12);
}
