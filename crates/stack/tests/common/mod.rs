//! Helpers shared by the stack's integration tests.

use perfkit_stack::{Framer, MemorySource, Poll, Sender, SenderConfig};

/// Every message of a transfer of `data` sent with `cfg`, framed by
/// `framer`, as one stream; and the number of messages.
pub fn framed_stream(framer: &impl Framer, data: &[u8], cfg: SenderConfig) -> (Vec<u8>, u64) {
    let mut tx = Sender::new(MemorySource::new(data, b"p.bin"), cfg).unwrap();
    let (mut msg, mut framed) = ([0u8; 256], [0u8; 600]);
    let mut out = Vec::new();
    while let Poll::Message(n) = tx.poll(0, &mut msg).unwrap() {
        let m = framer.encode(&msg[..n], &mut framed).unwrap();
        out.extend_from_slice(&framed[..m]);
    }
    (out, tx.counters().messages)
}
