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
