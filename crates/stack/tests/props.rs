//! Property tests: codec round trips under arbitrary chunking, and the fuzz
//! target's entry function (`perfkit_stack::fuzzing::deframe_receive`) on
//! random and on mutated valid streams, so the fuzz harness is exercised by
//! the normal test command.

use perfkit_stack::fuzzing::deframe_receive;
use perfkit_stack::{wire, Deframer, Event, Framing, Receiver, SenderConfig, VecSink};
use proptest::prelude::*;

mod common;

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![Just(Framing::Dttk), Just(Framing::Cobs)]
}

/// A valid framed stream for `data` sent with small settings.
fn stream(data: &[u8], block: u8, repeats: u32, framing: Framing) -> Vec<u8> {
    let cfg = SenderConfig {
        block_size: block,
        repeats,
        start_meta: 2,
        meta_every: 7,
        ..SenderConfig::default()
    };
    common::framed_stream(&framing, data, cfg).0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn deframer_statistics_do_not_depend_on_chunking(
        body in prop::collection::vec(prop_oneof![8 => 0u8..0xFE, 1 => Just(0xFEu8), 1 => Just(0xFFu8)], 0..2000),
        long in 60usize..400,
        cuts in prop::collection::vec(1usize..80, 1..100),
        framing in framing(),
    ) {
        // Frames too long for the buffer among ordinary ones and noise.
        let mut stream = vec![0xFF, 0x00];
        stream.extend(std::iter::repeat_n(0x41, long));
        stream.extend_from_slice(&[0xFF, 0x00]);
        stream.extend_from_slice(&body);
        let mut one: Deframer<64> = Deframer::new(framing);
        let mut whole = Vec::new();
        one.push(&stream, |f| whole.push(f.to_vec()));
        let mut many: Deframer<64> = Deframer::new(framing);
        let mut pieces = Vec::new();
        let (mut rest, mut cuts) = (&stream[..], cuts.iter().cycle());
        while !rest.is_empty() {
            let c = (*cuts.next().unwrap()).min(rest.len());
            many.push(&rest[..c], |f| pieces.push(f.to_vec()));
            rest = &rest[c..];
        }
        prop_assert_eq!(whole, pieces);
        prop_assert_eq!(one.stats(), many.stats());
    }

    #[test]
    fn dttk_encoder_matches_the_specification_byte_by_byte(
        msg in prop::collection::vec(prop_oneof![4 => any::<u8>(), 1 => Just(0xFEu8), 1 => Just(0xFFu8), 1 => Just(0xFDu8)], 0..600),
        slack in 0usize..40,
    ) {
        // dttk-wire section 5, one byte at a time: the reference the fast
        // encoder (sixteen bytes a step on x86_64) must equal exactly.
        let mut want = vec![0xFF];
        for &b in &msg {
            match b {
                0xFF => want.extend_from_slice(&[0xFE, 0xFD]),
                0xFE => want.extend_from_slice(&[0xFE, 0xFE]),
                _ => want.push(b),
            }
        }
        want.push(0xFF);
        // An output of exactly the frame's size plus some slack, and the worst case.
        for size in [want.len() + slack, Framing::Dttk.max_encoded_len(msg.len())] {
            let mut out = vec![0xAA; size];
            let n = Framing::Dttk.encode(&msg, &mut out).unwrap();
            prop_assert_eq!(&out[..n], &want[..]);
        }
        prop_assert!(Framing::Dttk.encode(&msg, &mut vec![0; want.len() - 1]).is_err());
    }

    #[test]
    fn deframing_in_one_push_equals_one_byte_at_a_time(
        body in prop::collection::vec(prop_oneof![6 => any::<u8>(), 2 => Just(0xFEu8), 2 => Just(0xFFu8), 1 => Just(0xFDu8)], 0..3000),
        framing in framing(),
    ) {
        // One byte per call never takes a wide step; one call with
        // everything takes every one it can. Same frames, same counters,
        // with escapes, bad escapes, flag runs and overflows in the bytes.
        for run in [false, true] {
            let mut stream = body.clone();
            if run {
                stream.splice(0..0, std::iter::repeat_n(0x41, 700));
            }
            let mut one: Deframer = Deframer::new(framing);
            let mut whole = Vec::new();
            one.push(&stream, |f| whole.push(f.to_vec()));
            let mut bytewise: Deframer = Deframer::new(framing);
            let mut single = Vec::new();
            for b in stream.chunks(1) {
                bytewise.push(b, |f| single.push(f.to_vec()));
            }
            prop_assert_eq!(whole, single);
            prop_assert_eq!(one.stats(), bytewise.stats());
        }
    }

    #[test]
    fn messages_survive_any_chunking(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..=249), 1..6),
        cuts in prop::collection::vec(1usize..40, 0..200),
        framing in framing(),
    ) {
        let mut stream = Vec::new();
        let mut msgs = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            let mut m = [0u8; 256];
            let n = wire::build(&mut m, i as u8, 0x80, 0xFFFF, p.len(), |b| {
                b.copy_from_slice(p);
                Ok(())
            }).unwrap();
            msgs.push(m[..n].to_vec());
            let mut f = [0u8; 600];
            let k = framing.encode(&m[..n], &mut f).unwrap();
            prop_assert!(k <= framing.max_encoded_len(n));
            stream.extend_from_slice(&f[..k]);
        }
        let mut d: Deframer = Deframer::new(framing);
        let mut got = Vec::new();
        let mut rest = &stream[..];
        let mut cuts = cuts.into_iter();
        while !rest.is_empty() {
            let c = cuts.next().unwrap_or(rest.len()).min(rest.len());
            d.push(&rest[..c], |f| got.push(f.to_vec()));
            rest = &rest[c..];
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(d.stats().junk_bytes, 0);
    }

    #[test]
    fn fuzz_entry_on_random_bytes(data in prop::collection::vec(any::<u8>(), 0..3000)) {
        deframe_receive(&data);
    }

    #[test]
    fn fuzz_entry_on_mutated_streams(
        data in prop::collection::vec(any::<u8>(), 0..1500),
        block in 1u8..=249,
        framing in framing(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 0..40),
    ) {
        let mut s = stream(&data, block, 1, framing);
        for (at, kind, v) in mutations {
            if s.is_empty() { break; }
            let i = at.index(s.len());
            match kind {
                0 => s[i] ^= v | 1,
                1 => { s.remove(i); }
                2 => s.insert(i, v),
                _ => { let b = s[i]; s.insert(i, b); }
            }
        }
        // Chunk size is taken from the first byte by the entry function.
        deframe_receive(&s);
        // And through a full-size receiver: whatever it holds is right.
        let mut rx: Receiver<_> = Receiver::new(0, VecSink::new(1 << 16), framing);
        let mut failed = false;
        rx.on_bytes(&s, 0, &mut |e| failed |= matches!(e, Event::Failed(_)));
        if let Some(m) = rx.meta() {
            if m.file_size() == data.len() as u64 && m.blocksz == block {
                for n in 0..rx.block_count() {
                    if rx.has_block(n) {
                        let a = n as usize * block as usize;
                        let b = (a + block as usize).min(data.len());
                        prop_assert_eq!(&rx.sink().data[a..b], &data[a..b]);
                    }
                }
            }
        }
    }

    #[test]
    fn clean_streams_always_complete(
        data in prop::collection::vec(any::<u8>(), 0..3000),
        block in 1u8..=249,
        framing in framing(),
        chunk in 1usize..300,
    ) {
        let s = stream(&data, block, 0, framing);
        let mut rx: Receiver<_> = Receiver::new(0, VecSink::new(1 << 16), framing);
        let mut complete = false;
        for c in s.chunks(chunk) {
            rx.on_bytes(c, 0, &mut |e| complete |= matches!(e, Event::Complete { .. }));
        }
        prop_assert!(complete);
        prop_assert_eq!(&rx.sink().data, &data);
    }
}
