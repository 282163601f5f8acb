//! Heap builder (`docs/specs/spead.md` section 5): splits a heap into packets
//! of at most a given size, writing only the headers (into caller scratch)
//! and handing out the payload as slices of the caller's item buffers, for
//! scatter/gather sends.
//!
//! The split is the one spead2 makes, so both produce the same packets:
//! every packet starts with HEAP_CNT, HEAP_LENGTH, PAYLOAD_OFFSET and
//! PAYLOAD_LENGTH; the items' own pointers go in the first packet(s) as far
//! as they fit; payload fills the rest. A heap with less payload than packets
//! that need it gets a NULL item pointer and padding, so that every packet
//! carries at least one payload byte (receivers order packets by offset).

use crate::wire::{self, id, ItemPointer, Packet};
use core::fmt;

/// An item's value in a heap being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// Carried in the item pointer (at most 40 bits).
    Immediate(u64),
    /// Carried in the heap payload, sent from this buffer without a copy.
    Addressed(&'a [u8]),
}

/// One item of a heap being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    /// Item ID (23 bits).
    pub id: u32,
    /// Its value.
    pub value: Value<'a>,
}

impl<'a> Item<'a> {
    /// An immediate item.
    pub const fn immediate(id: u32, value: u64) -> Self {
        Item {
            id,
            value: Value::Immediate(value),
        }
    }
    /// An addressed item.
    pub const fn addressed(id: u32, bytes: &'a [u8]) -> Self {
        Item {
            id,
            value: Value::Addressed(bytes),
        }
    }
}

/// Why a heap cannot be packetised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The packet size leaves no room for a pointer and payload (minimum 56).
    PacketTooSmall(usize),
    /// An item ID does not fit in 23 bits, or is reserved (0..=4).
    BadId(u32),
    /// An immediate value does not fit in 40 bits.
    ValueTooLarge(u64),
    /// The heap payload does not fit in 40-bit addresses.
    HeapTooLarge(u64),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::PacketTooSmall(n) => write!(f, "packet size {n} is too small (minimum 56)"),
            Error::BadId(i) => write!(f, "item ID {i:#x} is reserved or wider than 23 bits"),
            Error::ValueTooLarge(v) => write!(f, "immediate value {v:#x} is wider than 40 bits"),
            Error::HeapTooLarge(n) => {
                write!(f, "heap payload of {n} bytes exceeds 40-bit addresses")
            }
        }
    }
}

static PADDING: [u8; 8] = [0; 8];

/// Iterates over the packets of one heap.
///
/// ```
/// use perfkit_spead::packetize::{Item, Packetizer};
/// let samples = [7u8; 16384];
/// let items = [Item::immediate(0x1600, 42), Item::addressed(0x3300, &samples)];
/// let mut p = Packetizer::new(1, &items, 9000).unwrap();
/// let mut header = [0u8; 9000];
/// let mut sizes = Vec::new();
/// while let Some(h) = p.next_packet(&mut header, |_payload| {}) {
///     sizes.push(h.len());
/// }
/// assert_eq!(sizes, [9000, 7480]);
/// ```
#[derive(Debug, Clone)]
pub struct Packetizer<'i, 'a> {
    items: &'i [Item<'a>],
    heap_cnt: u64,
    max_packet: usize,
    payload_size: u64,
    max_pointers: usize,
    need_null: bool,
    payload_offset: u64,
    next_pointer: usize,
    next_address: u64,
    next_item: usize,
    next_item_offset: usize,
    even_size: Option<usize>,
}

/// Sizes of one emitted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketLen {
    /// Bytes of header and item pointers written to the scratch buffer.
    pub header: usize,
    /// Bytes of payload handed to the callback.
    pub payload: usize,
}

impl PacketLen {
    /// Total datagram size.
    pub const fn len(&self) -> usize {
        self.header + self.payload
    }
    /// Never true: every packet has a header.
    pub const fn is_empty(&self) -> bool {
        false
    }
}

impl<'i, 'a> Packetizer<'i, 'a> {
    /// Prepares to split heap `heap_cnt` made of `items` into packets of at
    /// most `max_packet_size` bytes (rounded down to a multiple of 8).
    pub fn new(
        heap_cnt: u64,
        items: &'i [Item<'a>],
        max_packet_size: usize,
    ) -> Result<Self, Error> {
        let max_packet = max_packet_size & !7;
        if max_packet < wire::PREFIX_LEN + 2 * wire::POINTER_LEN {
            return Err(Error::PacketTooSmall(max_packet_size));
        }
        if heap_cnt > wire::MAX_VALUE {
            return Err(Error::ValueTooLarge(heap_cnt));
        }
        let mut payload_size = 0u64;
        for it in items {
            if it.id > wire::MAX_ID || it.id <= id::PAYLOAD_LENGTH {
                return Err(Error::BadId(it.id));
            }
            match it.value {
                Value::Immediate(v) if v > wire::MAX_VALUE => return Err(Error::ValueTooLarge(v)),
                Value::Immediate(_) => {}
                Value::Addressed(b) => payload_size += b.len() as u64,
            }
        }
        let max_pointers =
            (max_packet - (wire::PREFIX_LEN + wire::POINTER_LEN)) / wire::POINTER_LEN;
        // Packets needed for the pointers, plus room for a NULL pointer.
        let item_packets = items.len() / max_pointers + 1;
        let min_payload = (item_packets as u64 - 1) * wire::POINTER_LEN as u64 + 1;
        let need_null = payload_size < min_payload;
        if need_null {
            payload_size = min_payload;
        }
        if payload_size > wire::MAX_VALUE {
            return Err(Error::HeapTooLarge(payload_size));
        }
        Ok(Packetizer {
            items,
            heap_cnt,
            max_packet,
            payload_size,
            max_pointers,
            need_null,
            payload_offset: 0,
            next_pointer: 0,
            next_address: 0,
            next_item: 0,
            next_item_offset: 0,
            even_size: None,
        })
    }

    /// Splits the heap into packets of (nearly) equal size instead of
    /// filling each packet to the maximum: same number of packets, but every
    /// datagram but possibly the last has the same length, and for heaps
    /// whose size divides evenly (powers of two with the tutorial's two
    /// items) all of them do. Runs of equal-size datagrams then continue
    /// across heaps, which is what UDP GSO merges; with the default split a
    /// 16 KiB heap ends in a shorter packet, capping each GSO message at two
    /// datagrams. Receivers accept any split (offsets say where payload
    /// goes). Kept to heaps whose item pointers fit the first packet;
    /// others keep the default split.
    pub fn even(mut self) -> Self {
        let pointers = self.pointer_count();
        if pointers > self.max_pointers || self.payload_offset != 0 {
            return self;
        }
        let (n, header) = self.totals();
        if n < 2 {
            return self;
        }
        let total = self.payload_size as usize + header;
        let size = total.div_ceil(n);
        if size >= wire::PREFIX_LEN + pointers * wire::POINTER_LEN + wire::POINTER_LEN {
            self.even_size = Some(size);
            debug_assert_eq!(self.totals().0, n);
        }
        self
    }

    /// Item pointers the heap carries: one per item, plus the NULL pointer
    /// when the payload is padded.
    fn pointer_count(&self) -> usize {
        self.items.len() + usize::from(self.need_null)
    }

    /// Payload bytes a packet with this header may carry.
    fn room(&self, header_len: usize) -> u64 {
        let max = self.max_packet - header_len;
        match self.even_size {
            Some(s) => s.saturating_sub(header_len).clamp(wire::POINTER_LEN, max) as u64,
            None => max as u64,
        }
    }

    /// Heap payload size (HEAP_LENGTH), including any padding.
    pub fn heap_length(&self) -> u64 {
        self.payload_size
    }

    /// Largest header a packet of this heap needs (scratch size per packet).
    pub fn max_header_len(&self) -> usize {
        let n = self.pointer_count().min(self.max_pointers);
        wire::PREFIX_LEN + n * wire::POINTER_LEN
    }

    /// Number of packets and total header bytes of the whole heap, without
    /// emitting anything (for sizing scratch space up front).
    pub fn totals(&self) -> (usize, usize) {
        let mut pointers_left = self.pointer_count();
        let mut offset = 0u64;
        let (mut packets, mut header) = (0usize, 0usize);
        while offset < self.payload_size {
            let n = pointers_left.min(self.max_pointers);
            pointers_left -= n;
            let room = self.room(wire::PREFIX_LEN + n * wire::POINTER_LEN);
            offset += room.min(self.payload_size - offset);
            packets += 1;
            header += wire::PREFIX_LEN + n * wire::POINTER_LEN;
        }
        (packets, header)
    }

    /// Every packet of the heap as an owned datagram (header then payload),
    /// for captures, tests and benchmarks; the sender's path writes headers
    /// in place with [`Self::next_packet`] instead.
    #[cfg(feature = "alloc")]
    pub fn into_datagrams(mut self) -> alloc::vec::Vec<alloc::vec::Vec<u8>> {
        let mut header = alloc::vec![0u8; self.max_header_len()];
        let mut out = alloc::vec::Vec::new();
        loop {
            let mut body = alloc::vec::Vec::new();
            let Some(len) = self.next_packet(&mut header, |s| body.extend_from_slice(s)) else {
                break;
            };
            let mut packet = header[..len.header].to_vec();
            packet.extend_from_slice(&body);
            out.push(packet);
        }
        out
    }

    /// Writes the next packet's header into `header` (which must hold
    /// [`Self::max_header_len`] bytes) and passes its payload slices, in
    /// order, to `payload`. Returns `None` when the heap is done, or when
    /// `header` is too short.
    pub fn next_packet(
        &mut self,
        header: &mut [u8],
        mut payload: impl FnMut(&'a [u8]),
    ) -> Option<PacketLen> {
        if self.payload_offset >= self.payload_size {
            return None;
        }
        let n = (self.pointer_count() - self.next_pointer).min(self.max_pointers);
        let header_len = wire::PREFIX_LEN + n * wire::POINTER_LEN;
        let header = header.get_mut(..header_len)?;
        let room = self.room(header_len);
        let plen = room.min(self.payload_size - self.payload_offset);

        let mut packet = Packet::new_unchecked(&mut *header);
        packet.set_header((n + 4) as u16);
        packet.set_item_pointer(0, ItemPointer::immediate(id::HEAP_CNT, self.heap_cnt));
        packet.set_item_pointer(
            1,
            ItemPointer::immediate(id::HEAP_LENGTH, self.payload_size),
        );
        packet.set_item_pointer(
            2,
            ItemPointer::immediate(id::PAYLOAD_OFFSET, self.payload_offset),
        );
        packet.set_item_pointer(3, ItemPointer::immediate(id::PAYLOAD_LENGTH, plen));
        for slot in 4..4 + n {
            let ptr = match self.items.get(self.next_pointer) {
                None => ItemPointer::addressed(id::NULL, self.next_address),
                Some(Item {
                    id,
                    value: Value::Immediate(v),
                }) => ItemPointer::immediate(*id, *v),
                Some(Item {
                    id,
                    value: Value::Addressed(b),
                }) => {
                    let p = ItemPointer::addressed(*id, self.next_address);
                    self.next_address += b.len() as u64;
                    p
                }
            };
            packet.set_item_pointer(slot, ptr);
            self.next_pointer += 1;
        }

        self.payload_offset += plen;
        let mut left = plen as usize;
        while left > 0 {
            match self.items.get(self.next_item) {
                None => {
                    // Padding after the last item (at most 8 bytes).
                    let pad = left.min(PADDING.len());
                    payload(&PADDING[..pad]);
                    left -= pad;
                }
                Some(Item {
                    value: Value::Addressed(b),
                    ..
                }) => {
                    let take = (b.len() - self.next_item_offset).min(left);
                    if take > 0 {
                        payload(&b[self.next_item_offset..self.next_item_offset + take]);
                    }
                    self.next_item_offset += take;
                    left -= take;
                    if self.next_item_offset == b.len() {
                        self.next_item += 1;
                        self.next_item_offset = 0;
                    }
                }
                Some(_) => {
                    self.next_item += 1;
                    self.next_item_offset = 0;
                }
            }
        }
        Some(PacketLen {
            header: header_len,
            payload: plen as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Repr;
    use std::vec::Vec;

    fn packets(items: &[Item<'_>], max: usize) -> Vec<Vec<u8>> {
        let mut p = Packetizer::new(7, items, max).unwrap();
        let (count, header_total) = p.totals();
        let mut out = Vec::new();
        let mut hdr = std::vec![0u8; p.max_header_len()];
        let mut seen_header = 0;
        loop {
            let mut pkt = Vec::new();
            let Some(len) = p.next_packet(&mut hdr, |s| pkt.extend_from_slice(s)) else {
                break;
            };
            seen_header += len.header;
            let mut full = hdr[..len.header].to_vec();
            full.extend_from_slice(&pkt);
            assert_eq!(full.len(), len.len());
            out.push(full);
        }
        assert_eq!((out.len(), seen_header), (count, header_total));
        out
    }

    #[test]
    fn spec_worked_check_16k_heap() {
        let samples: Vec<u8> = (0..16384u32).map(|i| i as u8).collect();
        let items = [
            Item::immediate(0x1600, 5),
            Item::addressed(0x3300, &samples),
        ];
        let pk = packets(&items, 9000);
        let sizes: Vec<usize> = pk.iter().map(Vec::len).collect();
        assert_eq!(sizes, [9000, 7480]);
        // First packet: 4 fixed + 2 item pointers, payload 8944 bytes at 0.
        let p0 = Packet::new_checked(&pk[0][..]).unwrap();
        assert_eq!(p0.item_count(), 6);
        assert_eq!(
            Repr::parse(&p0).unwrap(),
            Repr {
                heap_cnt: 7,
                heap_length: Some(16384),
                payload_offset: 0,
                payload_length: 8944
            }
        );
        assert_eq!(p0.item_pointer(4), ItemPointer::immediate(0x1600, 5));
        assert_eq!(p0.item_pointer(5), ItemPointer::addressed(0x3300, 0));
        assert_eq!(&pk[0][..6], &[0x53, 0x04, 0x03, 0x05, 0x00, 0x00]);
        // Second packet: the 40-byte prefix only, then the rest of the samples.
        let p1 = Packet::new_checked(&pk[1][..]).unwrap();
        assert_eq!(p1.item_count(), 4);
        let r1 = Repr::parse(&p1).unwrap();
        assert_eq!((r1.payload_offset, r1.payload_length), (8944, 7440));
        let mut joined = p0.payload().to_vec();
        joined.extend_from_slice(p1.payload());
        assert_eq!(joined, samples);
    }

    #[test]
    fn immediate_only_heap_gets_null_pointer_and_padding() {
        // Same shape as spead2's stop heap.
        let items = [Item::immediate(id::STREAM_CTRL, 2)];
        let pk = packets(&items, 9000);
        assert_eq!(pk.len(), 1);
        assert_eq!(pk[0].len(), 57);
        let p = Packet::new_checked(&pk[0][..]).unwrap();
        assert_eq!(p.item_pointer(5), ItemPointer::addressed(id::NULL, 0));
        assert_eq!(p.payload(), &[0]);
    }

    #[test]
    fn small_heap_fits_one_packet() {
        let samples = [9u8; 8192];
        let items = [
            Item::immediate(0x1600, 1),
            Item::addressed(0x3300, &samples),
        ];
        let pk = packets(&items, 9000);
        assert_eq!(pk.len(), 1);
        assert_eq!(pk[0].len(), 40 + 16 + 8192);
    }

    #[test]
    fn many_pointers_spill_into_later_packets() {
        let blobs: Vec<[u8; 3]> = (0..40u8).map(|i| [i; 3]).collect();
        let items: Vec<Item<'_>> = blobs
            .iter()
            .enumerate()
            .map(|(i, b)| Item::addressed(0x100 + i as u32, b))
            .collect();
        // 128-byte packets: (128-48)/8 = 10 pointers per packet.
        let pk = packets(&items, 128);
        let counts: Vec<usize> = pk
            .iter()
            .map(|b| Packet::new_checked(&b[..]).unwrap().item_count() - 4)
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), 40, "{counts:?}");
        assert!(pk.iter().all(|p| p.len() <= 128));
        let payload: usize = pk
            .iter()
            .map(|b| {
                Repr::parse(&Packet::new_checked(&b[..]).unwrap())
                    .unwrap()
                    .payload_length as usize
            })
            .sum();
        assert_eq!(
            payload as u64,
            Packetizer::new(7, &items, 128).unwrap().heap_length()
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            Packetizer::new(0, &[], 40).unwrap_err(),
            Error::PacketTooSmall(40)
        );
        let bad = [Item::immediate(id::HEAP_CNT, 0)];
        assert_eq!(Packetizer::new(0, &bad, 9000).unwrap_err(), Error::BadId(1));
        let big = [Item::immediate(0x1000, 1 << 41)];
        assert_eq!(
            Packetizer::new(0, &big, 9000).unwrap_err(),
            Error::ValueTooLarge(1 << 41)
        );
        let mut hdr = [0u8; 10];
        let items = [Item::immediate(0x1000, 1)];
        let mut p = Packetizer::new(0, &items, 9000).unwrap();
        assert!(p.next_packet(&mut hdr, |_| {}).is_none(), "short scratch");
    }

    #[test]
    fn even_split_gives_equal_datagrams() {
        for (size, want) in [(16384usize, 2usize), (32768, 4), (65536, 8)] {
            let samples = std::vec![3u8; size];
            let items = [
                Item::immediate(0x1600, 5),
                Item::addressed(0x3300, &samples),
            ];
            let mut p = Packetizer::new(1, &items, 9000).unwrap().even();
            let (n, _) = p.totals();
            assert_eq!(n, want);
            let mut hdr = [0u8; 128];
            let mut lens = Vec::new();
            let mut body = Vec::new();
            while let Some(l) = p.next_packet(&mut hdr, |s| body.extend_from_slice(s)) {
                lens.push(l.len());
            }
            assert_eq!(lens.len(), want);
            assert!(
                lens.iter().all(|&l| l == lens[0] && l <= 9000),
                "{size}: {lens:?}"
            );
            assert_eq!(body, samples);
        }
        // Sizes that do not divide: all equal but the last, which is shorter.
        let samples = std::vec![3u8; 1 << 20];
        let items = [
            Item::immediate(0x1600, 5),
            Item::addressed(0x3300, &samples),
        ];
        let greedy = Packetizer::new(1, &items, 9000).unwrap().totals().0;
        let mut p = Packetizer::new(1, &items, 9000).unwrap().even();
        let mut hdr = [0u8; 128];
        let mut lens = Vec::new();
        while let Some(l) = p.next_packet(&mut hdr, |_| {}) {
            lens.push(l.len());
        }
        assert_eq!(lens.len(), greedy);
        let (last, rest) = lens.split_last().unwrap();
        assert!(rest.iter().all(|&l| l == rest[0]) && *last <= rest[0]);
        // Stop heaps (one packet) are unchanged.
        let stop = [Item::immediate(id::STREAM_CTRL, 2)];
        assert_eq!(
            Packetizer::new(1, &stop, 9000).unwrap().even().totals(),
            (1, 56)
        );
    }
}
