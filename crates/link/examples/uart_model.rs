//! Prints what the virtual-time UART model gives for the field's reference
//! transfers (34,710-byte test image, 50-byte blocks, START_META 8,
//! META_EVERY_N 50, 115200 8N1), in the field's stats-line format.
//!
//! `cargo run -p perfkit-link --release --example uart_model`

#[path = "../tests/common/dttk.rs"]
mod dttk;

use std::time::Instant;

use perfkit_link::sim::{run, SimConfig};
use perfkit_link::DeviceProfile;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let image = dttk::test_image();
    for profile in ["pico-micropython", "host"] {
        let p = DeviceProfile::builtin(profile)?;
        let cfg = SimConfig::from_profiles(115_200, 10, &p, &p);
        for (repeats, pps) in [(3, Some(40)), (3, None), (0, None)] {
            let mut tx = dttk::Sender::new(image.clone(), 50, repeats, pps);
            let mut rx = dttk::Receiver::new(tx.blocks());
            let wall = Instant::now();
            let r = run(&cfg, &mut tx, &mut rx)?;
            let wall = wall.elapsed();
            let t_tx = r.sender.span_ns() as f64 * 1e-9;
            let t_rx = r.receiver.span_ns() as f64 * 1e-9;
            let by_tx = tx.data_messages * 50;
            println!(
                "{profile} repeats={repeats} throttle={}:",
                pps.map_or("none".to_owned(), |p| format!("{p}/s"))
            );
            println!(
                "  tx T:{t_tx:.2} blk:{} by:~{by_tx} PPS:{:.1} BPS:{:.0}",
                tx.data_messages,
                tx.data_messages as f64 / t_tx,
                by_tx as f64 / t_tx
            );
            println!(
                "  rx T:{t_rx:.2} blocks missing:{} good frames:{} bad frames:{} BPS:{:.0}",
                rx.missing_blocks(),
                rx.good_frames,
                rx.bad_frames,
                image.len() as f64 / t_rx
            );
            println!(
                "  wire:{} delivered:{} overflow:{} rx high water:{} utilisation:{:.3} events:{} wall:{:.2} ms",
                r.wire_bytes,
                r.delivered_bytes,
                r.overflow_drops,
                r.rx_high_water,
                r.utilisation,
                r.events,
                wall.as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}
