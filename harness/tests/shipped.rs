//! The scenarios built into the binary are exactly the files in
//! `scenarios/`, and each parses.

use std::path::Path;

use perfkit_harness::scenario::Scenario;
use perfkit_harness::shipped::{scenario, SCENARIOS};

#[test]
fn every_shipped_scenario_is_embedded_and_parses() {
    // The test runs in the checkout, so it can compare with the files.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let embedded: Vec<&str> = SCENARIOS.iter().map(|(f, _)| *f).collect();
    assert_eq!(on_disk, embedded, "add new scenarios to SCENARIOS");
    for (file, text) in SCENARIOS {
        Scenario::parse(Path::new(file), text).unwrap();
    }
    assert_eq!(scenario("uart-throttled").unwrap().0, "uart-throttled.toml");
    assert_eq!(
        scenario("uart-throttled.toml").unwrap().0,
        "uart-throttled.toml"
    );
    assert!(scenario("uart").is_none());
}
