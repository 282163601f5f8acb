//! The receiver's memory stays within its budget whatever datagrams arrive:
//! every allocation in this test binary is counted, and hostile heaps that
//! declare the largest accepted length but carry a few bytes (at their
//! start, at their end, or scattered to multiply received ranges) must not
//! take the heap beyond `max_bytes` plus a small constant. A real heap still
//! reassembles afterwards.

use perfkit_spead::packetize::{Item, Packetizer};
use perfkit_spead::reasm::{probe_packet, Config, Heap, ItemValue, Stream};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only adds counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = NOW.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NOW.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn hostile_heaps_stay_within_the_memory_budget() {
    let config = Config {
        max_heap_size: 1 << 20,
        max_live_heaps: 32,
        max_bytes: 4 << 20,
        ..Config::default()
    };
    let len = config.max_heap_size;
    let mut stream = Stream::new(config);
    let mut complete = 0;
    let mut on_heap = |_: &Heap, _: &[perfkit_spead::descriptor::ItemDescriptor]| complete += 1;
    let base = NOW.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    for cnt in 1..=400u64 {
        let offset = match cnt % 3 {
            0 => 0,
            1 => len - 20,
            _ => (cnt * 7919) % (len - 20),
        };
        stream.add_packet(&probe_packet(cnt, len, offset, 20), &mut on_heap);
    }
    // One heap, many scattered 1-byte slices: its range list counts too.
    for k in 0..20_000u64 {
        stream.add_packet(&probe_packet(1000, len, (k * 2 + 1) % len, 1), &mut on_heap);
    }
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let slack = 512 << 10;
    assert!(
        peak as u64 <= config.max_bytes + slack,
        "peak {peak} bytes over a budget of {}",
        config.max_bytes
    );
    assert!(stream.counters().over_budget > 0);
    // The stream still works: a real heap of the largest size arrives whole.
    let samples: Vec<u8> = (0..len as usize).map(|i| i as u8).collect();
    let items = [Item::addressed(0x3300, &samples)];
    let mut got = None;
    for p in Packetizer::new(5000, &items, 9000)
        .unwrap()
        .into_datagrams()
    {
        stream.add_packet(&p, &mut |h: &Heap, _: &[_]| {
            got = Some(h.item(0x3300) == Some(ItemValue::Bytes(&samples[..])));
        });
    }
    assert_eq!(got, Some(true));
}
