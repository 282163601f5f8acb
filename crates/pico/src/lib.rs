//! `perfkit-pico`: the host side of perfkit's RP2040 runs.
//!
//! The firmware in `firmware/pico` runs perfkit's transfer stack on an
//! RP2040 as sender or receiver over UART0, measures every stage in CPU
//! cycles and reports its statistics at the end. This crate drives it: it
//! plays the other side of the transfer with the same stack on the host,
//! collects the device's report ([`proto`]) and returns both sides' figures
//! as one [`PicoRunOutcome`], in the results model of `perfkit-report`.
//!
//! # Targets
//!
//! - [`Target::Emulator`]: the firmware ELF runs on rp2040js
//!   (`firmware/pico/emulator/runner.mjs`, a Node child process). The runner
//!   paces UART bytes at the baud rate and models both 32-byte FIFOs in the
//!   emulator's virtual time; this crate drives it in lockstep
//!   ([`emulator`]): it advances virtual time to the next instant the host
//!   side has something to do, feeds the device's bytes to the host stack
//!   with their virtual timestamps, and writes the host's bytes at the
//!   virtual instant the host sends them. Every figure (seconds, PPS, device
//!   cycles) is therefore in virtual time and identical on every machine and
//!   every run; host-side perfkit timings are real time, as always.
//! - [`Target::Hardware`] (cargo feature `probe`): the ELF is flashed with
//!   probe-rs, the board reset, the transfer runs over a real serial device,
//!   and the report is read over RTT as well as the UART. Time is the host's
//!   monotonic clock there.
//!
//! # Trade-offs
//!
//! - The lockstep keeps the emulator deterministic at the price of a round
//!   trip through a pipe per host action (one per message sent); a 35 KB
//!   transfer takes a few thousand round trips, far less than the emulation
//!   itself.
//! - The device's received image is read straight out of its RAM (emulator:
//!   the runner's memory; hardware: the probe) rather than sent back over
//!   the UART, so integrity is checked byte for byte without a second
//!   transfer that would skew the timing.
//! - The host side behaves like the reference's: a blocking write with no
//!   transmit buffer (the next message is prepared when the previous one has
//!   left), a receiver that takes bytes as they arrive.
//! - Every file a run needs (firmware, runner, image) is a path in
//!   [`PicoRunConfig`]: this crate looks for nothing, so finding them is the
//!   caller's rule (the `perfkit` command's is in its `locate` module).

#![deny(missing_docs)]

mod driver;
pub mod elf;
pub mod emulator;
#[cfg(feature = "probe")]
pub mod hardware;
pub mod proto;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

pub use perfkit_report::model::{Integrity, LinkStats, Side, Stage, Stages};
pub use proto::DeviceRole;

/// Where the firmware runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// rp2040js through the project's runner script.
    Emulator {
        /// Path to `runner.mjs` (`firmware/pico/emulator/runner.mjs` in the
        /// repository, with rp2040js installed beside it).
        runner: PathBuf,
    },
    /// A real board: flashed and read through a debug probe (feature `probe`),
    /// the transfer on a serial device wired to the board's UART0.
    Hardware {
        /// probe-rs probe selector (`VID:PID[:SERIAL]`); None: the only probe.
        probe: Option<String>,
        /// Serial device wired to GPIO0 (TX) / GPIO1 (RX), e.g. `/dev/ttyUSB0`.
        serial: PathBuf,
    },
}

/// One run's settings.
#[derive(Debug, Clone)]
pub struct PicoRunConfig<'a> {
    /// Where the firmware runs.
    pub target: Target,
    /// What the device does.
    pub role: DeviceRole,
    /// UART baud rate (the firmware is built for 115200).
    pub baud: u32,
    /// Block size (1..=249).
    pub block_size: u8,
    /// START_META.
    pub start_meta: u32,
    /// META_EVERY_N (0: never after the start).
    pub meta_every: u32,
    /// NUM_REPEATS.
    pub repeats: u32,
    /// Sender throttle in messages per second (0: unthrottled).
    pub throttle_pps: u32,
    /// The firmware ELF.
    pub elf: PathBuf,
    /// The file to transfer. When the device sends, it sends the image built
    /// into the firmware, which must be this file (checked by SHA-256).
    pub input: PathBuf,
    /// Where to write what the receiving side got (None: not written).
    pub output: Option<PathBuf>,
    /// Give up after this long (virtual seconds on the emulator).
    pub timeout_s: f64,
    /// Stop (`interrupted`) when this flag is raised; checked once per slice.
    pub cancel: Option<&'a AtomicBool>,
}

impl PicoRunConfig<'_> {
    /// The field's settings (block 50, START_META 8, META_EVERY_N 50, 3
    /// repeats, unthrottled, 115200 baud) on `target`, with firmware `elf`
    /// and the image `input`.
    pub fn field_defaults(role: DeviceRole, target: Target, elf: PathBuf, input: PathBuf) -> Self {
        PicoRunConfig {
            target,
            role,
            baud: 115_200,
            block_size: 50,
            start_meta: 8,
            meta_every: 50,
            repeats: 3,
            throttle_pps: 0,
            elf,
            input,
            output: None,
            timeout_s: 120.0,
            cancel: None,
        }
    }

    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key: &'static str, why: &str| {
            Err(Error::new(ErrorKind::Config {
                key,
                message: why.into(),
            }))
        };
        if self.block_size == 0 || self.block_size > 249 {
            return bad("block_size", "must be 1..=249");
        }
        if self.baud != FIRMWARE_BAUD {
            return bad("baud", "the firmware runs UART0 at 115200 baud");
        }
        if self.start_meta > u16::MAX as u32 {
            return bad("start_meta", "must be at most 65535");
        }
        if self.meta_every > u16::MAX as u32 {
            return bad("meta_every", "must be at most 65535");
        }
        if self.repeats > u8::MAX as u32 {
            return bad("repeats", "must be at most 255");
        }
        if self.throttle_pps > u16::MAX as u32 {
            return bad("throttle_pps", "must be at most 65535");
        }
        if !(self.timeout_s > 0.0 && self.timeout_s.is_finite()) {
            return bad("timeout_s", "must be a positive number of seconds");
        }
        Ok(())
    }
}

/// The baud rate the firmware configures.
pub const FIRMWARE_BAUD: u32 = 115_200;
/// UART character time in bits (8N1: start + 8 data + stop).
pub const BITS_PER_CHAR: u32 = 10;

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct PicoRunOutcome {
    /// The role the device played.
    pub role: DeviceRole,
    /// Sending side (the device when it sends).
    pub tx: Side,
    /// Receiving side.
    pub rx: Side,
    /// SHA-256 verdict of what the receiving side holds against the input.
    pub integrity: Integrity,
    /// Wire bytes of the transfer direction and the link's utilisation.
    pub link: LinkStats,
    /// The device's perfkit snapshot (times in ns; `cum_cycles` in cycles).
    pub device_stages: Stages,
    /// The device's counters (errors, messages, ...), by name.
    pub device_counters: BTreeMap<String, u64>,
    /// The device's SUMMARY status text (`complete`, ...).
    pub device_status: String,
    /// The device's CPU clock (cycles per second).
    pub device_cpu_hz: u64,
    /// Time the whole run took: virtual seconds on the emulator.
    pub run_seconds: f64,
}

/// Runs one transfer between the host and the device.
pub fn run(cfg: &PicoRunConfig<'_>) -> Result<PicoRunOutcome, Error> {
    cfg.validate()?;
    match &cfg.target {
        Target::Emulator { runner } => driver::run_emulated(cfg, runner),
        #[cfg(feature = "probe")]
        Target::Hardware { probe, serial } => hardware::run(cfg, probe.as_deref(), serial),
        #[cfg(not(feature = "probe"))]
        Target::Hardware { .. } => Err(Error::new(ErrorKind::Setup(
            "target = \"hardware\" needs perfkit-pico built with the `probe` feature".into(),
        ))),
    }
}

/// An error from a run.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A tool, package or built file is missing (names the setup script).
    Setup(String),
    /// A bad setting.
    Config {
        /// The setting.
        key: &'static str,
        /// Why it is bad.
        message: String,
    },
    /// Reading or writing a file.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The device or emulator misbehaved (stopped, timed out, bad report).
    Device(String),
    /// The run's policy stopped it: the cancel flag or `timeout_s`.
    Stopped(perfkit_engine::Stop),
}

impl Error {
    /// Wraps a kind.
    pub fn new(kind: ErrorKind) -> Self {
        Error { kind }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::new(ErrorKind::Io {
            path: path.to_owned(),
            source,
        })
    }

    pub(crate) fn device(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Device(msg.into()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Setup(m) => write!(f, "{m}"),
            ErrorKind::Config { key, message } => write!(f, "pico run setting `{key}`: {message}"),
            ErrorKind::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ErrorKind::Device(m) => write!(f, "device: {m}"),
            ErrorKind::Stopped(s) => s.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings only: nothing here starts the emulator.
    fn field(role: DeviceRole) -> PicoRunConfig<'static> {
        let runner = PathBuf::from("runner.mjs");
        let target = Target::Emulator { runner };
        PicoRunConfig::field_defaults(role, target, "fw.elf".into(), "in.jpg".into())
    }

    #[test]
    fn validate_names_the_bad_key() {
        let ok = field(DeviceRole::Sender);
        assert!(ok.validate().is_ok());
        let key_of = |c: PicoRunConfig<'_>| match c.validate().unwrap_err().kind {
            ErrorKind::Config { key, .. } => key,
            k => panic!("{k:?}"),
        };
        assert_eq!(
            key_of(PicoRunConfig {
                block_size: 0,
                ..ok.clone()
            }),
            "block_size"
        );
        assert_eq!(
            key_of(PicoRunConfig {
                block_size: 250,
                ..ok.clone()
            }),
            "block_size"
        );
        assert_eq!(
            key_of(PicoRunConfig {
                baud: 9600,
                ..ok.clone()
            }),
            "baud"
        );
        assert_eq!(
            key_of(PicoRunConfig {
                repeats: 256,
                ..ok.clone()
            }),
            "repeats"
        );
        assert_eq!(
            key_of(PicoRunConfig {
                throttle_pps: 70_000,
                ..ok.clone()
            }),
            "throttle_pps"
        );
        assert_eq!(
            key_of(PicoRunConfig {
                timeout_s: f64::NAN,
                ..ok.clone()
            }),
            "timeout_s"
        );
        assert_eq!(
            key_of(PicoRunConfig {
                start_meta: 1 << 16,
                ..ok
            }),
            "start_meta"
        );
    }

    #[cfg(not(feature = "probe"))]
    #[test]
    fn hardware_without_probe_feature_is_a_setup_error() {
        let cfg = PicoRunConfig {
            target: Target::Hardware {
                probe: None,
                serial: "/dev/null".into(),
            },
            ..field(DeviceRole::Sender)
        };
        let e = run(&cfg).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Setup(_)), "{e}");
        assert!(e.to_string().contains("probe"));
    }
}
