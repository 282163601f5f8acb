//! The emulated Pico: `firmware/pico/emulator/runner.mjs` (rp2040js) as a
//! child process driven in lockstep.
//!
//! The runner owns virtual time. The host asks it to run to an absolute
//! virtual time ([`Emulator::run_until`]); it answers with the bytes the
//! firmware's UART finished sending in that slice, each with the virtual time
//! its stop bit ended, plus its receive-overrun count. Bytes the host writes
//! ([`Emulator::write`]) go on the runner's virtual wire at the current
//! virtual time and reach the firmware's RX FIFO one character time apart.
//! Nothing here depends on wall-clock time, so every figure is reproducible.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::{Error, ErrorKind};

/// CPU clock of the emulated RP2040 (its virtual time unit is one cycle).
pub const CPU_HZ: u64 = 125_000_000;

/// One slice of the firmware's UART output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slice {
    /// Runs of bytes: (virtual cycle when the run's first byte ended, bytes).
    /// Bytes of a run follow each other one character time apart.
    pub runs: Vec<(u64, Vec<u8>)>,
    /// Virtual time reached, in cycles.
    pub now: u64,
    /// Bytes lost because the firmware's RX FIFO was full, since boot.
    pub overruns: u64,
    /// Host bytes still on the virtual wire.
    pub backlog: u64,
}

/// A running emulator.
pub struct Emulator {
    child: Child,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    now: u64,
    line: String,
}

impl Emulator {
    /// Starts `node runner.mjs --elf ELF --baud BAUD`.
    pub fn spawn(runner: &Path, elf: &Path, baud: u32) -> Result<Emulator, Error> {
        let dir = runner.parent().unwrap_or(Path::new("."));
        if !dir.join("node_modules/rp2040js").exists() {
            return Err(Error::new(ErrorKind::Setup(format!(
                "rp2040js is not installed in {}; run scripts/setup.d/40-firmware.sh",
                dir.display()
            ))));
        }
        if !elf.exists() {
            return Err(Error::new(ErrorKind::Setup(format!(
                "firmware {} not found; run scripts/setup.d/40-firmware.sh",
                elf.display()
            ))));
        }
        let mut child = Command::new("node")
            .arg(runner)
            .arg("--elf")
            .arg(elf)
            .arg("--baud")
            .arg(baud.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                Error::new(ErrorKind::Setup(format!(
                    "cannot start node (needed for the emulator; see scripts/setup.d/40-firmware.sh): {e}"
                )))
            })?;
        let stdin = BufWriter::new(child.stdin.take().expect("piped"));
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Emulator {
            child,
            stdin,
            stdout,
            now: 0,
            line: String::new(),
        })
    }

    /// Current virtual time in cycles.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Puts bytes on the host -> device wire at the current virtual time.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut cmd = String::with_capacity(4 + 2 * bytes.len());
        cmd.push_str("tx ");
        push_hex(&mut cmd, bytes);
        cmd.push('\n');
        self.stdin.write_all(cmd.as_bytes()).map_err(io_err)
    }

    /// Runs the firmware until virtual cycle `until`.
    pub fn run_until(&mut self, until: u64) -> Result<Slice, Error> {
        writeln!(self.stdin, "run {until}").map_err(io_err)?;
        self.stdin.flush().map_err(io_err)?;
        let mut slice = Slice::default();
        loop {
            let line = self.read_line()?;
            let mut it = line.split_ascii_whitespace();
            match it.next() {
                Some("rx") => {
                    let t = parse_u64(it.next())?;
                    let bytes = parse_hex(it.next().unwrap_or(""))?;
                    slice.runs.push((t, bytes));
                }
                Some("now") => {
                    slice.now = parse_u64(it.next())?;
                    slice.overruns = parse_u64(it.next())?;
                    slice.backlog = parse_u64(it.next())?;
                    self.now = slice.now;
                    return Ok(slice);
                }
                Some("fault") => {
                    // The firmware's panic handler prints its location as
                    // plain text just before it stops: show it.
                    let tail: Vec<u8> = slice
                        .runs
                        .iter()
                        .flat_map(|(_, b)| b.iter().copied())
                        .collect();
                    let text = String::from_utf8_lossy(&tail[tail.len().saturating_sub(200)..]);
                    let said = text
                        .rsplit_once("panic at ")
                        .map(|(_, at)| format!(" (panic at {})", at.trim()))
                        .unwrap_or_default();
                    return Err(Error::new(ErrorKind::Device(format!(
                        "emulated firmware stopped: {}{said}",
                        line.trim_start_matches("fault ").trim()
                    ))));
                }
                _ => return Err(protocol(&line)),
            }
        }
    }

    /// Reads `len` bytes of device memory at `addr`.
    pub fn read_memory(&mut self, addr: u32, len: u32) -> Result<Vec<u8>, Error> {
        writeln!(self.stdin, "read {addr} {len}").map_err(io_err)?;
        self.stdin.flush().map_err(io_err)?;
        let line = self.read_line()?;
        match line.split_once(' ') {
            Some(("mem", hex)) => parse_hex(hex.trim()),
            _ if line == "mem" => Ok(Vec::new()),
            _ => Err(protocol(&line)),
        }
    }

    /// The core's registers and the UART model's state, for error messages.
    pub fn state(&mut self) -> Result<String, Error> {
        writeln!(self.stdin, "state").map_err(io_err)?;
        self.stdin.flush().map_err(io_err)?;
        let line = self.read_line()?;
        Ok(line.trim_start_matches("state ").to_owned())
    }

    fn read_line(&mut self) -> Result<String, Error> {
        self.line.clear();
        let n = self.stdout.read_line(&mut self.line).map_err(io_err)?;
        if n == 0 {
            let status = self.child.try_wait().ok().flatten();
            return Err(Error::new(ErrorKind::Device(format!(
                "emulator exited unexpectedly ({})",
                status.map_or("still running".to_owned(), |s| s.to_string())
            ))));
        }
        Ok(self.line.trim_end().to_owned())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        if matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(std::time::Duration::from_millis(20));
            if matches!(self.child.try_wait(), Ok(None)) {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

fn io_err(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Device(format!("emulator pipe: {e}")))
}

fn protocol(line: &str) -> Error {
    let shown: String = line.chars().take(120).collect();
    Error::new(ErrorKind::Device(format!(
        "unexpected line from the emulator: {shown:?}"
    )))
}

fn parse_u64(s: Option<&str>) -> Result<u64, Error> {
    s.and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol(s.unwrap_or("<missing number>")))
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

fn parse_hex(s: &str) -> Result<Vec<u8>, Error> {
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return Err(protocol(s));
    }
    b.chunks_exact(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| protocol(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let mut s = String::new();
        push_hex(&mut s, &[0x00, 0xFF, 0x1a]);
        assert_eq!(s, "00ff1a");
        assert_eq!(parse_hex("00FF1a").unwrap(), vec![0, 255, 26]);
        assert!(parse_hex("0").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
