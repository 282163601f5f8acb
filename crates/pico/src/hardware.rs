//! A real board (cargo feature `probe`): flash the ELF with probe-rs, reset,
//! run the transfer over a serial device, read the device's report over RTT
//! and the received image out of its RAM through the probe.
//!
//! Time here is the host's monotonic clock, expressed in the same 125 MHz
//! cycle units as the emulator's virtual time so both paths share the host
//! logic (the private `driver` module).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use perfkit_stack::{wire, Framing, MemorySource, Poll, Receiver, Sender, VecSink};
use probe_rs::flashing::{self, ElfLoader};
use probe_rs::probe::list::Lister;
use probe_rs::probe::DebugProbeSelector;
use probe_rs::rtt::{Rtt, ScanRegion};
use probe_rs::{MemoryInterface, Permissions, Session};

use crate::driver::{self, config_message, control_frame, DeviceSide};
use crate::elf::Firmware;
use crate::emulator::CPU_HZ;
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

fn now_cycles(t0: Instant) -> u64 {
    (t0.elapsed().as_nanos() * CPU_HZ as u128 / 1_000_000_000) as u64
}

fn pump(
    port: &mut dyn serialport::SerialPort,
    dev: &mut DeviceSide,
    t0: Instant,
) -> Result<(), Error> {
    let mut buf = [0u8; 1024];
    match port.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(n) => {
            // Bytes arrive in chunks; give them the time they were read.
            dev.feed(now_cycles(t0), &buf[..n]);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(()),
        Err(e) => Err(probe_err("reading the serial device", e)),
    }
}

fn wait(
    port: &mut dyn serialport::SerialPort,
    dev: &mut DeviceSide,
    t0: Instant,
    limit: Duration,
    what: &str,
    done: impl Fn(&DeviceSide) -> bool,
) -> Result<(), Error> {
    let start = Instant::now();
    while !done(dev) {
        if start.elapsed() > limit {
            return Err(Error::device(format!(
                "no {what} from the board within {limit:?}"
            )));
        }
        pump(port, dev, t0)?;
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
    cfg: &PicoRunConfig,
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
    let t0 = Instant::now();
    let receiver = (cfg.role == DeviceRole::Sender)
        .then(|| Receiver::new(0, VecSink::new(16 << 20), Framing::Dttk));
    let mut dev = DeviceSide::new(cfg.baud, receiver);
    let limit = Duration::from_secs_f64(cfg.timeout_s);
    wait(
        &mut *port,
        &mut dev,
        t0,
        Duration::from_secs(3),
        "HELLO",
        |d| d.hello.is_some(),
    )?;
    let write = |port: &mut Box<dyn serialport::SerialPort>, b: &[u8]| {
        port.write_all(b)
            .map_err(|e| probe_err("writing the serial device", e))
    };
    write(&mut port, &control_frame(0, &config_message(cfg)))?;
    wait(
        &mut *port,
        &mut dev,
        t0,
        Duration::from_secs(3),
        "READY",
        |d| d.ready,
    )?;

    let mut host_tx = None;
    if cfg.role == DeviceRole::Receiver {
        let name = cfg
            .input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut tx = Sender::new(
            MemorySource::new(&input, name.as_bytes()),
            driver::sender_config(cfg),
        )
        .map_err(|e| probe_err("host sender", e))?;
        let mut msg = [0u8; wire::MAX_MESSAGE];
        let mut framed = vec![0u8; Framing::Dttk.max_encoded_len(wire::MAX_MESSAGE)];
        let start = Instant::now();
        let mut wire_bytes = 0u64;
        loop {
            pump(&mut *port, &mut dev, t0)?;
            let now_ns = driver::cycles_to_ns(now_cycles(t0));
            match tx
                .poll(now_ns, &mut msg)
                .map_err(|e| probe_err("host sender", e))?
            {
                Poll::Message(n) => {
                    let m = Framing::Dttk
                        .encode(&msg[..n], &mut framed)
                        .map_err(|e| probe_err("framing", e))?;
                    write(&mut port, &framed[..m])?;
                    let _ = port.flush();
                    wire_bytes += m as u64;
                }
                Poll::WaitUntil(t) => std::thread::sleep(Duration::from_nanos(
                    t.saturating_sub(now_ns).min(1_000_000),
                )),
                Poll::Done => break,
            }
            if start.elapsed() > limit {
                return Err(Error::device("transfer timed out (host sending)"));
            }
        }
        let stats = *tx.stats();
        host_tx = Some((
            crate::Side::new(start.elapsed().as_secs_f64(), stats.blocks, stats.bytes),
            wire_bytes,
        ));
        let end = Instant::now();
        let mut finished = false;
        while !dev.report.is_done() {
            if !finished && end.elapsed() > Duration::from_secs(1) {
                write(&mut port, &control_frame(1, &proto::Message::Finish))?;
                finished = true;
            }
            if end.elapsed() > limit {
                return Err(Error::device("no report from the receiving board"));
            }
            pump(&mut *port, &mut dev, t0)?;
        }
    } else {
        wait(&mut *port, &mut dev, t0, limit, "report", |d| {
            d.report.is_done()
        })?;
    }
    // The RTT copy of the report stands in when the UART one lost a message.
    if dev.report.check().is_err() {
        let rtt = read_rtt_report(&mut session, &fw)?;
        if rtt.check().is_ok() {
            dev.report = rtt;
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
