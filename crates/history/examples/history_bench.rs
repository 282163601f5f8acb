//! Import and trend-query speed on a synthetic history of 200 commits x 20
//! configurations x 30 metrics (120,000 values):
//! `cargo run --release -p perfkit-history --example history_bench [DB]`
//! where DB is a SQLite path (default: a temporary file) or a postgres:// URL
//! (the database must be empty).

use std::time::Instant;

use perfkit_history::{synthetic, Provenance, SeriesQuery, Store};

const COMMITS: usize = 200;
const CONFIGS: usize = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let location = std::env::args()
        .nth(1)
        .unwrap_or_else(|| tmp.path().join("history.db").display().to_string());
    // Build every file first: only the store's work is timed.
    let files: Vec<_> = (0..COMMITS)
        .map(|c| {
            synthetic::results("bench", c, CONFIGS, 1, &mut |cfg, _| {
                1.0 + cfg as f64 * 0.01 + c as f64 * 1e-4
            })
        })
        .collect();
    let mut store = Store::open(&location)?;
    let t = Instant::now();
    let mut values = 0;
    for (c, r) in files.iter().enumerate() {
        let prov = Provenance {
            commit: synthetic::commit_hash(c),
            branch: "main".into(),
            commit_time: 1_790_000_000 + c as i64 * 3600,
            host_fingerprint: "bench".into(),
            source: "perfkit".into(),
        };
        values += store.import(r, &prov)?.figures;
    }
    let import = t.elapsed().as_secs_f64();
    println!(
        "{}: imported {values} values ({COMMITS} commits x {CONFIGS} configurations x {} metrics) in {:.3} s: {:.0} values/s",
        store.engine(),
        synthetic::FIGURES_PER_RECORD,
        import,
        values as f64 / import
    );
    for (what, config) in [
        (
            "one configuration",
            vec![("block_size".to_owned(), "21".to_owned())],
        ),
        ("all 20 configurations", vec![]),
    ] {
        let q = SeriesQuery {
            scenario: "bench".into(),
            metric: "stage.wire::crc16.p99_ns".into(),
            config,
            branch: Some("main".into()),
            host_fingerprint: None,
        };
        store.series(&q)?; // warm the statement cache and the page cache
        let n = 20;
        let t = Instant::now();
        let mut points = 0;
        for _ in 0..n {
            points = store.series(&q)?.len();
        }
        println!(
            "{}: trend query, {what} ({points} points): {:.2} ms",
            store.engine(),
            t.elapsed().as_secs_f64() * 1000.0 / n as f64
        );
    }
    Ok(())
}
