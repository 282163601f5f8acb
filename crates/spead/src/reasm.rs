//! Heap reassembly: packets in any order become heaps; item decoding;
//! descriptors and stream control on top ([`Stream`]). `docs/specs/spead.md`
//! sections 4, 6 and 8.
//!
//! Memory is bounded whatever arrives: a heap longer than
//! [`Config::max_heap_size`] is dropped packet by packet (counted), at most
//! [`Config::max_live_heaps`] heaps are under assembly at once (the oldest is
//! evicted as incomplete when a new one starts), and a heap keeps at most
//! [`Config::max_pointers`] item pointers. A heap's buffer grows with the
//! bytes that arrive (up to the furthest byte received), never to the
//! HEAP_LENGTH a packet merely declares, and all buffers of live heaps and
//! of the recycle pool together stay within [`Config::max_bytes`]: a packet
//! that needs more evicts the oldest other heaps first (counted in
//! [`Counters::over_budget`]). Payload buffers are recycled, so a steady
//! stream allocates nothing once warm.
//!
//! Each live heap keeps the byte ranges it has received as sorted, merged
//! intervals: in-order arrival extends the last interval (O(1)), and a packet
//! overlapping bytes already received is counted as a duplicate and dropped.
//! A packet for a heap that completed recently is counted as a duplicate heap.

use crate::descriptor::{Descriptor, ItemDescriptor};
use crate::wire::{self, id, ItemPointer, Packet, Repr};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Limits that bound memory use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Largest heap payload accepted, in bytes.
    pub max_heap_size: u64,
    /// Heaps under assembly at once.
    pub max_live_heaps: usize,
    /// Item pointers kept per heap.
    pub max_pointers: usize,
    /// Descriptors a [`Stream`] keeps.
    pub max_descriptors: usize,
    /// Bytes held at once by the payload buffers and received-range lists
    /// of all live heaps plus the recycle pool.
    pub max_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_heap_size: 64 << 20,
            max_live_heaps: 16,
            max_pointers: 4096,
            max_descriptors: 1024,
            max_bytes: 256 << 20,
        }
    }
}

/// What happened to the packets and heaps seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams offered.
    pub packets: u64,
    /// Heap payload bytes accepted.
    pub payload_bytes: u64,
    /// Datagrams that are not valid SPEAD-64-40 packets.
    pub bad_packets: u64,
    /// Datagrams dropped because their heap exceeds `max_heap_size`.
    pub oversize: u64,
    /// Datagrams overlapping bytes already received for their heap.
    pub duplicate_packets: u64,
    /// Datagrams for a heap that had already completed.
    pub duplicate_heaps: u64,
    /// Item pointers dropped over `max_pointers`.
    pub dropped_pointers: u64,
    /// Heaps delivered complete.
    pub heaps_complete: u64,
    /// Heaps evicted or flushed before all their bytes arrived.
    pub heaps_incomplete: u64,
    /// Heaps evicted, and packets dropped, to stay within `max_bytes`.
    pub over_budget: u64,
}

/// A reassembled heap.
#[derive(Debug, Clone)]
pub struct Heap {
    /// HEAP_CNT.
    pub cnt: u64,
    /// Whether every payload byte arrived.
    pub complete: bool,
    /// The buffer, of which the first `len` bytes are the payload; the rest
    /// is room kept for reuse.
    payload: Vec<u8>,
    len: usize,
    pointers: Vec<ItemPointer>,
}

impl PartialEq for Heap {
    fn eq(&self, other: &Self) -> bool {
        (self.cnt, self.complete, self.payload(), &self.pointers)
            == (other.cnt, other.complete, other.payload(), &other.pointers)
    }
}

impl Eq for Heap {}

/// A decoded item value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemValue<'a> {
    /// Carried in the pointer (40 bits).
    Immediate(u64),
    /// Bytes of the heap payload.
    Bytes(&'a [u8]),
}

impl ItemValue<'_> {
    /// The value as an unsigned integer: an immediate, or up to 8 bytes
    /// read big-endian (how spead2 sends `u` formats and `>u8` arrays).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            ItemValue::Immediate(v) => Some(v),
            ItemValue::Bytes(b) if !b.is_empty() && b.len() <= 8 => {
                Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
            }
            ItemValue::Bytes(_) => None,
        }
    }
}

/// One item of a received heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    /// Item ID.
    pub id: u32,
    /// Its value.
    pub value: ItemValue<'a>,
}

impl Heap {
    /// The heap payload. A complete heap has all of it; one flushed
    /// incomplete runs to the furthest byte received, gaps read as zero; one
    /// evicted while other heaps were arriving is empty (its memory went to
    /// the heaps that arrive).
    pub fn payload(&self) -> &[u8] {
        &self.payload[..self.len]
    }

    /// The heap's own item pointers (not the per-packet ones).
    pub fn pointers(&self) -> &[ItemPointer] {
        &self.pointers
    }

    /// Decodes the items: an addressed item runs to the next larger address
    /// or to the end of the payload; items addressed past the payload are
    /// skipped.
    pub fn items(&self) -> Vec<Item<'_>> {
        let mut addrs: Vec<u64> = self
            .pointers
            .iter()
            .filter(|p| !p.is_immediate())
            .map(|p| p.value())
            .collect();
        addrs.sort_unstable();
        let end_of = |start: u64| {
            let i = addrs.partition_point(|&a| a <= start);
            addrs.get(i).copied().unwrap_or(self.len as u64)
        };
        self.pointers
            .iter()
            .filter(|p| p.id() != id::NULL)
            .filter_map(|p| {
                let value = if p.is_immediate() {
                    ItemValue::Immediate(p.value())
                } else {
                    let (start, end) = (p.value(), end_of(p.value()).min(self.len as u64));
                    if start > end {
                        return None;
                    }
                    ItemValue::Bytes(&self.payload()[start as usize..end as usize])
                };
                Some(Item { id: p.id(), value })
            })
            .collect()
    }

    /// The value of the first item with this ID (no allocation: one pass
    /// to find it, one to find where it ends).
    pub fn item(&self, id: u32) -> Option<ItemValue<'_>> {
        let p = self
            .pointers
            .iter()
            .find(|p| p.id() == id && id != id::NULL)?;
        if p.is_immediate() {
            return Some(ItemValue::Immediate(p.value()));
        }
        let len = self.len as u64;
        let start = p.value();
        let end = self
            .pointers
            .iter()
            .filter(|q| !q.is_immediate() && q.value() > start)
            .map(|q| q.value())
            .min()
            .unwrap_or(len)
            .min(len);
        (start <= end).then(|| ItemValue::Bytes(&self.payload()[start as usize..end as usize]))
    }

    /// Whether this heap carries STREAM_CTRL = stop.
    pub fn is_stop(&self) -> bool {
        self.pointers
            .iter()
            .any(|p| p.id() == id::STREAM_CTRL && p.is_immediate() && p.value() == wire::ctrl::STOP)
    }
}

#[derive(Debug)]
struct Live {
    cnt: u64,
    length: Option<u64>,
    /// Initialised throughout (zeroed when new, stale bytes when
    /// recycled); grows when a byte past its end arrives.
    buf: Vec<u8>,
    /// End of the furthest byte received.
    hi: u64,
    /// Whether bytes not received read as zero (a buffer the allocator
    /// zeroed, not a recycled one).
    clean: bool,
    received: u64,
    ranges: Vec<(u64, u64)>,
    pointers: Vec<ItemPointer>,
}

impl Live {
    /// Whether `[s, e)` overlaps bytes already received.
    fn overlaps(&self, s: u64, e: u64) -> bool {
        let r = &self.ranges;
        if s == e || r.last().is_some_and(|last| last.1 == s) {
            return false;
        }
        let i = r.partition_point(|&(_, end)| end < s);
        (i < r.len() && r[i].0 < e && s < r[i].1)
            || (i + 1 < r.len() && r[i].1 == s && r[i + 1].0 < e)
    }

    /// Records `[s, e)`, which must not overlap, as received.
    fn insert(&mut self, s: u64, e: u64) {
        if s == e {
            return;
        }
        let r = &mut self.ranges;
        // Fast path: in-order arrival extends the last range.
        if let Some(last) = r.last_mut() {
            if last.1 == s {
                last.1 = e;
                return;
            }
        }
        let i = r.partition_point(|&(_, end)| end < s);
        if i < r.len() && r[i].1 == s {
            r[i].1 = e;
            if i + 1 < r.len() && r[i + 1].0 == e {
                r[i].1 = r[i + 1].1;
                r.remove(i + 1);
            }
        } else if i < r.len() && r[i].0 == e {
            r[i].0 = s;
        } else {
            r.insert(i, (s, e));
        }
    }

    /// Bytes this heap holds against the budget.
    fn footprint(&self) -> u64 {
        (self.buf.capacity() + self.ranges.capacity() * RANGE_BYTES) as u64
    }

    fn is_complete(&self) -> bool {
        match self.length {
            Some(l) => self.received >= l,
            None => false,
        }
    }
}

/// Turns packets into heaps within fixed memory bounds.
#[derive(Debug)]
pub struct Reassembler {
    config: Config,
    live: Vec<Live>,
    recent: VecDeque<u64>,
    pool: Vec<Vec<u8>>,
    /// Emptied item-pointer lists of delivered heaps, reused by new ones so
    /// that a steady stream allocates nothing per heap (bounded by
    /// `max_live_heaps` lists of at most `max_pointers` pointers).
    spare_pointers: Vec<Vec<ItemPointer>>,
    counters: Counters,
    /// Bytes held by live heaps and the pool: the sum of their footprints
    /// and capacities, kept within `config.max_bytes`.
    held: u64,
}

const RECENT: usize = 64;
const RANGE_BYTES: usize = core::mem::size_of::<(u64, u64)>();

impl Reassembler {
    /// A reassembler with these limits.
    pub fn new(config: Config) -> Self {
        Reassembler {
            config,
            live: Vec::with_capacity(config.max_live_heaps),
            recent: VecDeque::with_capacity(RECENT),
            pool: Vec::new(),
            spare_pointers: Vec::new(),
            counters: Counters::default(),
            held: 0,
        }
    }

    /// Bytes held now by the heaps under assembly and the recycle pool
    /// (never more than [`Config::max_bytes`]).
    pub fn held_bytes(&self) -> u64 {
        self.held
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Offers one datagram; heaps it completes (or evicts) go to `out`.
    pub fn add_packet(
        &mut self,
        bytes: &[u8],
        out: &mut impl FnMut(Heap),
    ) -> Result<(), wire::Error> {
        self.counters.packets += 1;
        let parsed = Packet::new_checked(bytes).and_then(|p| Repr::parse(&p).map(|r| (p, r)));
        let (packet, repr) = match parsed {
            Ok(x) => x,
            Err(e) => {
                self.counters.bad_packets += 1;
                return Err(e);
            }
        };
        let end = repr.payload_offset + repr.payload_length;
        if repr.heap_length.unwrap_or(end) > self.config.max_heap_size
            || end > self.config.max_heap_size
        {
            self.counters.oversize += 1;
            return Ok(());
        }
        let idx = match self.live.iter().position(|l| l.cnt == repr.heap_cnt) {
            Some(i) => {
                if self.live[i].length != repr.heap_length {
                    self.counters.bad_packets += 1;
                    return Err(wire::Error::Inconsistent);
                }
                i
            }
            None => {
                if self.recent.contains(&repr.heap_cnt) {
                    self.counters.duplicate_heaps += 1;
                    return Ok(());
                }
                if self.live.len() >= self.config.max_live_heaps.max(1) {
                    let old = self.live.remove(0);
                    self.evict(old, out);
                }
                // A pooled buffer stays counted in `held` and keeps its
                // stale bytes (a complete heap overwrites them, `finish`
                // zeroes an incomplete one's gaps), so no memset per heap.
                // Without one, the buffer grows as bytes arrive: a declared
                // length alone costs nothing.
                let (buf, clean) = match self.pool.pop() {
                    Some(b) => (b, false),
                    None => (Vec::new(), true),
                };
                self.live.push(Live {
                    cnt: repr.heap_cnt,
                    length: repr.heap_length,
                    buf,
                    hi: 0,
                    clean,
                    received: 0,
                    ranges: Vec::new(),
                    pointers: self.spare_pointers.pop().unwrap_or_default(),
                });
                self.live.len() - 1
            }
        };
        if self.live[idx].overlaps(repr.payload_offset, end) {
            self.counters.duplicate_packets += 1;
            return Ok(());
        }
        let Some(idx) = self.reserve(idx, end, out) else {
            self.counters.over_budget += 1;
            return Ok(());
        };
        let live = &mut self.live[idx];
        let before = live.footprint();
        live.insert(repr.payload_offset, end);
        for p in packet
            .item_pointers()
            .filter(|p| p.id() > id::PAYLOAD_LENGTH || p.id() == id::NULL)
        {
            if p.id() == id::NULL && p.is_immediate() {
                continue;
            }
            if live.pointers.len() < self.config.max_pointers {
                live.pointers.push(p);
            } else {
                self.counters.dropped_pointers += 1;
            }
        }
        live.buf[repr.payload_offset as usize..end as usize].copy_from_slice(repr.payload(&packet));
        live.hi = live.hi.max(end);
        self.held = self.held - before + live.footprint();
        live.received += repr.payload_length;
        self.counters.payload_bytes += repr.payload_length;
        if live.is_complete() {
            let done = self.live.swap_remove(idx);
            self.finish(done, out);
        }
        Ok(())
    }

    /// Makes room, within the budget, for live heap `idx` to hold bytes up
    /// to `end` and one more received range, and grows it. Frees pool
    /// buffers first, then evicts the oldest other heaps. Returns the heap's
    /// index afterwards, or `None` when the budget cannot hold it.
    fn reserve(&mut self, mut idx: usize, end: u64, out: &mut impl FnMut(Heap)) -> Option<usize> {
        let l = &self.live[idx];
        let size = l.buf.len() as u64;
        // Amortised doubling while the budget allows, never past the heap's
        // declared (or largest accepted) length.
        let limit = l.length.unwrap_or(self.config.max_heap_size);
        let mut grow_to = if end > size {
            (size * 2).min(limit).max(end)
        } else {
            0
        };
        let ranges = if l.ranges.len() == l.ranges.capacity() {
            l.ranges.capacity().max(4)
        } else {
            0
        };
        let range_bytes = (ranges * RANGE_BYTES) as u64;
        // The old buffer is freed only after its bytes are copied over, so
        // the new one must fit beside it.
        if self.held + grow_to + range_bytes > self.config.max_bytes {
            grow_to = grow_to.min(end);
        }
        while self.held + grow_to + range_bytes > self.config.max_bytes {
            if let Some(b) = self.pool.pop() {
                self.held -= b.capacity() as u64;
                continue;
            }
            let victim = usize::from(idx == 0);
            if victim >= self.live.len() {
                return None;
            }
            let old = self.live.remove(victim);
            if victim < idx {
                idx -= 1;
            }
            self.counters.over_budget += 1;
            self.evict(old, out);
        }
        let l = &mut self.live[idx];
        let before = l.footprint();
        if grow_to > 0 {
            // Zeroed by the allocator: fresh pages are only touched, and
            // only count in the resident set, where bytes land.
            let mut buf = alloc::vec![0u8; grow_to as usize];
            for &(s, e) in &l.ranges {
                buf[s as usize..e as usize].copy_from_slice(&l.buf[s as usize..e as usize]);
            }
            l.buf = buf;
            l.clean = true;
        }
        l.ranges.reserve_exact(ranges);
        self.held = self.held - before + l.footprint();
        Some(idx)
    }

    /// Delivers every heap still under assembly (as incomplete unless all
    /// its bytes are there).
    pub fn flush(&mut self, out: &mut impl FnMut(Heap)) {
        let live = core::mem::take(&mut self.live);
        for l in live {
            self.finish(l, out);
        }
    }

    /// Returns a delivered heap's buffer for reuse (kept while the pool
    /// and the budget have room).
    pub fn recycle(&mut self, heap: Heap) {
        let mut pointers = heap.pointers;
        if self.spare_pointers.len() < self.config.max_live_heaps.max(1) {
            pointers.clear();
            self.spare_pointers.push(pointers);
        }
        self.pool_buffer(heap.payload);
    }

    fn pool_buffer(&mut self, buf: Vec<u8>) {
        let cap = buf.capacity() as u64;
        if cap > 0
            && self.pool.len() < self.config.max_live_heaps.max(1)
            && self.held + cap <= self.config.max_bytes
        {
            self.held += cap;
            self.pool.push(buf);
        }
    }

    /// Ends a heap while others are arriving: delivered incomplete without
    /// its payload, whose buffer returns to the pool, so eviction never
    /// holds more memory than the budget.
    fn evict(&mut self, mut l: Live, out: &mut impl FnMut(Heap)) {
        let buf = core::mem::take(&mut l.buf);
        self.held -= buf.capacity() as u64;
        self.pool_buffer(buf);
        self.finish(l, out);
    }

    fn finish(&mut self, mut l: Live, out: &mut impl FnMut(Heap)) {
        self.held -= l.footprint();
        // Without HEAP_LENGTH a heap is complete when its bytes are contiguous from 0.
        let complete =
            l.is_complete() || (l.length.is_none() && l.ranges.len() == 1 && l.ranges[0].0 == 0);
        let len = (l.hi as usize).min(l.buf.len());
        if complete {
            self.counters.heaps_complete += 1;
        } else if !l.clean {
            self.counters.heaps_incomplete += 1;
            // Gaps hold stale bytes from a recycled buffer: zero them.
            let mut at = 0;
            for &(s, e) in &l.ranges {
                l.buf[(at as usize).min(len)..(s as usize).min(len)].fill(0);
                at = e;
            }
        } else {
            self.counters.heaps_incomplete += 1;
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(l.cnt);
        out(Heap {
            cnt: l.cnt,
            complete,
            payload: l.buf,
            len,
            pointers: l.pointers,
        });
    }
}

/// A receiving stream: reassembly plus descriptors and stream control.
#[derive(Debug)]
pub struct Stream {
    reasm: Reassembler,
    descriptors: Vec<ItemDescriptor>,
    stopped: bool,
    bad_descriptors: u64,
    config: Config,
    pending: Vec<Heap>,
}

impl Stream {
    /// A stream with these limits.
    pub fn new(config: Config) -> Self {
        Stream {
            reasm: Reassembler::new(config),
            descriptors: Vec::new(),
            stopped: false,
            bad_descriptors: 0,
            config,
            pending: Vec::new(),
        }
    }

    /// Whether a stop heap has arrived.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Descriptors received so far (latest per item ID).
    pub fn descriptors(&self) -> &[ItemDescriptor] {
        &self.descriptors
    }

    /// Reassembly counters.
    pub fn counters(&self) -> &Counters {
        self.reasm.counters()
    }

    /// Descriptor items that failed to parse.
    pub fn bad_descriptors(&self) -> u64 {
        self.bad_descriptors
    }

    /// Offers one datagram. Complete heaps go to `on_heap` after their
    /// descriptors are recorded; the stop heap stops the stream (heaps still
    /// under assembly are flushed as incomplete). Packets after stop are ignored.
    pub fn add_packet(&mut self, bytes: &[u8], on_heap: &mut impl FnMut(&Heap, &[ItemDescriptor])) {
        if self.stopped {
            return;
        }
        let mut done = core::mem::take(&mut self.pending);
        let _ = self.reasm.add_packet(bytes, &mut |h| done.push(h));
        if !done.is_empty() {
            self.deliver(&mut done, on_heap);
        }
        self.pending = done;
    }

    /// Ends the stream: heaps under assembly are counted incomplete.
    pub fn flush(&mut self, on_heap: &mut impl FnMut(&Heap, &[ItemDescriptor])) {
        let mut done: Vec<Heap> = Vec::new();
        self.reasm.flush(&mut |h| done.push(h));
        self.deliver(&mut done, on_heap);
    }

    fn deliver(
        &mut self,
        done: &mut Vec<Heap>,
        on_heap: &mut impl FnMut(&Heap, &[ItemDescriptor]),
    ) {
        for heap in done.drain(..) {
            let has_descriptors = heap.pointers.iter().any(|p| p.id() == id::DESCRIPTOR);
            if heap.complete && has_descriptors {
                for item in heap.items() {
                    if item.id != id::DESCRIPTOR {
                        continue;
                    }
                    let ItemValue::Bytes(b) = item.value else {
                        self.bad_descriptors += 1;
                        continue;
                    };
                    match Descriptor::parse(b) {
                        Ok(d) => self.upsert(ItemDescriptor::from(&d)),
                        Err(_) => self.bad_descriptors += 1,
                    }
                }
            }
            if heap.complete {
                if heap.is_stop() {
                    self.stopped = true;
                }
                on_heap(&heap, &self.descriptors);
            }
            self.reasm.recycle(heap);
        }
        if self.stopped {
            let mut rest: Vec<Heap> = Vec::new();
            self.reasm.flush(&mut |h| rest.push(h));
            for h in rest {
                self.reasm.recycle(h);
            }
        }
    }

    fn upsert(&mut self, d: ItemDescriptor) {
        if let Some(old) = self.descriptors.iter_mut().find(|o| o.id == d.id) {
            *old = d;
        } else if self.descriptors.len() < self.config.max_descriptors {
            self.descriptors.push(d);
        } else {
            self.bad_descriptors += 1;
        }
    }
}

/// One packet of heap `cnt` that declares `length` bytes and carries
/// `payload` zero bytes at `offset`: the memory-amplification probe that the
/// budget's tests and the `hostile_heaps` example send.
#[doc(hidden)]
pub fn probe_packet(cnt: u64, length: u64, offset: u64, payload: usize) -> Vec<u8> {
    let r = Repr {
        heap_cnt: cnt,
        heap_length: Some(length),
        payload_offset: offset,
        payload_length: payload as u64,
    };
    let mut b = alloc::vec![0u8; r.buffer_len()];
    r.emit(&mut Packet::new_unchecked(&mut b[..]));
    b
}

/// Feeds hostile input through the decoder, reassembly, item and descriptor
/// decoding with small limits; used by the fuzz target and the property
/// tests. `data` is split into datagrams by 2-byte big-endian length prefixes.
/// Returns the counters; must never panic and never hold more than
/// `max_bytes`, whose accounting it checks against the buffers themselves.
pub fn decode_datagrams(data: &[u8]) -> Counters {
    let config = Config {
        max_heap_size: 1 << 16,
        max_live_heaps: 4,
        max_pointers: 64,
        max_descriptors: 8,
        max_bytes: 1 << 17,
    };
    let mut stream = Stream::new(config);
    let mut rest = data;
    let mut seen = 0usize;
    let mut on_heap = |h: &Heap, ds: &[ItemDescriptor]| {
        assert!(h.payload().len() as u64 <= config.max_heap_size);
        assert!(h.pointers().len() <= config.max_pointers);
        assert!(ds.len() <= config.max_descriptors);
        for it in h.items() {
            let _ = it.value.as_u64();
        }
        seen += 1;
    };
    while rest.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        stream.add_packet(&rest[2..2 + n], &mut on_heap);
        let r = &stream.reasm;
        assert!(r.live.len() <= config.max_live_heaps);
        let held: u64 = r.live.iter().map(Live::footprint).sum::<u64>()
            + r.pool.iter().map(|b| b.capacity() as u64).sum::<u64>();
        assert_eq!(held, r.held);
        assert!(held <= config.max_bytes);
        rest = &rest[2 + n..];
    }
    stream.flush(&mut on_heap);
    *stream.counters()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packetize::{Item as TxItem, Packetizer};
    use std::vec;

    fn packetize(cnt: u64, items: &[TxItem<'_>], max: usize) -> Vec<Vec<u8>> {
        Packetizer::new(cnt, items, max).unwrap().into_datagrams()
    }

    #[test]
    fn out_of_order_packets_reassemble() {
        let samples: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
        let items = [
            TxItem::immediate(0x1600, 99),
            TxItem::addressed(0x3300, &samples),
        ];
        let mut pk = packetize(3, &items, 1500);
        pk.reverse();
        pk.swap(1, 7);
        let mut r = Reassembler::new(Config::default());
        let mut got = Vec::new();
        for p in &pk {
            r.add_packet(p, &mut |h| got.push(h)).unwrap();
        }
        assert_eq!(got.len(), 1);
        let h = &got[0];
        assert!(h.complete);
        assert_eq!(h.cnt, 3);
        assert_eq!(h.item(0x1600), Some(ItemValue::Immediate(99)));
        assert_eq!(h.item(0x3300), Some(ItemValue::Bytes(&samples[..])));
        assert_eq!(r.counters().heaps_complete, 1);
    }

    #[test]
    fn duplicates_and_incomplete_are_counted() {
        let samples = vec![1u8; 20_000];
        let items = [TxItem::addressed(0x3300, &samples)];
        let pk = packetize(1, &items, 9000);
        assert_eq!(pk.len(), 3);
        let mut r = Reassembler::new(Config::default());
        let mut got = Vec::new();
        r.add_packet(&pk[0], &mut |h| got.push(h)).unwrap();
        r.add_packet(&pk[0], &mut |h| got.push(h)).unwrap();
        r.add_packet(&pk[1], &mut |h| got.push(h)).unwrap();
        r.add_packet(&pk[2], &mut |h| got.push(h)).unwrap();
        r.add_packet(&pk[2], &mut |h| got.push(h)).unwrap();
        assert_eq!(r.counters().duplicate_packets, 1);
        assert_eq!(r.counters().duplicate_heaps, 1);
        assert_eq!(got.len(), 1);
        // A second heap missing its middle packet is flushed incomplete, with the gap zeroed.
        let samples2 = vec![2u8; 20_000];
        let items2 = [TxItem::addressed(0x3300, &samples2)];
        let pk2 = packetize(2, &items2, 9000);
        r.recycle(got.pop().unwrap());
        r.add_packet(&pk2[0], &mut |h| got.push(h)).unwrap();
        r.add_packet(&pk2[2], &mut |h| got.push(h)).unwrap();
        r.flush(&mut |h| got.push(h));
        assert_eq!(r.counters().heaps_incomplete, 1);
        let h = got.pop().unwrap();
        assert!(!h.complete);
        assert!(h.payload()[9000..17000].iter().all(|&b| b == 0));
        assert_eq!(h.payload()[0], 2);
    }

    #[test]
    fn hostile_sizes_are_bounded() {
        let config = Config {
            max_heap_size: 1000,
            max_live_heaps: 2,
            ..Config::default()
        };
        let mut r = Reassembler::new(config);
        let big = vec![0u8; 2000];
        for p in packetize(1, &[TxItem::addressed(0x3300, &big)], 9000) {
            r.add_packet(&p, &mut |_| {}).unwrap();
        }
        assert_eq!(r.counters().oversize, 1);
        // Many small incomplete heaps: the oldest are evicted.
        let small = vec![0u8; 900];
        let mut evicted = 0;
        for cnt in 10..20 {
            let pk = packetize(cnt, &[TxItem::addressed(0x3300, &small)], 200);
            r.add_packet(&pk[0], &mut |h| {
                assert!(!h.complete);
                evicted += 1;
            })
            .unwrap();
            assert!(r.live.len() <= 2);
        }
        assert_eq!(evicted, 8);
    }

    #[test]
    fn stream_records_descriptors_and_stops() {
        use crate::descriptor::DescriptorRepr;
        let d = DescriptorRepr {
            id: 0x1600,
            name: "timestamp",
            description: "first sample",
            shape: &[],
            format: &[(b'u', 40)],
            dtype: None,
        };
        let mut dbuf = vec![0u8; d.buffer_len()];
        d.emit(&mut dbuf).unwrap();
        let heap = [
            TxItem::addressed(id::DESCRIPTOR, &dbuf),
            TxItem::immediate(0x1600, 12),
        ];
        let stop = [TxItem::immediate(id::STREAM_CTRL, wire::ctrl::STOP)];
        let mut s = Stream::new(Config::default());
        let mut values = Vec::new();
        let mut on = |h: &Heap, ds: &[ItemDescriptor]| {
            values.push((h.item(0x1600).and_then(|v| v.as_u64()), ds.len()));
        };
        for p in packetize(1, &heap, 9000)
            .iter()
            .chain(&packetize(2, &stop, 9000))
        {
            s.add_packet(p, &mut on);
        }
        assert!(s.is_stopped());
        assert_eq!(values, [(Some(12), 1), (None, 1)]);
        assert_eq!(s.descriptors()[0].name, "timestamp");
        assert_eq!(s.descriptors()[0].format, [(b'u', 40)]);
    }

    #[test]
    fn garbage_is_counted_not_fatal() {
        let c = decode_datagrams(&[0, 3, 1, 2, 3, 0, 8, 0x53, 4, 3, 5, 0, 0, 0, 9]);
        assert_eq!(c.packets, 2);
        assert_eq!(c.bad_packets, 2);
    }
}
