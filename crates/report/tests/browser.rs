//! Every report as a person sees it: headless Chromium loads a sweep report,
//! a comparison and a gate summary from local files at 1280 px wide. Each
//! page must render its charts, must not overflow horizontally (the page's
//! `scrollWidth` is at most the window's width) and must print nothing to
//! the console (chromium logs every console message and uncaught error,
//! frames included, to stderr). A screenshot of each is kept under
//! `target/tmp/report-browser/` and its path printed.
//!
//! Needs Debian's `chromium` (scripts/setup.d/20-chromium.sh installs it).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{before_after, synthetic, Spec};
use perfkit_report::device::{DeviceModel, Timeline};
use perfkit_report::model::Sentinel;
use perfkit_report::{compare, gate, render_compare, render_gate, render_report};
use scraper::{Html, Selector};
use serde_json::json;

/// The width a reader's laptop shows a page at.
const WIDTH: u32 = 1280;

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

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs chromium with a fresh profile and a time limit; returns stdout and stderr.
fn run_chromium(extra: &[String], url: &str, dir: &Path) -> (String, String) {
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
    (stdout, stderr)
}

/// What a reader's browser made of a page.
struct Seen {
    /// The DOM after scripts ran.
    dom: String,
    /// `document.documentElement.scrollWidth` at a 1280 px wide window.
    scroll_width: u32,
    /// Every console message and uncaught error, from the page and its frames.
    console: Vec<String>,
    /// The screenshot, when one was asked for.
    shot: Option<PathBuf>,
}

/// Records the page's width and height once laid out, for the DOM dump.
const PROBE: &str = "<script>(function () {\
  function note() { var e = document.documentElement;\
    e.setAttribute('data-probe-width', e.scrollWidth);\
    e.setAttribute('data-probe-height', e.scrollHeight); }\
  note(); addEventListener('load', note); })();</script>";

/// Loads `html` (written as `name.html`) at 1280 px: the DOM, its width and
/// the console; with `shoot`, a screenshot of the whole page as `name.png`.
fn see(html: &str, name: &str, shoot: bool) -> Seen {
    let dir = out_dir();
    let page = dir.join(format!("{name}.html"));
    std::fs::write(&page, html).unwrap();
    let probed = dir.join(format!("{name}.probe.html"));
    let at = html.rfind("</body>").expect("a </body>");
    std::fs::write(&probed, format!("{}{PROBE}{}", &html[..at], &html[at..])).unwrap();
    let (dom, stderr) = run_chromium(
        &[
            format!("--window-size={WIDTH},900"),
            "--enable-logging=stderr".into(),
            "--v=0".into(),
            "--virtual-time-budget=5000".into(),
            "--dump-dom".into(),
        ],
        &format!("file://{}", probed.display()),
        &dir,
    );
    let console: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_owned)
        .collect();
    let doc = Html::parse_document(&dom);
    let root = doc
        .select(&Selector::parse("html").unwrap())
        .next()
        .unwrap();
    let attr = |a: &str| -> u32 {
        root.value()
            .attr(a)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: the probe did not run ({a})"))
    };
    let (scroll_width, height) = (attr("data-probe-width"), attr("data-probe-height"));
    let shot = shoot.then(|| {
        let shot = dir.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&shot);
        run_chromium(
            &[
                format!("--screenshot={}", shot.display()),
                // The whole page, up to a bound that keeps the file sane.
                format!("--window-size={WIDTH},{}", height.clamp(600, 12_000)),
            ],
            &format!("file://{}", page.display()),
            &dir,
        );
        let len = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "screenshot {} is {len} bytes", shot.display());
        eprintln!("screenshot: {}", shot.display());
        shot
    });
    Seen {
        dom,
        scroll_width,
        console,
        shot,
    }
}

/// The page fits 1280 px and printed nothing to the console.
fn assert_readable(seen: &Seen, name: &str) {
    assert!(
        seen.scroll_width <= WIDTH,
        "{name}: the page is {} px wide at a {WIDTH} px window: something overflows",
        seen.scroll_width
    );
    assert!(
        seen.console.is_empty(),
        "{name}: console messages:\n{}",
        seen.console.join("\n")
    );
}

fn check_rendered(dom: &str, min_charts: usize) {
    let doc = Html::parse_document(dom);
    let charts = Selector::parse("figure.chart svg").unwrap();
    let mut n = 0;
    for svg in doc.select(&charts) {
        n += 1;
        let shapes = svg
            .select(&Selector::parse("path, polyline, polygon, rect, circle, line").unwrap())
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

/// A sweep like uart-sweep's: throttle (with its off value) x block size x
/// repeats, 36 configurations, 12 series against throttle.
fn sweep() -> perfkit_report::Results {
    let mut r = synthetic(&Spec {
        params: vec![
            (
                "throttle_pps".into(),
                vec![json!(40), json!(100), json!(200), json!(0)],
            ),
            ("block_size".into(), vec![json!(50), json!(100), json!(249)]),
            ("repeats".into(), vec![json!(0), json!(1), json!(3)]),
        ],
        runs: 3,
        device: true,
        ..Spec::default()
    });
    // As long as a shipped scenario's, so the runs table has to wrap it.
    r.meta.scenario.description = "Emulated 115200 UART, host costs: throttle x block size x \
        repeats (deterministic, gated in CI), the sweep the field's questions start from"
        .into();
    r.meta.sentinels.insert(
        "throttle_pps".into(),
        Sentinel {
            value: 0.0,
            means: "unthrottled".into(),
        },
    );
    // The device section of a modelled UART run, with a sentence as long
    // as the model writes.
    let model = DeviceModel {
        bottleneck: "sender throttle".into(),
        why: "the sender idled 65 % of its time waiting for its throttle, with the line \
              20.6 % used and the receiver busy 21 % of the run: a faster throttle moves more"
            .into(),
        evidence: [
            ("tx_idle".to_owned(), 0.65),
            ("utilisation".to_owned(), 0.206),
        ]
        .into_iter()
        .collect(),
        timeline: Some(Timeline {
            interval_s: 1.0,
            in_flight: (0..40).map(|i| 30 + i % 7).collect(),
            rx_fill: (0..40).map(|i| i % 5).collect(),
            throughput_bps: (0..40).map(|i| 480.0 + (i % 3) as f64).collect(),
            dropped: vec![0; 40],
        }),
    };
    for run in &mut r.runs {
        run.device_model = Some(model.clone());
    }
    r
}

fn pair() -> Vec<(PathBuf, perfkit_report::Results)> {
    let (a, b) = before_after(1.3);
    vec![
        (PathBuf::from("reports/a/results.json"), a),
        (PathBuf::from("reports/b/results.json"), b),
    ]
}

#[test]
fn a_sweep_report_as_a_person_sees_it() {
    let html = render_report(&[(PathBuf::from("reports/uart-sweep/results.json"), sweep())]);
    let seen = see(&html, "sweep", true);
    assert_readable(&seen, "sweep");
    // 3 swept parameters x 6 headline metrics, folded or not.
    check_rendered(&seen.dom, 18);
    assert!(seen.dom.contains("nav class=\"toc\""));
    assert!(seen.shot.is_some());
}

#[test]
fn a_comparison_as_a_person_sees_it() {
    let inputs = pair();
    let html = render_compare(&inputs, &compare(&inputs));
    let seen = see(&html, "compare", true);
    assert_readable(&seen, "compare");
    check_rendered(&seen.dom, 12);
    assert!(seen.dom.contains("table class=\"differs\""));
}

#[test]
fn a_gate_summary_as_a_person_sees_it() {
    let inputs = pair();
    let flags: Vec<String> = ["rx.bps=10", "stage.*.p99_ns=10"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cfg = gate::GateConfig::from_flags_and_meta(&flags, &BTreeMap::new()).unwrap();
    let report = gate::evaluate(&inputs[0].1, &inputs[1].1, &cfg).unwrap();
    assert!(report.regressed());
    let seen = see(&render_gate(&report), "gate", true);
    assert_readable(&seen, "gate");
    let doc = Html::parse_document(&seen.dom);
    let failing = doc
        .select(&Selector::parse("table.gate td.bad").unwrap())
        .count();
    assert!(failing >= 8, "{failing} failing rows marked");
}

/// The checks above can fail: a too-wide table and a console error on an
/// otherwise good page are both caught.
#[test]
fn the_checks_catch_a_too_wide_table_and_a_console_error() {
    let inputs = pair();
    let html = render_compare(&inputs, &compare(&inputs));
    let at = html.find("</main>").unwrap();
    let bad = format!(
        "{}<table style=\"width:1600px\"><tr><td>too wide</td></tr></table>\
         <script>console.error('deliberate')</script>{}",
        &html[..at],
        &html[at..]
    );
    let seen = see(&bad, "too-wide", false);
    assert!(seen.scroll_width > WIDTH, "width {}", seen.scroll_width);
    assert!(
        seen.console.iter().any(|l| l.contains("deliberate")),
        "{:?}",
        seen.console
    );
    let caught = std::panic::catch_unwind(|| assert_readable(&seen, "too-wide"));
    assert!(
        caught.is_err(),
        "assert_readable lets an overflowing page pass"
    );
}

#[test]
fn chromium_runs_the_flamegraph_script() {
    // The flamegraph document on its own, as the iframe holds it: inferno's
    // init() removes the fixed width for fluid drawing, which shows the
    // script ran.
    let dir = out_dir();
    let inputs = pair();
    let html = render_compare(&inputs, &compare(&inputs));
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
    let (dom, _) = run_chromium(
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
}
