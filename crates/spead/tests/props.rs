//! Property tests: the decoder and reassembly never panic on hostile input
//! (the same entry the fuzz target drives), and any packet order and
//! duplication of a valid heap reassembles to the same bytes.

use perfkit_spead::packetize::{Item, Packetizer};
use perfkit_spead::reasm::{decode_datagrams, Config, ItemValue, Reassembler};
use proptest::prelude::*;

fn packetize(cnt: u64, items: &[Item<'_>], max: usize) -> Vec<Vec<u8>> {
    packetize_split(cnt, items, max, false)
}

fn packetize_split(cnt: u64, items: &[Item<'_>], max: usize, even: bool) -> Vec<Vec<u8>> {
    let mut p = Packetizer::new(cnt, items, max).unwrap();
    if even {
        p = p.even();
    }
    p.into_datagrams()
}

/// Length-prefixed datagrams, the framing `decode_datagrams` reads.
fn frame(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in packets {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let c = decode_datagrams(&data);
        prop_assert!(c.heaps_complete + c.heaps_incomplete <= c.packets);
    }

    #[test]
    fn corrupted_valid_packets_never_panic(
        size in 1usize..40_000,
        seed in any::<u64>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..24),
    ) {
        let samples = vec![seed as u8; size];
        let items = [Item::immediate(0x1600, seed & 0xff_ffff), Item::addressed(0x3300, &samples)];
        let mut data = frame(&packetize(seed % 1000, &items, 1500));
        let n = data.len();
        for (at, v) in flips {
            data[at % n] ^= v;
        }
        let _ = decode_datagrams(&data);
    }

    #[test]
    fn any_order_with_duplicates_reassembles(
        size in 1usize..60_000,
        packet in 64usize..9000,
        order in proptest::collection::vec(any::<u16>(), 0..200),
        even in any::<bool>(),
    ) {
        let samples: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();
        let items = [Item::immediate(0x1600, 5), Item::addressed(0x3300, &samples)];
        let pk = packetize_split(9, &items, packet, even);
        prop_assert!(pk.iter().all(|p| p.len() <= packet));
        // Every packet once, in a shuffled order, plus some duplicates.
        let mut idx: Vec<usize> = (0..pk.len()).collect();
        for (k, r) in order.iter().enumerate() {
            let a = k % idx.len();
            let b = *r as usize % idx.len();
            idx.swap(a, b);
        }
        let dups: Vec<usize> = order.iter().take(5).map(|r| *r as usize % pk.len()).collect();
        let mut r = Reassembler::new(Config::default());
        let mut got = Vec::new();
        for &i in idx.iter().chain(&dups) {
            r.add_packet(&pk[i], &mut |h| got.push(h)).unwrap();
        }
        prop_assert_eq!(got.len(), 1);
        prop_assert!(got[0].complete);
        prop_assert_eq!(got[0].item(0x3300), Some(ItemValue::Bytes(&samples[..])));
        prop_assert_eq!(got[0].item(0x1600), Some(ItemValue::Immediate(5)));
        let c = r.counters();
        prop_assert_eq!(c.duplicate_packets + c.duplicate_heaps, dups.len() as u64);
    }
}

/// The committed fuzz seeds are real heaps: they must reassemble here.
#[test]
fn fuzz_seed_heaps_reassemble() {
    let c = decode_datagrams(include_bytes!(
        "../../../fuzz/seeds/spead_decode/heap-and-stop"
    ));
    assert_eq!((c.heaps_complete, c.bad_packets), (2, 0));
    let c = decode_datagrams(include_bytes!(
        "../../../fuzz/seeds/spead_decode/heap-reversed"
    ));
    assert_eq!((c.heaps_complete, c.bad_packets), (1, 0));
}
