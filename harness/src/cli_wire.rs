//! `perfkit send` and `perfkit recv`: the two ends of a transfer over
//! stdout/stdin (a shell pipeline) or a serial device, printing the field's
//! stats lines on stderr.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use clap::Args;
use perfkit_engine::{drive, Clock, Policy, RecvEnd, RxPump, TxPump, WallClock};
use perfkit_link::{ByteLink, PipeLink, SerialLink};
use perfkit_report::files::{self, Accept};
use perfkit_report::model::{Side, Stages};

use crate::integrity::hex;
use crate::kinds::endpoint::{self, EndReport};
use crate::spec::{FramingSpec, TransferSpec};
use crate::{CmdResult, Failure, EXIT_DATA_LOST, EXIT_OK, EXIT_RUN_FAILED};

/// Settings both ends share.
#[derive(Args, Debug)]
pub struct Common {
    /// Byte-stream framing: dttk (0xFF/0xFE stuffing) or cobs.
    #[arg(long, default_value = "dttk", value_parser = framing_arg)]
    pub framing: FramingSpec,
    /// Data channel 0..=127.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=127))]
    pub channel: u8,
    /// Use this serial device instead of stdin/stdout.
    #[arg(long, value_name = "PATH")]
    pub serial: Option<String>,
    /// Baud rate of the serial device (300..=16000000).
    #[arg(long, default_value_t = 115200, requires = "serial",
          value_parser = clap::value_parser!(u32).range(300..=16_000_000))]
    pub baud: u32,
    /// Give up after this many seconds (0.001..=86400); `send` gives a
    /// FIFO or pipe as long again to be written and closed first.
    #[arg(long, default_value_t = 600.0, value_parser = timeout_arg)]
    pub timeout_s: f64,
    /// Write this end's figures and perfkit snapshot as JSON here.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Print only errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Switch perfkit's stage recording off (the figures without the
    /// probe's cost; the stage table stays empty).
    #[arg(long)]
    pub no_stages: bool,
    /// Receiving: hash the file on the receiving thread, not on a second
    /// thread as it arrives.
    #[arg(long)]
    pub no_hash_thread: bool,
}

/// Arguments of `perfkit send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// The file to send.
    pub file: PathBuf,
    /// Payload bytes per data message (1..=249).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(1..=249))]
    pub block_size: u8,
    /// META on the first N ticks (0..=65535).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..=65535))]
    pub start_meta: u32,
    /// A META every N ticks after that (0..=65535; 0 = none after the first
    /// start-meta ticks; 1 is refused: no block would be sent).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=65535))]
    pub meta_every: u32,
    /// Extra copies of every block (0..=255).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=255))]
    pub repeats: u32,
    /// Packets per second (0 = unthrottled; at most 1e9).
    #[arg(long, default_value_t = 0.0, value_parser = pps_arg)]
    pub throttle_pps: f64,
    /// Deliberate busy-wait per packet, ns (to test regression gates; at most 1e9).
    #[arg(long, default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=1_000_000_000))]
    pub slowdown_ns: u64,
    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `perfkit recv`.
#[derive(Args, Debug)]
pub struct RecvArgs {
    /// Where to write the file once it is complete and verified.
    pub out: PathBuf,
    /// Stop when nothing arrives for this many seconds after the transfer
    /// started (0.01..=86400).
    #[arg(long, default_value_t = 5.0, value_parser = idle_arg)]
    pub idle_s: f64,
    /// Largest read from the link, bytes (1..=16777216).
    #[arg(long, default_value_t = 65536, value_parser = clap::value_parser!(u32).range(1..=1 << 24))]
    pub chunk: u32,
    #[command(flatten)]
    pub common: Common,
}

/// The transfer settings `perfkit send`'s flags give.
fn transfer(args: &SendArgs) -> TransferSpec {
    TransferSpec {
        block_size: args.block_size,
        start_meta: args.start_meta,
        meta_every: args.meta_every,
        repeats: args.repeats,
        throttle_pps: args.throttle_pps,
        slowdown_ns_per_packet: args.slowdown_ns,
        extra_work_per_packet: 0,
        framing: args.common.framing,
        channel: args.common.channel,
        input_size: 0,
        seed: 0,
        compare_cat: false,
        compare_iperf3: false,
        latency: false,
        timeout_s: args.common.timeout_s,
        stages: !args.common.no_stages,
        hash_thread: !args.common.no_hash_thread,
        mux_transfers: 1,
    }
}

/// A finite number in `lo..=hi`: durations and rates become `Duration`s
/// and sleeps, which infinities, NaN and huge values would break.
fn number_in(s: &str, lo: f64, hi: f64) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && (lo..=hi).contains(&x) => Ok(x),
        Ok(_) => Err(format!(
            "`{s}` is out of range: expected a number {lo}..={hi}"
        )),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

fn timeout_arg(s: &str) -> Result<f64, String> {
    number_in(s, 0.001, 86_400.0)
}

fn idle_arg(s: &str) -> Result<f64, String> {
    number_in(s, 0.01, 86_400.0)
}

fn pps_arg(s: &str) -> Result<f64, String> {
    let pps = number_in(s, 0.0, 1e9)?;
    if pps.fract() != 0.0 {
        return Err(format!(
            "{s} is not a whole number of packets per second (0 = unthrottled)"
        ));
    }
    Ok(pps)
}

fn framing_arg(s: &str) -> Result<FramingSpec, String> {
    match s {
        "dttk" => Ok(FramingSpec::Dttk),
        "cobs" => Ok(FramingSpec::Cobs),
        other => Err(format!("`{other}` is not one of dttk, cobs")),
    }
}

/// `--no-stages`: recording off before anything is measured (the sender
/// hashes its file first).
fn recording(common: &Common) {
    if common.no_stages {
        perfkit::set_enabled(false);
    }
}

/// Opens the link. Its writes end by `deadline`, the run's, at the latest:
/// a write waits for a reader that stalls up to its own time-out (30 s),
/// and the run's deadline is checked only between writes.
fn open(common: &Common, deadline: Option<Instant>) -> anyhow::Result<Box<dyn ByteLink>> {
    Ok(match &common.serial {
        Some(path) => {
            let mut link = SerialLink::open(path, common.baud)
                .with_context(|| format!("cannot open {path}"))?;
            link.set_write_deadline(deadline);
            Box::new(link)
        }
        None => {
            let mut link = PipeLink::stdio().map_err(|e| anyhow!("stdio: {e}"))?;
            link.set_write_deadline(deadline);
            Box::new(link)
        }
    })
}

/// The instant `timeout_s` from now (`None`: too far to say).
fn deadline_in(timeout_s: f64) -> Option<Instant> {
    Duration::try_from_secs_f64(timeout_s)
        .ok()
        .and_then(|d| Instant::now().checked_add(d))
}

fn stages() -> Stages {
    crate::run::stages_from(&perfkit::snapshot())
}

/// Refuses a `--stats-json` path no file can be written to (a folder, a
/// closed stdout, a folder that does not exist) before any work, as the
/// output itself is.
fn stats_json_target(common: &Common) -> Result<(), Failure> {
    match &common.stats_json {
        Some(p) => crate::reporting::writable(p)
            .and_then(|()| folder_exists(p))
            .map_err(|f| Failure::input(f.error.context("--stats-json"))),
        None => Ok(()),
    }
}

/// Without `--serial` the link is stdout (`send`, `fd` 1) or stdin (`recv`,
/// 0). One closed when perfkit started (`>&-`, `<&-`) has /dev/null in its
/// place (Rust's runtime puts it there): a send would throw every byte
/// away and exit 0, a receive would wait for nothing. Refused at once.
fn std_link_open(common: &Common, fd: i32) -> Result<(), Failure> {
    if common.serial.is_none() && files::closed_at_start(fd) {
        let (name, how) = if fd == 1 {
            ("stdout", ">&-")
        } else {
            ("stdin", "<&-")
        };
        return Err(Failure::input(anyhow!(
            "{name} was closed ({how}), so there is no link to {}; give it a pipe, a file \
             or --serial",
            if fd == 1 { "send on" } else { "receive from" }
        )));
    }
    Ok(())
}

/// The folder a file is to be written in must be there: it is the
/// caller's to make (a mistyped path would otherwise become folders).
fn folder_exists(path: &std::path::Path) -> Result<(), Failure> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if folder.is_dir() {
        Ok(())
    } else {
        Err(Failure::input(anyhow!(
            "{}: the folder {} does not exist",
            path.display(),
            folder.display()
        )))
    }
}

/// The file `perfkit send` sends. A FIFO or pipe has the run's time-out
/// to be written and closed: one nobody opens would otherwise hold the
/// send for ever. That is a transfer that never started (exit 3, in the
/// wording of a run that gave up); a file that cannot be read is bad input
/// (2).
fn read_input(file: &std::path::Path, limit: u64, timeout_s: f64) -> Result<Vec<u8>, Failure> {
    let read = match deadline_in(timeout_s) {
        Some(d) => files::read_limited_until(file, limit, Accept::RegularOrPipe, d),
        None => files::read_limited(file, limit, Accept::RegularOrPipe),
    };
    read.map_err(|e| {
        let timed_out = e.kind() == std::io::ErrorKind::TimedOut;
        let e = anyhow!(e).context(format!("cannot read {}", file.display()));
        if timed_out {
            let stop = perfkit_engine::Stop::TimedOut {
                after_ns: Policy::seconds(timeout_s).deadline_ns(),
            };
            Failure::run(anyhow!("{e:#}; {stop}"))
        } else {
            Failure::input(e)
        }
    })
}

/// `perfkit send`.
pub fn send(args: SendArgs) -> CmdResult {
    recording(&args.common);
    // A regular file's size is checked before reading it, so a 3 GB file
    // fails at once. Pipes are read too (`perfkit send <(make-data)`), no
    // further than the wire profile carries; devices are refused.
    let block = u64::from(args.block_size);
    if let Ok(m) = std::fs::metadata(&args.file) {
        if m.is_file() {
            crate::kinds::check_size(&args.file, m.len() as usize, block)
                .map_err(Failure::input)?;
        }
    }
    let limit = crate::kinds::max_file_size(block);
    let bytes = read_input(&args.file, limit, args.common.timeout_s)?;
    stats_json_target(&args.common)?;
    std_link_open(&args.common, 1)?;
    let t = transfer(&args);
    let name = endpoint::file_name(&args.file);
    let mut tx = endpoint::sender(&t, &bytes, &name).map_err(Failure::input)?;
    let clock = WallClock::start();
    let policy = Policy::seconds(args.common.timeout_s);
    let mut link =
        open(&args.common, deadline_in(args.common.timeout_s)).map_err(Failure::input)?;
    let mut pump = TxPump::framed(&mut tx, t.framing());
    let (wire, sent) = match drive::send(&clock, &policy, &mut pump, link.as_mut()) {
        Ok(wire) => (wire, *tx.stats()),
        // A receiver that has the whole file may go before the last
        // repeats and META ticks (`perfkit recv` does): once META and every
        // block have been written, the send has ended, not failed. Written
        // is not read: whether the file arrived is the receiver's to say.
        // The counts are of the frames written, not of those framed for
        // the write the link refused.
        Err(perfkit_engine::Error::Closed {
            wire,
            whole_file: true,
            sent,
        }) => {
            if !args.common.quiet {
                crate::errln!(
                    "perfkit send: the receiver closed the link once META and every block were \
                     written ({wire} bytes); the remaining repeats, META and END are not sent"
                );
            }
            (wire, sent)
        }
        Err(perfkit_engine::Error::Closed {
            wire,
            whole_file: false,
            ..
        }) => {
            return Err(Failure::run(anyhow!(
                "the receiver closed the link before the whole file was written \
                 ({wire} bytes written)"
            )));
        }
        // A write cut short by the run's deadline: the run gave up, in the
        // one wording a passed deadline has.
        Err(perfkit_engine::Error::Link(e)) => {
            return Err(Failure::run(match policy.check(clock.now_ns()) {
                Err(stop) => anyhow!("{stop}: {e}"),
                Ok(()) => anyhow!("{e}"),
            }));
        }
        Err(e) => return Err(Failure::run(e)),
    };
    drop(link); // closes stdout: the receiver sees the end of the stream
    let side = endpoint::side(&sent);
    if !args.common.quiet {
        crate::errln!("tx transfer: {}", side.stats_line());
        crate::err!("{}", perfkit::snapshot().text());
    }
    if let Some(p) = &args.common.stats_json {
        EndReport {
            side,
            stages: stages(),
            integrity: None,
            wire_bytes: wire,
            counters: Default::default(),
        }
        .save(p)
        .map_err(Failure::run)?;
    }
    Ok(EXIT_OK)
}

/// Why a receive ended without META, as far as its counters tell: a link
/// that carried nothing; bytes of which no message on this end's channel
/// decoded, most likely a sender with another framing or channel (or, on
/// a serial line, baud rate); or messages that did decode, the META among
/// them lost.
fn no_meta(wire: u64, rx: &endpoint::Rx, common: &Common) -> String {
    let link = &rx.counters().link;
    let failed = link.bad_lengths + link.crc_errors;
    let decoded = link.messages.saturating_sub(failed + link.other_channel);
    if wire == 0 {
        "no META arrived: nothing arrived (0 bytes)".to_owned()
    } else if decoded > 0 {
        "no META arrived, so the file's size and which blocks are missing are unknown".to_owned()
    } else if failed == 0 && link.other_channel > 0 {
        // Whole, checked messages: the framing is right, the channel not.
        format!(
            "no META arrived: {} messages arrived, none on channel {}; the sender likely \
             uses another --channel",
            link.other_channel, common.channel
        )
    } else {
        let baud = match common.serial {
            Some(_) => format!(", --baud (this end: {})", common.baud),
            None => String::new(),
        };
        format!(
            "no META arrived: {wire} bytes arrived but no message decoded on them; the \
             sender likely differs from this end in --framing (this end: {}){baud} or \
             --channel (this end: {})",
            common.framing.name(),
            common.channel
        )
    }
}

/// `perfkit recv`.
pub fn recv(args: RecvArgs) -> CmdResult {
    recording(&args.common);
    // Checked before receiving: the output's folder is the caller's to make,
    // and the output must be somewhere a file can go (not a folder).
    crate::reporting::writable(&args.out)?;
    folder_exists(&args.out)?;
    stats_json_target(&args.common)?;
    std_link_open(&args.common, 0)?;
    let mut rx = endpoint::receiver(
        args.common.channel,
        args.common.framing.framing(),
        !args.common.no_hash_thread,
    );
    let mut link = open(&args.common, None).map_err(Failure::input)?;
    let clock = WallClock::start();
    // SIGINT, SIGTERM or SIGHUP stop the receive at its next step, so a
    // signal that comes while the output is written waits for the rename:
    // no temporary file is left beside OUT (the default action killed the
    // process there), and an interrupted receive writes nothing.
    let policy = Policy::seconds(args.common.timeout_s).cancel_on(crate::interrupt::watch());
    let idle = Duration::from_secs_f64(args.idle_s);
    let (end, wire) = drive::receive(
        &clock,
        &policy,
        &mut RxPump::new(&mut rx),
        link.as_mut(),
        args.chunk as usize,
        idle,
    )
    .map_err(Failure::run)?;
    let side: Side = endpoint::rx_side(&rx);
    // The sender's SHA-256 comes in META; the receiver verified against it.
    let sent_sha = rx.meta().map(|m| hex(&m.sha256)).unwrap_or_default();
    let integrity = endpoint::integrity(&sent_sha, &rx);
    // Only a complete, verified file is written: nothing corrupted or partial lands at OUT.
    if integrity.ok {
        // A file is replaced through a temporary one, which a signal must
        // not leave behind (the flag waits for the rename). Written into
        // directly (a FIFO, a device, stdout), the write may block on
        // another process for ever: there a signal ends perfkit again. One
        // look decides both, so a FIFO that appears after it is replaced,
        // never written into with the signal still caught.
        let target = files::Target::of(&args.out)
            .map_err(|e| Failure::run(anyhow!("{}: {e}", args.out.display())))?;
        if !matches!(target, files::Target::Replace(_)) {
            crate::interrupt::default_action_again();
        }
        perfkit_report::model::write_to(&args.out, &target, rx.sink().data())
            .map_err(|e| Failure::run(anyhow!(e)))?;
    }
    if !args.common.quiet {
        crate::errln!("rx transfer: {}", side.stats_line());
        let errs: Vec<String> = side
            .errors
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        crate::errln!(
            "rx errors: {}",
            if errs.is_empty() {
                "none".into()
            } else {
                errs.join(" ")
            }
        );
        crate::err!("{}", perfkit::snapshot().text());
    }
    if let Some(p) = &args.common.stats_json {
        EndReport {
            side,
            stages: stages(),
            integrity: Some(integrity.clone()),
            wire_bytes: wire,
            counters: Default::default(),
        }
        .save(p)
        .map_err(Failure::run)?;
    }
    if integrity.ok {
        if !args.common.quiet {
            crate::errln!(
                "rx: {} complete, sha256 {} verified",
                args.out.display(),
                &integrity.sha256_received[..16]
            );
        }
        Ok(EXIT_OK)
    } else {
        // A file announced (META) but not received whole and verified is
        // data lost or corrupted (4), as `perfkit run` says of a run; a
        // transfer that failed, or never announced a file, failed (3).
        let (why, code) = match (rx.failure(), rx.meta()) {
            (Some(f), _) => (format!("the transfer failed: {f}"), EXIT_RUN_FAILED),
            (None, None) => (no_meta(wire, &rx, &args.common), EXIT_RUN_FAILED),
            (None, Some(_)) => (
                format!(
                    "{}; {}",
                    RecvEnd::why_incomplete(end),
                    crate::output::failure(&integrity)
                ),
                EXIT_DATA_LOST,
            ),
        };
        crate::errln!("perfkit: error: {why}; {} not written", args.out.display());
        Ok(code)
    }
}
