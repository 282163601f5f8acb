//! What the binary's integration tests share: where the checkout and the
//! built `perfkit` are.

use std::path::{Path, PathBuf};

/// The repository root (tests run the shipped scenarios and fixtures).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness lives in the repository")
        .to_owned()
}

/// The `perfkit` binary under test.
pub fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_perfkit")
}

/// Runs `perfkit` with `args` in `dir`.
#[allow(dead_code)] // not every test binary runs it in a folder
pub fn perfkit_in(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(exe())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}
