//! A byte link over a real serial device (or one end of a pty pair), 8N1,
//! no flow control, through the `serialport` crate.
//!
//! The device is non-blocking while the link holds it: a write takes what
//! the driver has room for, and waits for more with poll(2) until the write
//! time-out. A blocking write(2) waits until all its bytes are taken, so a
//! device nobody drains (a pty whose other end is not read) held it for
//! ever, past any time-out; poll's "writable" means some room, not room for
//! the whole write.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use serialport::{DataBits, FlowControl, Parity, SerialPort, StopBits, TTYPort};

use crate::pipe::{write_deadline, DEFAULT_WRITE_TIMEOUT};
use crate::sys::{poll_fd, Ready};
use crate::{ByteLink, Error, ErrorKind, LinkStats, ReadOutcome, Result};

/// A serial device at a fixed baud rate, 8 data bits, no parity, 1 stop bit.
pub struct SerialLink {
    port: TTYPort,
    path: String,
    /// The read timeout currently set on the port (each change is a
    /// syscall-free field write in serialport, but keep it explicit).
    timeout: Duration,
    write_timeout: Duration,
    write_deadline: Option<Instant>,
    stats: LinkStats,
}

impl std::fmt::Debug for SerialLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialLink")
            .field("path", &self.path)
            .field("baud", &self.baud())
            .field("stats", &self.stats)
            .finish()
    }
}

impl SerialLink {
    /// Opens `path` at `baud`, 8N1, no flow control.
    pub fn open(path: &str, baud: u32) -> Result<Self> {
        if baud == 0 {
            return Err(Error::config("baud", "must be positive"));
        }
        let port = serialport::new(path, baud)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::None)
            .timeout(Duration::ZERO)
            .open_native()
            .map_err(|source| {
                Error::new(ErrorKind::Serial {
                    path: path.to_owned(),
                    source,
                })
            })?;
        Self::from_port(port, path.to_owned())
    }

    /// Two connected ends of a fresh pseudo-terminal pair (for tests and for
    /// bridging an emulator), both raw, 8N1.
    pub fn pair() -> Result<(Self, Self)> {
        let (a, b) = TTYPort::pair().map_err(|source| {
            Error::new(ErrorKind::Serial {
                path: "<pty pair>".to_owned(),
                source,
            })
        })?;
        let name = |p: &TTYPort| p.name().unwrap_or_else(|| "<pty>".to_owned());
        let (na, nb) = (name(&a), name(&b));
        Ok((Self::from_port(a, na)?, Self::from_port(b, nb)?))
    }

    fn from_port(port: TTYPort, path: String) -> Result<Self> {
        let fd = port.as_raw_fd();
        // SAFETY: fcntl on the descriptor the port owns; the result is checked.
        let ok = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
        };
        if !ok {
            return Err(Error::io(
                format!("making {path} non-blocking"),
                io::Error::last_os_error(),
            ));
        }
        Ok(Self {
            port,
            path,
            timeout: Duration::ZERO,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            write_deadline: None,
            stats: LinkStats::default(),
        })
    }

    /// The device path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The configured baud rate (0 if the device cannot say).
    pub fn baud(&self) -> u32 {
        self.port.baud_rate().unwrap_or(0)
    }

    /// Sets how long a write may wait for the device to take the bytes.
    pub fn set_write_timeout(&mut self, timeout: Duration) {
        self.write_timeout = timeout;
    }

    /// Sets when every write must have ended, whatever its time-out: the
    /// run's deadline (see [`crate::PipeLink::set_write_deadline`]).
    pub fn set_write_deadline(&mut self, deadline: Option<Instant>) {
        self.write_deadline = deadline;
    }

    fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        if self.timeout != timeout {
            self.port.set_timeout(timeout).map_err(|source| {
                Error::new(ErrorKind::Serial {
                    path: self.path.clone(),
                    source,
                })
            })?;
            self.timeout = timeout;
        }
        Ok(())
    }
}

impl ByteLink for SerialLink {
    fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        let total = bytes.len();
        // Includes waiting for room: a device that drains slowly shows up here.
        let _measure = perfkit::span!("link.serial.write", bytes = total);
        let started = Instant::now();
        let (deadline, run_ends) = write_deadline(self.write_timeout, self.write_deadline);
        let fd = self.port.as_raw_fd();
        while !bytes.is_empty() {
            // SAFETY: write(2) of a live slice to the descriptor the port owns.
            let rc = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
            if rc > 0 {
                bytes = &bytes[rc as usize..];
                continue;
            }
            if rc == 0 {
                return Err(Error::new(ErrorKind::Closed));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                // Full: wait for room, no longer than the deadline.
                io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match poll_fd(fd, libc::POLLOUT, left)
                        .map_err(|e| Error::io(format!("waiting to write to {}", self.path), e))?
                    {
                        Ready::Yes => {}
                        Ready::HangUp => return Err(Error::new(ErrorKind::Closed)),
                        Ready::No if run_ends => {
                            return Err(Error::new(ErrorKind::TimedOut {
                                what: format!(
                                    "the run's deadline passed while {} bytes waited for {} to take them",
                                    bytes.len(),
                                    self.path
                                ),
                            }))
                        }
                        Ready::No => {
                            return Err(Error::new(ErrorKind::TimedOut {
                                what: format!(
                                    "{} had no room for {} more bytes in {:.1} s (is anything reading it?)",
                                    self.path,
                                    bytes.len(),
                                    started.elapsed().as_secs_f64()
                                ),
                            }))
                        }
                    }
                }
                _ => return Err(Error::io(format!("writing to {}", self.path), e)),
            }
        }
        self.stats.sent(total);
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<ReadOutcome> {
        if buf.is_empty() {
            return Ok(ReadOutcome::Timeout);
        }
        self.set_timeout(timeout)?;
        match self.port.read(buf) {
            Ok(0) => Ok(ReadOutcome::Eof),
            Ok(n) => {
                self.stats.received(n);
                Ok(ReadOutcome::Data(n))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(ReadOutcome::Timeout)
            }
            // serialport reports a hung-up device (the other pty end closed) as BrokenPipe.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ReadOutcome::Eof),
            Err(e) => Err(Error::io(format!("reading from {}", self.path), e)),
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.port
            .flush()
            .map_err(|e| Error::io(format!("flushing {}", self.path), e))
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

/// The `serial` link kind: two serial devices wired together, or a fresh
/// pty pair when none are named.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialSettings {
    /// Line rate, bits per second.
    pub baud: u32,
    /// Bits per character on the wire (8N1 = 10), for the line's capacity.
    pub bits_per_char: u32,
    /// The sender's device.
    pub device: Option<String>,
    /// The receiver's device, wired to `device`.
    pub peer_device: Option<String>,
    /// Largest read, bytes.
    pub chunk: usize,
}

impl crate::registry::LinkKind for SerialSettings {
    const NAME: &'static str = "serial";
    const HELP: &'static str = "a real serial device, or a pty pair when none is named";
    const ACROSS_HOSTS: bool = false;
    const PARAMS: &'static [crate::registry::LinkParam] = {
        use crate::registry::{LinkParam as P, ParamDefault as D, ParamType as T};
        &[
            P {
                key: "baud",
                ty: T::Int(300, 16_000_000),
                default: D::Int(115_200),
                help: "line rate, bits per second",
            },
            P {
                key: "bits_per_char",
                ty: T::Int(7, 13),
                default: D::Int(10),
                help: "bits on the wire per byte (8N1 = 10)",
            },
            P {
                key: "device",
                ty: T::Str,
                default: D::Unset,
                help: "the sender's serial device (a pty pair is made when unset)",
            },
            P {
                key: "peer_device",
                ty: T::Str,
                default: D::Unset,
                help: "the receiver's serial device (wired to device)",
            },
            P {
                key: "chunk",
                ty: T::Int(1, 1 << 24),
                default: D::Int(65536),
                help: "largest read, bytes",
            },
        ]
    };

    fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        if self.device.is_some() != self.peer_device.is_some() {
            return Err((
                "peer_device",
                "give both device and peer_device (two wired ports), or neither (a pty pair is made)"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    fn chunk(&self) -> usize {
        self.chunk
    }

    fn capacity_bytes_per_s(&self) -> Option<f64> {
        Some(f64::from(self.baud) / f64::from(self.bits_per_char.max(1)))
    }

    /// Serial devices are local: both ends open here.
    fn open(&self) -> Result<crate::registry::Ends> {
        use crate::registry::End;
        let (tx, rx) = match (&self.device, &self.peer_device) {
            (Some(d), Some(p)) => (
                SerialLink::open(d, self.baud)?,
                SerialLink::open(p, self.baud)?,
            ),
            _ => SerialLink::pair()?,
        };
        Ok(crate::registry::Ends {
            tx: End::Bytes(Box::new(tx)),
            rx: End::Bytes(Box::new(rx)),
            chunk: self.chunk(),
            capacity_bytes_per_s: self.capacity_bytes_per_s(),
        })
    }
}
