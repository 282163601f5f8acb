//! The two ends of a dttk transfer as the harness builds them from a
//! configuration, and what they report afterwards.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use perfkit_report::model::{Integrity, Side, Stages};
use perfkit_stack::{Framing, HashingSink, MemorySource, Receiver, Sender, State, TransferStats};
use serde::{Deserialize, Serialize};

use crate::integrity::hex;
use crate::spec::TransferSpec;

/// The receiver the harness uses: a memory sink that hashes the file (on
/// a thread of its own, or on the receiver's), bitmap for the profile's
/// 65,536 blocks.
pub type Rx = Receiver<HashingSink>;

/// Largest file a receiver accepts (the profile's limit with 249-byte blocks).
pub const MAX_FILE: usize = 65536 * 249;

/// The name a sender puts in META: the last component of `path`.
pub fn file_name(path: &Path) -> Vec<u8> {
    path.file_name()
        .map(|n| n.to_string_lossy().as_bytes().to_vec())
        .unwrap_or_default()
}

/// A sender over an in-memory copy of the input.
pub fn sender<'a>(
    t: &TransferSpec,
    bytes: &'a [u8],
    name: &'a [u8],
) -> anyhow::Result<Sender<MemorySource<'a>>> {
    Sender::new(MemorySource::new(bytes, name), t.sender_config()?)
        .map_err(|e| anyhow::anyhow!("cannot start the sender: {e}"))
}

/// A receiver on the configured channel with the configured framing. With
/// `hash_thread`, and where the machine has a second core, the file is
/// hashed on a thread of its own as it arrives (`hash_thread::sha256` in
/// the stage table, and `receiver::hash_wait` for the receiver's wait for
/// its last pass); otherwise on the receiving thread (`receiver::sha256`).
pub fn receiver(channel: u8, framing: Framing, hash_thread: bool) -> Rx {
    let thread = hash_thread && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    Receiver::new(channel, HashingSink::new(MAX_FILE, thread), framing)
}

/// A side's figures from the stack's stats (seconds from first to last message).
pub fn side(stats: &TransferStats) -> Side {
    Side::new(stats.elapsed_ns() as f64 / 1e9, stats.blocks, stats.bytes)
}

/// A real-time receiver's figures and error counters: seconds from its
/// first message to the file verified, that is [`side`]'s window plus the
/// wait for the hash thread's last pass ([`HashingSink::tail_wait_ns`], 0
/// until a file was hashed on a thread), so hashing on a thread and hashing
/// inline are timed alike. (Virtual-time receivers use [`side`]: a
/// wall-clock wait has no place on their clock.)
pub fn rx_side(rx: &Rx) -> Side {
    let s = rx.stats();
    let seconds = s.elapsed_ns().saturating_add(rx.sink().tail_wait_ns()) as f64 / 1e9;
    Side {
        errors: rx_errors(rx),
        ..Side::new(seconds, s.blocks, s.bytes)
    }
}

/// The receiver's error counters, by name (zeros included, so every record has the same keys).
pub fn rx_errors(rx: &Rx) -> BTreeMap<String, u64> {
    let c = rx.counters();
    let d = rx.deframer_stats();
    [
        ("crc_errors", c.link.crc_errors),
        ("bad_lengths", c.link.bad_lengths + d.bad_lengths),
        ("seq_gaps", c.link.seq_gaps),
        ("other_channel", c.link.other_channel),
        ("duplicates", c.duplicates),
        ("no_meta", c.no_meta),
        ("out_of_range", c.out_of_range),
        ("wrong_block_length", c.wrong_block_length),
        ("bad_control", c.bad_control),
        ("after_failure", c.after_failure),
        ("junk_bytes", d.junk_bytes),
        ("protocol_violations", d.protocol_violations),
        ("frame_overflows", d.overflows),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The integrity verdict: SHA-256 of what the receiver holds against
/// `sent_sha`.
///
/// The receiver hashed its file once, as it arrived (on its hash thread,
/// or inline), and reached [`State::Complete`] only if that digest equals
/// the one META announced: so a complete receiver's file hashes to META's
/// SHA-256, which is what `sha256_received` records. It is not hashed a
/// second time here (a quarter of `perfkit recv`'s CPU time at 16 MB).
/// Where `sent_sha` comes from this process (the input's), the verdict
/// also holds the sender's META to the input; where it is META's own
/// (`perfkit recv`), whoever knows the input holds the record to it
/// ([`of_input`]).
pub fn integrity(sent_sha: &str, rx: &Rx) -> Integrity {
    let complete = rx.state() == State::Complete;
    let received = match rx.meta() {
        Some(m) if complete => hex(&m.sha256),
        _ => String::new(),
    };
    let missing: Vec<u32> = if rx.block_count() == 0 {
        Vec::new()
    } else {
        rx.missing_blocks().collect()
    };
    let ok = complete && received == sent_sha;
    Integrity {
        ok,
        missing_blocks: missing,
        sha256_sent: sent_sha.to_owned(),
        sha256_received: received,
        // What ended a failed transfer (every block in but the digest
        // differing, a second META): the block list alone would not say.
        reason: rx
            .failure()
            .filter(|_| !ok)
            .map(|f| format!("the transfer failed: {f}")),
    }
}

/// A receiving end's verdict, held against the SHA-256 of this run's own
/// input. The receiving end judges what arrived by the SHA-256 its META
/// announced, so it would call another whole file intact: a sender that
/// sent another file (an external program given the wrong file, or, on
/// the network, a stranger that reached the data port first; `suspect`
/// says which the run could have met) is caught here.
pub fn of_input(mut verdict: Integrity, input_sha256: &str, suspect: &str) -> Integrity {
    let short = |h: &str| h[..h.len().min(16)].to_owned();
    // Bytes that differ from the file META announced are corruption on the
    // way, which the verdict says already; only a META announcing another
    // file means another sender.
    if !verdict.sha256_received.is_empty() && verdict.sha256_received != input_sha256 {
        verdict.ok = false;
    }
    let other = Some(&verdict.sha256_sent)
        .filter(|h| !h.is_empty() && h.as_str() != input_sha256)
        .cloned();
    if let Some(theirs) = other {
        verdict.ok = false;
        verdict.reason = Some(format!(
            "what arrived is not this run's input: the receiving end was sent a file with \
             SHA-256 {}, the input's is {} ({suspect})",
            short(&theirs),
            short(input_sha256)
        ));
        verdict.sha256_sent = input_sha256.to_owned();
    }
    verdict
}

/// What `perfkit send` / `perfkit recv` write with `--stats-json`, so a
/// parent process can put both ends of a pipe into one record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndReport {
    /// This end's figures.
    pub side: Side,
    /// This end's perfkit snapshot.
    pub stages: Stages,
    /// Receiver only: the verdict.
    #[serde(default)]
    pub integrity: Option<Integrity>,
    /// Bytes this end wrote to or read from the link.
    #[serde(default)]
    pub wire_bytes: u64,
    /// This end's link counters (datagrams sent or arrived, faults injected).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, u64>,
}

impl EndReport {
    /// Reads a report a child wrote.
    pub fn load(path: &std::path::Path) -> anyhow::Result<EndReport> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("no stats from the child at {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: bad stats", path.display()))
    }
    /// Writes it atomically.
    pub fn save(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        perfkit_report::model::write_atomic(path, json.as_bytes()).map_err(|e| anyhow::anyhow!(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfkit_stack::wire::{self, MetaRepr, CONTROL_BIT, MAX_PAYLOAD};
    use sha2::{Digest, Sha256};

    fn message(seq: u8, chn: u8, block: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 256];
        let n = wire::build(&mut out, seq, chn, block, payload.len(), |p| {
            p.copy_from_slice(payload);
            Ok(())
        })
        .unwrap();
        out[..n].to_vec()
    }

    /// A receiver on channel 0 given `data` in 200-byte blocks after a META
    /// announcing the SHA-256 of `announced`.
    fn fed(data: &[u8], announced: &[u8], hash_thread: bool) -> Rx {
        let mut rx = receiver(0, Framing::Dttk, hash_thread);
        let sha: [u8; 32] = Sha256::digest(announced).into();
        let m = MetaRepr::for_file(data.len() as u64, 200, sha, b"t").unwrap();
        let mut p = [0u8; MAX_PAYLOAD];
        m.emit(&mut p).unwrap();
        rx.on_message(&message(0, CONTROL_BIT, 0, &p[..m.buffer_len()]), 0);
        for (b, block) in data.chunks(200).enumerate() {
            rx.on_message(&message(b as u8 + 1, 0, b as u16, block), 0);
        }
        rx
    }

    #[test]
    fn a_complete_file_is_judged_by_the_digest_it_was_verified_by() {
        let data: Vec<u8> = (0..5_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sha = crate::integrity::sha256_hex(&data);
        for thread in [false, true] {
            let rx = fed(&data, &data, thread);
            assert_eq!(rx.sink().data(), &data[..]);
            let i = integrity(&sha, &rx);
            assert!(i.ok, "{i:?}");
            assert_eq!(i.sha256_received, sha);
            // Held to another input's SHA-256, the same file is not intact.
            let other = crate::integrity::sha256_hex(b"another input");
            assert!(!integrity(&other, &rx).ok);
        }
    }

    #[test]
    fn every_block_in_with_the_wrong_digest_says_so() {
        let data = vec![9u8; 1_000];
        let rx = fed(&data, b"not these bytes", false);
        let sent = crate::integrity::sha256_hex(b"not these bytes");
        let i = integrity(&sent, &rx);
        assert!(!i.ok && i.missing_blocks.is_empty(), "{i:?}");
        assert!(i.sha256_received.is_empty());
        let why = crate::output::failure(&i);
        assert!(
            why.contains("every block arrived but the SHA-256 differs"),
            "{why}"
        );
    }
}
