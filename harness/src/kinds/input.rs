//! The file a transfer moves: read from disk or generated from a seed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use perfkit_report::files::{self, Accept};
use rand::RngCore;
use rand::SeedableRng;

use crate::integrity::sha256_hex;
use crate::locate::Places;
use crate::scenario::Scenario;
use crate::spec::TransferSpec;

/// The input of one run, in memory and on disk (child processes read the file).
pub struct Input {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Where they are on disk.
    pub path: PathBuf,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Keeps a generated file alive for the run.
    _dir: Option<tempfile::TempDir>,
}

/// The largest file the wire profile can describe with this block size: block
/// numbers are u16, and META's nblocks is u16.
pub fn max_file_size(block_size: u64) -> u64 {
    65535 * block_size + (block_size - 1)
}

/// Refuses a file the wire profile cannot describe with this block size.
pub fn check_size(path: &Path, len: usize, block_size: u64) -> anyhow::Result<()> {
    if len as u64 > max_file_size(block_size) {
        bail!(
            "{} is {} bytes: the wire profile carries at most {} bytes with {}-byte blocks (u16 block numbers)",
            path.display(),
            len,
            max_file_size(block_size),
            block_size
        );
    }
    Ok(())
}

/// Finds `input` by the run's one rule for files ([`crate::locate`]).
pub fn resolve(s: &Scenario, input: &Path) -> Option<PathBuf> {
    Places::for_scenario(&s.path).find_given(input)
}

/// The scenario's `input` file, or an error naming the key and where it was looked for.
pub fn locate(s: &Scenario) -> anyhow::Result<PathBuf> {
    Places::for_scenario(&s.path)
        .given(&s.input, "input", "check the scenario's `input`")
        .map_err(|e| anyhow::anyhow!("{}: key `input`: {e:#}", s.path.display()))
}

/// Where a run's input comes from.
pub enum Source {
    /// A file found by the one rule for files.
    File(PathBuf),
    /// The binary's copy of a shipped fixture, when the project's is not
    /// around (an installed perfkit).
    Shipped(&'static [u8]),
}

/// The scenario's `input`: the file, else the embedded copy of a shipped
/// fixture, else the error of [`locate`].
pub fn source(s: &Scenario) -> anyhow::Result<Source> {
    match locate(s) {
        Ok(path) => Ok(Source::File(path)),
        Err(e) => crate::shipped::file(&s.input).map(Source::Shipped).ok_or(e),
    }
}

impl Input {
    /// Reads the scenario's input, or generates `input_size` seeded bytes.
    pub fn prepare(s: &Scenario, t: &TransferSpec) -> anyhow::Result<Input> {
        let size = t.input_size;
        let block = u64::from(t.block_size.max(1));
        let input = if size > 0 {
            let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
            let path = dir.path().join(format!("input-{size}.bin"));
            let bytes = generate(size as usize, t.seed);
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&bytes)?;
            Input {
                sha256: sha256_hex(&bytes),
                bytes,
                path,
                _dir: Some(dir),
            }
        } else {
            let (bytes, path, dir) = match source(s)? {
                Source::File(path) => {
                    let bytes = files::read_limited(&path, max_file_size(block), Accept::Regular)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    (bytes, path, None)
                }
                // Written out under its own name: child processes read a
                // file, and META carries the name.
                Source::Shipped(bytes) => {
                    let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
                    let path = dir.path().join(s.input.file_name().unwrap_or_default());
                    std::fs::write(&path, bytes)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    (bytes.to_vec(), path, Some(dir))
                }
            };
            Input {
                sha256: sha256_hex(&bytes),
                bytes,
                path,
                _dir: dir,
            }
        };
        check_size(&input.path, input.bytes.len(), block)?;
        Ok(input)
    }

    /// Bytes in memory under `name`, as a run's input (for tests).
    #[cfg(test)]
    pub(crate) fn in_memory(bytes: Vec<u8>, name: &str) -> Input {
        Input {
            sha256: sha256_hex(&bytes),
            bytes,
            path: PathBuf::from(name),
            _dir: None,
        }
    }
}

/// Deterministic pseudo-random bytes.
pub fn generate(size: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x7065_7266_6b69_7421);
    let mut v = vec![0u8; size];
    rng.fill_bytes(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_input_is_deterministic_per_seed() {
        assert_eq!(generate(1000, 1), generate(1000, 1));
        assert_ne!(generate(1000, 1), generate(1000, 2));
    }

    #[test]
    fn wire_profile_size_limit() {
        assert_eq!(max_file_size(249), 16_318_463);
        assert_eq!(max_file_size(1), 65535);
    }
}
