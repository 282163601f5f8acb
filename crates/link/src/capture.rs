//! Capture of everything that crosses a link, for inspecting a run.
//!
//! One text line per write/send or read/recv, in order, with the time since
//! the capture started:
//!
//! ```text
//! <nanoseconds> <tx|rx> <length> <hex bytes>
//! ```
//!
//! Plain text is larger than pcap, but it greps and diffs, and a byte stream
//! (pipe, serial) has no packets for pcap to hold anyway.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{ByteLink, Error, LinkStats, PacketLink, ReadOutcome, Result};

/// A link that records its traffic to a writer.
pub struct Capture<L> {
    inner: L,
    out: Box<dyn Write + Send>,
    start: Instant,
    line: String,
}

impl<L: std::fmt::Debug> std::fmt::Debug for Capture<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<L> Capture<L> {
    /// Records `inner`'s traffic to a new file at `path`.
    pub fn create(inner: L, path: &Path) -> Result<Self> {
        let file = File::create(path)
            .map_err(|e| Error::io(format!("creating capture file {}", path.display()), e))?;
        Ok(Self::new(inner, Box::new(BufWriter::new(file))))
    }

    /// Records `inner`'s traffic to `out`.
    pub fn new(inner: L, out: Box<dyn Write + Send>) -> Self {
        Self {
            inner,
            out,
            start: Instant::now(),
            line: String::new(),
        }
    }

    /// The wrapped link.
    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// Flushes the capture and returns the wrapped link.
    pub fn into_inner(mut self) -> Result<L> {
        self.flush_out()?;
        Ok(self.inner)
    }

    fn flush_out(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io("flushing capture", e))
    }

    fn record(&mut self, dir: &str, bytes: &[u8]) -> Result<()> {
        use std::fmt::Write as _;
        self.line.clear();
        let ns = self.start.elapsed().as_nanos();
        let _ = write!(self.line, "{ns} {dir} {} ", bytes.len());
        for b in bytes {
            let _ = write!(self.line, "{b:02x}");
        }
        self.line.push('\n');
        self.out
            .write_all(self.line.as_bytes())
            .map_err(|e| Error::io("writing capture", e))
    }
}

impl<L: PacketLink> PacketLink for Capture<L> {
    fn send(&mut self, packet: &[u8]) -> Result<()> {
        self.inner.send(packet)?;
        self.record("tx", packet)
    }
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
        let got = self.inner.recv(buf, timeout)?;
        if let Some(n) = got {
            self.record("rx", &buf[..n])?;
        }
        Ok(got)
    }
    fn mtu(&self) -> usize {
        self.inner.mtu()
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()?;
        self.flush_out()
    }
    fn stats(&self) -> LinkStats {
        self.inner.stats()
    }
}

impl<L: ByteLink> ByteLink for Capture<L> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.inner.write(bytes)?;
        self.record("tx", bytes)
    }
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<ReadOutcome> {
        let got = self.inner.read(buf, timeout)?;
        if let ReadOutcome::Data(n) = got {
            self.record("rx", &buf[..n])?;
        }
        Ok(got)
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()?;
        self.flush_out()
    }
    fn stats(&self) -> LinkStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Loopback;

    #[test]
    fn records_both_directions_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.txt");
        let mut link = Capture::create(Loopback::new(16), &path).unwrap();
        link.send(&[0x01, 0xab]).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(link.recv(&mut buf, Duration::ZERO).unwrap(), Some(2));
        link.into_inner().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let fields: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split(' ').skip(1).collect())
            .collect();
        assert_eq!(
            fields,
            vec![vec!["tx", "2", "01ab"], vec!["rx", "2", "01ab"]]
        );
    }
}
