//! In-process links: one memory buffer shared by a sender and a receiver that
//! a runner schedules cooperatively on one thread. No threads, no locks: the
//! runner calls the sender, then the receiver, then the sender again.

use std::collections::VecDeque;
use std::time::Duration;

use crate::{ByteLink, Error, ErrorKind, LinkStats, PacketLink, ReadOutcome, Result};

/// A packet loopback: what is sent is queued, in order, for `recv`.
///
/// Packets over the MTU are refused with [`ErrorKind::TooLarge`]. With a
/// capacity (in packets), a send to a full queue is refused with
/// [`ErrorKind::Full`] and nothing is queued, so the runner lets the
/// receiver run and retries; nothing is lost silently.
#[derive(Debug)]
pub struct Loopback {
    queue: VecDeque<Vec<u8>>,
    /// Spent packet buffers, reused so a long run does not allocate per packet.
    spare: Vec<Vec<u8>>,
    mtu: usize,
    capacity: usize,
    stats: LinkStats,
}

impl Loopback {
    /// An unbounded loopback carrying packets of at most `mtu` bytes.
    pub fn new(mtu: usize) -> Self {
        Self::with_capacity(mtu, usize::MAX)
    }

    /// A loopback holding at most `capacity` packets at a time.
    pub fn with_capacity(mtu: usize, capacity: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            spare: Vec::new(),
            mtu,
            capacity: capacity.max(1),
            stats: LinkStats::default(),
        }
    }

    /// Packets waiting to be received.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

impl PacketLink for Loopback {
    fn send(&mut self, packet: &[u8]) -> Result<()> {
        self.stats.check_mtu(packet.len(), self.mtu)?;
        if self.queue.len() >= self.capacity {
            return Err(Error::new(ErrorKind::Full));
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        self.queue.push_back(buf);
        self.stats.sent(packet.len());
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], _timeout: Duration) -> Result<Option<usize>> {
        // Waiting cannot help: the sender runs on this same thread.
        let Some(packet) = self.queue.pop_front() else {
            return Ok(None);
        };
        let len = packet.len();
        let result = if len > buf.len() {
            self.stats.dropped += 1;
            Err(Error::new(ErrorKind::BufferTooSmall {
                len,
                buf: buf.len(),
            }))
        } else {
            buf[..len].copy_from_slice(&packet);
            self.stats.received(len);
            Ok(Some(len))
        };
        self.spare.push(packet);
        result
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

/// A byte-stream loopback: writes append to one buffer, reads take from it.
///
/// `max_chunk` limits how much one read returns, so a deframer meets the
/// stream in pieces as it would on a pipe.
#[derive(Debug, Default)]
pub struct ByteLoopback {
    buf: VecDeque<u8>,
    max_chunk: Option<usize>,
    closed: bool,
    stats: LinkStats,
}

impl ByteLoopback {
    /// An unbounded byte loopback.
    pub fn new() -> Self {
        Self::default()
    }

    /// A byte loopback whose reads return at most `max_chunk` bytes.
    pub fn with_max_chunk(max_chunk: usize) -> Self {
        Self {
            max_chunk: Some(max_chunk.max(1)),
            ..Self::default()
        }
    }

    /// Ends the stream: once the buffer is drained, reads return [`ReadOutcome::Eof`].
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Bytes waiting to be read.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

impl ByteLink for ByteLoopback {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if self.closed {
            return Err(Error::new(ErrorKind::Closed));
        }
        self.buf.extend(bytes);
        self.stats.sent(bytes.len());
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], _timeout: Duration) -> Result<ReadOutcome> {
        if self.buf.is_empty() {
            return Ok(if self.closed {
                ReadOutcome::Eof
            } else {
                ReadOutcome::Timeout
            });
        }
        let limit = self.max_chunk.unwrap_or(usize::MAX);
        let n = buf.len().min(self.buf.len()).min(limit);
        if n == 0 {
            return Ok(ReadOutcome::Timeout);
        }
        for (dst, src) in buf.iter_mut().zip(self.buf.drain(..n)) {
            *dst = src;
        }
        self.stats.received(n);
        Ok(ReadOutcome::Data(n))
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_keep_order_and_boundaries() {
        let mut link = Loopback::new(16);
        link.send(b"one").unwrap();
        link.send(b"").unwrap();
        link.send(b"three").unwrap();
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        while let Some(n) = link.recv(&mut buf, Duration::ZERO).unwrap() {
            got.push(buf[..n].to_vec());
        }
        assert_eq!(got, vec![b"one".to_vec(), vec![], b"three".to_vec()]);
        let s = link.stats();
        assert_eq!(
            (s.packets_out, s.packets_in, s.bytes_out, s.bytes_in),
            (3, 3, 8, 8)
        );
    }

    #[test]
    fn over_mtu_is_refused_not_truncated() {
        let mut link = Loopback::new(4);
        let err = link.send(b"12345").unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::TooLarge { len: 5, mtu: 4 }));
        assert_eq!(link.queued(), 0);
        assert_eq!(link.stats().oversize, 1);
        link.send(b"1234").unwrap();
        assert_eq!(link.queued(), 1);
    }

    #[test]
    fn full_queue_refuses_until_receiver_runs() {
        let mut link = Loopback::with_capacity(8, 2);
        link.send(b"a").unwrap();
        link.send(b"b").unwrap();
        assert!(matches!(
            link.send(b"c").unwrap_err().kind(),
            ErrorKind::Full
        ));
        let mut buf = [0u8; 8];
        assert_eq!(link.recv(&mut buf, Duration::ZERO).unwrap(), Some(1));
        link.send(b"c").unwrap();
        assert_eq!(link.stats().packets_out, 3);
    }

    #[test]
    fn small_receive_buffer_drops_and_counts() {
        let mut link = Loopback::new(8);
        link.send(b"12345678").unwrap();
        let mut buf = [0u8; 4];
        let err = link.recv(&mut buf, Duration::ZERO).unwrap_err();
        assert!(matches!(
            err.kind(),
            ErrorKind::BufferTooSmall { len: 8, buf: 4 }
        ));
        assert_eq!(link.stats().dropped, 1);
        assert_eq!(link.recv(&mut buf, Duration::ZERO).unwrap(), None);
    }

    #[test]
    fn byte_loopback_chunks_and_eof() {
        let mut link = ByteLoopback::with_max_chunk(3);
        link.write(b"abcdefgh").unwrap();
        link.close();
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        loop {
            match link.read(&mut buf, Duration::ZERO).unwrap() {
                ReadOutcome::Data(n) => {
                    assert!(n <= 3);
                    got.extend_from_slice(&buf[..n]);
                }
                ReadOutcome::Eof => break,
                ReadOutcome::Timeout => panic!("closed link must report EOF"),
            }
        }
        assert_eq!(got, b"abcdefgh");
        assert!(link.write(b"x").unwrap_err().is_closed());
    }
}
