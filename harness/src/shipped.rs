//! Copies of the shipped scenarios and of the test image, built into the
//! binary, so that `perfkit list`, `perfkit run NAME` and the scenarios'
//! default input work where the project's files are not (an installed
//! `perfkit`, a temporary folder). Files on disk, when found, come first:
//! they may have been edited.

use std::path::{Path, PathBuf};

use crate::locate::Places;
use crate::scenario::{Scenario, ScenarioError};

/// `(file name, text)` of each file in `scenarios/`, embedded at build time.
macro_rules! embedded {
    ($($file:literal,)*) => {
        &[$(($file, include_str!(concat!("../../scenarios/", $file))),)*]
    };
}

/// The shipped scenarios (a test checks this list against `scenarios/`).
pub const SCENARIOS: &[(&str, &str)] = embedded!(
    "batched-heaps.toml",
    "chunk-and-buffers.toml",
    "device-to-wire.toml",
    "gate-loopback.toml",
    "instructions.toml",
    "loopback.toml",
    "mux-transfers.toml",
    "noisy-pipe.toml",
    "pipe-implementations.toml",
    "pipe.toml",
    "polled-receive.toml",
    "tcp.toml",
    "two-hosts-heaps.toml",
    "two-hosts.toml",
    "uart-pico.toml",
    "uart-sweep.toml",
    "uart-throttled.toml",
    "uart-unthrottled.toml",
    "viper-what-if.toml",
);

/// The input most shipped scenarios move, by its project-relative path.
pub const TEST_IMAGE: (&str, &[u8]) = (
    "fixtures/test35k.jpg",
    include_bytes!("../../fixtures/test35k.jpg"),
);

/// The embedded scenario called `name` (`uart-throttled` or
/// `uart-throttled.toml`): its file name and text.
pub fn scenario(name: &str) -> Option<(&'static str, &'static str)> {
    SCENARIOS
        .iter()
        .find(|(file, _)| *file == name || file.strip_suffix(".toml") == Some(name))
        .copied()
}

/// The scenario `arg` names: a file, else a shipped scenario by name (the
/// project's `scenarios/` copy when found, else the embedded one).
pub fn load(arg: &Path) -> Result<Scenario, ScenarioError> {
    let bare = arg.components().count() == 1;
    let name = arg.to_str().filter(|_| bare && !arg.exists());
    let Some((file, text)) = name.and_then(scenario) else {
        return Scenario::load(arg).map_err(|mut e| {
            if bare && !arg.exists() {
                e.message
                    .push_str(" (a shipped scenario runs by name: see `perfkit list`)");
            }
            e
        });
    };
    match Places::here().find(&Path::new("scenarios").join(file)) {
        Some(path) => Scenario::load(&path),
        None => Scenario::parse(Path::new(file), text),
    }
}

/// The embedded bytes of the project file `rel`, if it is one.
pub fn file(rel: &Path) -> Option<&'static [u8]> {
    (rel == Path::new(TEST_IMAGE.0)).then_some(TEST_IMAGE.1)
}

/// Where `perfkit list` looks when given no folder: the project's
/// `scenarios/`, if found.
pub fn scenarios_dir() -> Option<PathBuf> {
    Places::here().find(Path::new("scenarios"))
}
