//! The firmware ELF as built by scripts/setup.d/40-firmware.sh: loadable
//! segments where the RP2040 boots and runs, boot2 first, the RTT control
//! block the hardware path attaches to. (Everything the probe path checks
//! before it touches a board.)

mod common;

use perfkit_pico::elf::{Firmware, FLASH_START, SRAM_START};

#[test]
fn built_firmware_loads_at_boot2_with_an_rtt_block() {
    let path = common::elf();
    assert!(
        path.exists(),
        "missing {}: run scripts/setup.d/40-firmware.sh",
        path.display()
    );
    let fw = Firmware::load(&path).unwrap();
    assert_eq!(fw.segments[0].addr, FLASH_START, "boot2 comes first");
    assert!(fw.segments[0].data.len() >= 256);
    // The entry point is the reset handler in flash (thumb bit set).
    assert!(
        fw.entry >= FLASH_START + 0x100 && fw.entry & 1 == 1,
        "entry 0x{:08x}",
        fw.entry
    );
    let rtt = fw
        .rtt
        .expect("the firmware has an RTT control block (_SEGGER_RTT)");
    assert!(rtt >= SRAM_START, "RTT block at 0x{rtt:08x}");
    // The embedded image is somewhere in flash, byte for byte.
    let image = std::fs::read(common::image()).unwrap();
    let flash: Vec<u8> = fw
        .segments
        .iter()
        .filter(|s| s.addr < SRAM_START)
        .flat_map(|s| s.data.iter().copied())
        .collect();
    assert!(
        flash.windows(image.len()).any(|w| w == image),
        "the test image is not in flash"
    );
}

#[test]
fn a_non_firmware_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.elf");
    std::fs::write(&p, b"not an elf").unwrap();
    let e = Firmware::load(&p).unwrap_err().to_string();
    assert!(e.contains("x.elf") && e.contains("ELF"), "{e}");
}
