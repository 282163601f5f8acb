//! The entry point shared by the cargo-fuzz target (`fuzz/`) and the
//! property tests: arbitrary bytes through the deframer and receiver.

use crate::framing::{Deframer, Framing};
use crate::io::MemorySink;
use crate::receiver::{Event, Mux, Receiver, State};
use sha2::{Digest as _, Sha256};

/// Feed `data` to a dttk and a COBS receiver (split into chunks whose sizes
/// come from the data itself) and to a two-channel multiplexer, checking
/// the invariants that must hold for any input. Panics only if an invariant
/// is broken, which is what the fuzzer looks for.
pub fn deframe_receive(data: &[u8]) {
    let chunk = data.first().map(|&b| b as usize % 64 + 1).unwrap_or(1);
    for framing in [Framing::Dttk, Framing::Cobs] {
        let mut rx: Receiver<_, 64> = Receiver::new(0, MemorySink::new([0u8; 4096]), framing);
        let mut events = 0u64;
        for (i, c) in data.chunks(chunk).enumerate() {
            rx.on_bytes(c, i as u64, &mut |ev| {
                events += 1;
                if let Event::Block { len, .. } = ev {
                    assert!(len as usize <= crate::dttk::wire::MAX_PAYLOAD);
                }
            });
        }
        let s = rx.deframer_stats();
        assert_eq!(s.bytes, data.len() as u64);
        assert!(s.frames <= data.len() as u64 / 2 + 1);
        assert!(rx.blocks_held() <= rx.block_count());
        assert_eq!(
            rx.missing_blocks().count() as u32,
            rx.block_count() - rx.blocks_held()
        );
        // Complete means the bytes held hash to the SHA-256 META announced,
        // checked here independently of the receiver's own hashing.
        if rx.state() == State::Complete {
            let meta = rx.meta().expect("a complete transfer has a META");
            assert_eq!(Sha256::digest(rx.sink().data()).as_slice(), &meta.sha256);
        }
        // Every frame the deframer yields is one message and one event.
        assert_eq!(rx.counters().link.messages, events);
        assert_eq!(s.frames, events);
    }
    // The deframers' frames and statistics are a function of the bytes
    // alone: one call with everything, or many with pieces, agree.
    for framing in [Framing::Dttk, Framing::Cobs] {
        let mut one: Deframer<64> = Deframer::new(framing);
        let mut whole = Digest::default();
        one.push(data, |f| whole.add(f));
        let mut many: Deframer<64> = Deframer::new(framing);
        let mut pieces = Digest::default();
        for c in data.chunks(chunk) {
            many.push(c, |f| pieces.add(f));
        }
        assert_eq!(whole, pieces);
        assert_eq!(one.stats(), many.stats());
    }
    // A sink that hashes the file itself decides exactly as the receiver
    // hashing it does: the same events, message by message.
    #[cfg(all(feature = "std", unix))]
    {
        use crate::hashing::HashingSink;
        let mut own: Receiver<_, 64> =
            Receiver::new(0, MemorySink::new([0u8; 4096]), Framing::Dttk);
        let mut sink: Receiver<_, 64> =
            Receiver::new(0, HashingSink::new(4096, false), Framing::Dttk);
        for (i, c) in data.chunks(chunk).enumerate() {
            let (mut a, mut b) = (Digest::default(), Digest::default());
            own.on_bytes(c, i as u64, &mut |ev| {
                a.add(std::format!("{ev:?}").as_bytes())
            });
            sink.on_bytes(c, i as u64, &mut |ev| {
                b.add(std::format!("{ev:?}").as_bytes())
            });
            assert_eq!(a, b);
        }
        assert_eq!(own.state(), sink.state());
        if sink.state() == State::Complete {
            assert_eq!(own.sink().data(), sink.sink().data());
        }
    }
    // Also as whole messages on a packet link, through a multiplexer.
    let mut mux: Mux<_, 2, 16> = Mux::new(
        [
            Receiver::new(1, MemorySink::new([0u8; 1024]), Framing::Dttk),
            Receiver::new(2, MemorySink::new([0u8; 1024]), Framing::Dttk),
        ],
        Framing::Dttk,
    );
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let n = (n as usize).min(tail.len());
        let _ = mux.on_message(&tail[..n], 0);
        rest = &tail[n..];
    }
}

/// FNV-1a over the frames delivered, each followed by its length (no
/// allocation: this runs in `no_std` builds too).
#[derive(Debug, PartialEq, Eq)]
struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    fn add(&mut self, frame: &[u8]) {
        for &b in frame.iter().chain(&(frame.len() as u64).to_le_bytes()) {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}
