//! A real board (cargo feature `probe`): flash the ELF with probe-rs, reset,
//! run the transfer over a serial device, read the device's report over RTT
//! and the received image out of its RAM through the probe.
//!
//! Time here is the host's monotonic clock (the engine's [`WallClock`]),
//! expressed in the same 125 MHz cycle units as the emulator's virtual time
//! so both paths share the host logic (the private `driver` module), and the
//! same pumps and policy.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use perfkit_engine::{Clock, Next, Policy, TxPump, WallClock};
use perfkit_stack::Framing;
use probe_rs::flashing::{self, ElfLoader};
use probe_rs::probe::list::Lister;
use probe_rs::probe::DebugProbeSelector;
use probe_rs::rtt::{Rtt, ScanRegion};
use probe_rs::{MemoryInterface, Permissions, Session};

use crate::driver::{self, config_message, control_frame, DeviceSide};
use crate::elf::Firmware;
use crate::proto::{self, DeviceRole, ReportCollector};
use crate::{Error, ErrorKind, PicoRunConfig, PicoRunOutcome};

/// probe-rs's name for the chip.
pub const CHIP: &str = "RP2040";

/// Parses a probe selector (`VID:PID` or `VID:PID:SERIAL`, hex).
pub fn parse_selector(s: &str) -> Result<DebugProbeSelector, Error> {
    s.parse::<DebugProbeSelector>().map_err(|e| {
        Error::new(ErrorKind::Config {
            key: "probe",
            message: format!("`{s}` is not a probe selector (VID:PID[:SERIAL]): {e}"),
        })
    })
}

fn probe_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::device(format!("{what}: {e}"))
}

fn open_session(probe: Option<&str>) -> Result<Session, Error> {
    let lister = Lister::new();
    let probe = match probe {
        Some(sel) => lister
            .open(parse_selector(sel)?)
            .map_err(|e| probe_err("opening the probe", e))?,
        None => {
            let all = lister.list_all();
            match all.as_slice() {
                [one] => one.open().map_err(|e| probe_err("opening the probe", e))?,
                [] => {
                    return Err(Error::device(
                        "no debug probe found (is it plugged in and readable?)",
                    ))
                }
                _ => {
                    return Err(Error::new(ErrorKind::Config {
                        key: "probe",
                        message: format!(
                            "{} probes found; choose one with `probe = \"VID:PID:SERIAL\"`",
                            all.len()
                        ),
                    }))
                }
            }
        }
    };
    probe
        .attach(CHIP, Permissions::default())
        .map_err(|e| probe_err("attaching to the RP2040", e))
}

/// Reads what the board sent, if anything, within the port's timeout.
fn pump(
    port: &mut dyn serialport::SerialPort,
    dev: &mut DeviceSide<'_>,
    clock: &WallClock,
) -> Result<(), Error> {
    let mut buf = [0u8; 1024];
    match port.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(n) => {
            // Bytes arrive in chunks; give them the time they were read.
            dev.feed(driver::ns_to_cycles_ceil(clock.now_ns()), &buf[..n]);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(()),
        Err(e) => Err(probe_err("reading the serial device", e)),
    }
}

/// Listens until `done`, checking the policy before each read; a handshake
/// also has its own `limit`.
fn wait(
    port: &mut dyn serialport::SerialPort,
    dev: &mut DeviceSide<'_>,
    clock: &WallClock,
    policy: &Policy<'_>,
    limit: Option<Duration>,
    what: &str,
    done: impl Fn(&DeviceSide<'_>) -> bool,
) -> Result<(), Error> {
    let start = Instant::now();
    while !done(dev) {
        policy.check(clock.now_ns())?;
        if let Some(limit) = limit.filter(|l| start.elapsed() > *l) {
            return Err(Error::device(format!(
                "no {what} from the board within {limit:?}"
            )));
        }
        pump(port, dev, clock)?;
    }
    Ok(())
}

/// Reads the report the firmware left in its RTT up channel 0.
fn read_rtt_report(session: &mut Session, fw: &Firmware) -> Result<ReportCollector, Error> {
    let mut core = session.core(0).map_err(|e| probe_err("core 0", e))?;
    let region = match fw.rtt {
        Some(addr) => ScanRegion::Exact(addr as u64),
        None => ScanRegion::Ram,
    };
    let mut rtt =
        Rtt::attach_region(&mut core, &region).map_err(|e| probe_err("attaching RTT", e))?;
    let ch = rtt
        .up_channel(0)
        .ok_or_else(|| Error::device("the firmware has no RTT up channel 0"))?;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = ch
            .read(&mut core, &mut buf)
            .map_err(|e| probe_err("reading RTT", e))?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    Ok(proto::decode_report_stream(&bytes))
}

pub(crate) fn run(
    cfg: &PicoRunConfig<'_>,
    probe: Option<&str>,
    serial: &Path,
) -> Result<PicoRunOutcome, Error> {
    let fw = Firmware::load(&cfg.elf)?;
    let input = std::fs::read(&cfg.input).map_err(|e| Error::io(&cfg.input, e))?;
    let mut port = serialport::new(serial.to_string_lossy(), cfg.baud)
        .timeout(Duration::from_millis(2))
        .open()
        .map_err(|e| Error::io(serial, std::io::Error::other(e)))?;
    let mut session = open_session(probe)?;
    flashing::download_file(&mut session, &cfg.elf, ElfLoader(Default::default()))
        .map_err(|e| probe_err("flashing", e))?;
    let _ = port.clear(serialport::ClearBuffer::All);
    session
        .core(0)
        .and_then(|mut c| c.reset())
        .map_err(|e| probe_err("resetting", e))?;
    // The run begins at the reset.
    let clock = WallClock::start();
    let policy = driver::policy(cfg);
    let mut host_rx = driver::host_receiver();
    let mut dev = DeviceSide::new(cfg.baud, &mut host_rx);
    let handshake = Some(Duration::from_secs(3));
    wait(
        &mut *port,
        &mut dev,
        &clock,
        &policy,
        handshake,
        "HELLO",
        |d| d.ctl.hello.is_some(),
    )?;
    let write = |port: &mut Box<dyn serialport::SerialPort>, b: &[u8]| {
        port.write_all(b)
            .map_err(|e| probe_err("writing the serial device", e))
    };
    write(&mut port, &control_frame(0, &config_message(cfg)))?;
    wait(
        &mut *port,
        &mut dev,
        &clock,
        &policy,
        handshake,
        "READY",
        |d| d.ctl.ready,
    )?;

    let mut host_tx = None;
    if cfg.role == DeviceRole::Receiver {
        let mut sender = driver::host_sender(cfg, &input)?;
        let mut tx = TxPump::framed(&mut sender, Framing::Dttk);
        let start = Instant::now();
        let mut wire_bytes = 0u64;
        loop {
            pump(&mut *port, &mut dev, &clock)?;
            // One clock read serves the policy and the sender.
            let now_ns = clock.now_ns();
            policy.check(now_ns)?;
            match tx.poll(now_ns).map_err(driver::host_sender_error)? {
                Next::Send(frame) => {
                    write(&mut port, frame)?;
                    let _ = port.flush();
                    wire_bytes += frame.len() as u64;
                }
                // At most 1 ms, so the board's bytes are read meanwhile.
                Next::WaitUntil(t) => clock.wait_until_ns(t.min(now_ns + 1_000_000)),
                Next::Done => break,
            }
        }
        let stats = *sender.stats();
        host_tx = Some((
            crate::Side::new(start.elapsed().as_secs_f64(), stats.blocks, stats.bytes),
            wire_bytes,
        ));
        let end = Instant::now();
        let mut finished = false;
        while !dev.ctl.report.is_done() {
            policy.check(clock.now_ns())?;
            if !finished && end.elapsed() > Duration::from_secs(1) {
                write(&mut port, &control_frame(1, &proto::Message::Finish))?;
                finished = true;
            }
            pump(&mut *port, &mut dev, &clock)?;
        }
    } else {
        wait(&mut *port, &mut dev, &clock, &policy, None, "report", |d| {
            d.ctl.report.is_done()
        })?;
    }
    // The RTT copy of the report stands in when the UART one lost a message.
    if dev.ctl.report.check().is_err() {
        let rtt = read_rtt_report(&mut session, &fw)?;
        if rtt.check().is_ok() {
            dev.ctl.report = rtt;
        }
    }
    let mut session = session;
    driver::finish(cfg, &input, dev, host_tx, |addr, len| {
        let mut core = session.core(0).map_err(|e| probe_err("core 0", e))?;
        let mut buf = vec![0u8; len as usize];
        core.read(addr as u64, &mut buf)
            .map_err(|e| probe_err("reading device RAM", e))?;
        Ok(buf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_or_name_the_key() {
        assert!(parse_selector("2e8a:000c").is_ok());
        assert!(parse_selector("2e8a:000c:E6614C311B4D3A2F").is_ok());
        let e = parse_selector("not a probe").unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Config { key: "probe", .. }),
            "{e}"
        );
    }
}
