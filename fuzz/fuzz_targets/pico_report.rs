//! The device report protocol (`crates/pico/src/proto.rs`): any byte stream
//! decodes to a collector whose check never panics.
//! Run with `cargo +nightly fuzz run pico_report` from this folder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = perfkit_pico::proto::decode_report_stream(data);
    let _ = report.check();
    let _ = report.is_done();
});
