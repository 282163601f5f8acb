//! The checkout's built firmware, runner and image: the library is handed
//! paths, and these tests run inside the checkout.
// Each test file uses its own subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use perfkit_pico::{DeviceRole, PicoRunConfig, Target};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where scripts/setup.d/40-firmware.sh puts the instrumented firmware.
pub fn elf() -> PathBuf {
    root().join("build/firmware/perfkit-pico-fw.elf")
}

/// The firmware built without perfkit.
pub fn bare_elf() -> PathBuf {
    root().join("build/firmware/perfkit-pico-fw-bare.elf")
}

pub fn runner() -> PathBuf {
    root().join("firmware/pico/emulator/runner.mjs")
}

/// The image built into the firmware.
pub fn image() -> PathBuf {
    root().join("fixtures/test35k.jpg")
}

/// The field's settings on the emulator with this checkout's files.
pub fn field(role: DeviceRole) -> PicoRunConfig<'static> {
    let target = Target::Emulator { runner: runner() };
    PicoRunConfig::field_defaults(role, target, elf(), image())
}
