//! The agent's control protocol: bytes into a real session before
//! authentication, or control messages after it (first byte even or odd).
//! Run with `cargo +nightly fuzz run agent_control` from this folder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    perfkit_harness::fuzzing::agent_control(data);
});
