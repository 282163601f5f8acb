//! SPEAD packet decoder, heap reassembly, item and descriptor decoding on
//! hostile input: no panics, memory bounded by the reassembler's limits.
//! Input: datagrams framed by 2-byte big-endian lengths.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = perfkit_spead::reasm::decode_datagrams(data);
});
