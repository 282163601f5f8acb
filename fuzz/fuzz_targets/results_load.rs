//! results.json and baseline loading, then what gate, compare and report do
//! with a file that loaded: no panics on any input.
//! Run with `cargo +nightly fuzz run results_load` from this folder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perfkit_report::gate::GateConfig;
use perfkit_report::model::Results;
use perfkit_report::stats::Bootstrap;
use std::path::{Path, PathBuf};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = Results::from_json(Path::new("fuzz.json"), text) else {
        return;
    };
    // Few resamples: the fuzzer wants paths, not statistics.
    let bs = Bootstrap {
        resamples: 20,
        ..Bootstrap::default()
    };
    let inputs = [(PathBuf::from("a.json"), r.clone()), (PathBuf::from("b.json"), r.clone())];
    let cmp = perfkit_report::compare::compare_with(&inputs, &bs);
    let _ = perfkit_report::html::render_compare(&inputs, &cmp);
    let _ = perfkit_report::html::render_report(&inputs[..1]);
    let flags = ["*=5".to_owned()];
    if let Ok(mut cfg) = GateConfig::from_flags_and_meta(&flags, &r.meta.gate) {
        cfg.bootstrap = bs;
        let _ = perfkit_report::gate::evaluate(&r, &r, &cfg);
    }
});
