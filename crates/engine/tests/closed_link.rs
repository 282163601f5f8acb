//! A byte link the peer closes part-way: what `drive::send` reports.

use std::time::Duration;

use perfkit_engine::{drive, Error, Policy, TxPump, WallClock};
use perfkit_link::{ByteLink, ErrorKind, LinkStats, ReadOutcome};
use perfkit_stack::{Framing, MemorySource, Sender, SenderConfig};

/// Takes `accept` writes whole, then reports the peer gone.
struct ClosesAfter {
    accept: usize,
    writes: usize,
    written: u64,
}

impl ByteLink for ClosesAfter {
    fn write(&mut self, bytes: &[u8]) -> perfkit_link::Result<()> {
        if self.writes == self.accept {
            return Err(perfkit_link::Error::new(ErrorKind::Closed));
        }
        self.writes += 1;
        self.written += bytes.len() as u64;
        Ok(())
    }
    fn read(&mut self, _: &mut [u8], _: Duration) -> perfkit_link::Result<ReadOutcome> {
        unreachable!("the sender only writes")
    }
    fn stats(&self) -> LinkStats {
        LinkStats::default()
    }
}

struct Sent {
    result: Result<u64, Error>,
    writes: usize,
    written: u64,
    framed: perfkit_stack::TransferStats,
}

/// Sends 200 KB of 50-byte blocks, each twice, over a link that takes
/// `accept` writes.
fn send(accept: usize) -> Sent {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sc = SenderConfig {
        block_size: 50,
        repeats: 1,
        ..SenderConfig::default()
    };
    let mut tx = Sender::new(MemorySource::new(&data, b"f.bin"), sc).unwrap();
    let mut link = ClosesAfter {
        accept,
        writes: 0,
        written: 0,
    };
    let mut pump = TxPump::framed(&mut tx, Framing::Dttk);
    let result = drive::send(
        &WallClock::start(),
        &Policy::seconds(30.0),
        &mut pump,
        &mut link,
    );
    Sent {
        result,
        writes: link.writes,
        written: link.written,
        framed: *tx.stats(),
    }
}

#[test]
fn a_closed_link_reports_what_was_written_not_what_was_framed() {
    // Everything: the reference counts.
    let all = send(usize::MAX);
    assert_eq!(all.result.unwrap(), all.written);
    assert_eq!(all.framed.blocks, 2 * 4000);
    assert!(all.writes > 4, "{} writes", all.writes);
    // Closed after each number of writes short of all: the counts stop at
    // the last write taken, short of what the sender had framed for the
    // refused one (they used to include it).
    for accept in 0..all.writes {
        let r = send(accept);
        let Err(Error::Closed {
            wire,
            whole_file,
            sent,
        }) = r.result
        else {
            panic!("after {accept} writes: {:?}", r.result)
        };
        assert_eq!(wire, r.written, "after {accept} writes");
        assert!(sent.blocks < r.framed.blocks, "{sent:?} {:?}", r.framed);
        assert!(sent.bytes < r.framed.bytes);
        // 50-byte blocks in frames of at most 64 bytes: the blocks counted
        // are the ones in the bytes written.
        assert!(sent.bytes <= wire && wire <= 64 * (sent.blocks + 8));
        assert!(!whole_file || sent.blocks >= 4000, "{sent:?}");
        if accept == 0 {
            assert_eq!((wire, sent.blocks), (0, 0));
        }
    }
}
