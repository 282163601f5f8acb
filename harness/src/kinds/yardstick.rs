//! Yardsticks measured in the same run as a scenario, so a figure can be read
//! against what the machine does without perfkit.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};

/// Seconds for `cat FILE | cat` to move the file through a real pipe (the
/// second `cat`'s output is read and counted here, so every byte crosses).
pub fn cat_through_pipe(file: &Path) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut first = Command::new("cat")
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cat")?;
    let pipe = first.stdout.take().context("cat has no stdout")?;
    let mut second = Command::new("cat")
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cat")?;
    let mut out = second.stdout.take().context("cat has no stdout")?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = out.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let ok = first.wait()?.success() && second.wait()?.success();
    let secs = start.elapsed().as_secs_f64();
    let expected = std::fs::metadata(file)?.len();
    if !ok || total != expected {
        bail!("cat moved {total} of {expected} bytes");
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cat_moves_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, vec![7u8; 300_000]).unwrap();
        assert!(cat_through_pipe(&p).unwrap() > 0.0);
        assert!(cat_through_pipe(&dir.path().join("missing")).is_err());
    }
}
