//! Measure a small pipeline and print what perfkit gives: the text dump,
//! the folded stacks and the JSON snapshot.
//!
//! `cargo run -p perfkit --release --example dump`

/// CRC-16/CCITT-FALSE, bit by bit: slow enough to show up.
#[perfkit::measured("crc16")]
fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[perfkit::measured]
fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = perfkit::measure!("frame.crc", bytes = payload.len(), crc16(payload));
    out.extend_from_slice(&crc.to_le_bytes());
}

fn main() {
    let payload: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
    let mut out = Vec::with_capacity(2048);
    for _ in 0..2000 {
        let _g = perfkit::span!("send", bytes = payload.len());
        frame(&payload, &mut out);
        std::hint::black_box(&out);
    }
    let snap = perfkit::snapshot();
    println!("clock: {}\n", perfkit::clock::clock_name());
    print!("{snap}");
    println!("\nfolded (ns of self time):");
    print!("{}", snap.folded());
    println!("\nJSON: {} bytes", snap.to_json().len());
}
