//! What the binary's integration tests share: where the checkout and the
//! built `perfkit` are.

use std::path::{Path, PathBuf};

/// The repository root (tests run the shipped scenarios and fixtures).
#[allow(dead_code)] // not every test binary reads the checkout
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

/// Starts `cmd` with SIGINT, SIGTERM and SIGHUP at their defaults, as a
/// terminal's foreground job has them: a test that signals perfkit must not
/// depend on how the test itself was started (a background job of a script
/// ignores SIGINT, and perfkit keeps a signal it was started ignoring
/// ignored).
#[allow(dead_code)] // not every test binary signals perfkit
pub fn signals_default(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal(2) between fork and exec is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(s, libc::SIG_DFL);
            }
            Ok(())
        })
    }
}
