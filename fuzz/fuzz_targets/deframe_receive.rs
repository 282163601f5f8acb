//! Arbitrary bytes through the deframers (dttk and COBS) and the receivers.
//! The same entry function runs in `cargo test -p perfkit-stack` through the
//! property tests in `crates/stack/tests/props.rs`.
//!
//! Run with `cargo +nightly fuzz run deframe_receive` from this folder.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    perfkit_stack::fuzzing::deframe_receive(data);
});
