//! The scenario parser and `--set`: a scenario file's text, then `--set`
//! assignments after `\n--set\n` marks, loaded the way `perfkit run` and
//! `perfkit check` load them. No panics, errors anchored to the file,
//! sweeps within their cap.
//! Run with `cargo +nightly fuzz run scenario_parse` from this folder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    perfkit_harness::fuzzing::scenario(data);
});
