//! SPEAD packet header and item pointers (flavour SPEAD-64-40), smoltcp style
//! (`docs/specs/spead.md` sections 1-3).
//!
//! A packet is an 8-byte header, `n` 8-byte item pointers, then a slice of
//! the heap payload:
//!
//! ```text
//! 0      1      2      3      4      5      6      7
//! +------+------+------+------+------+------+------+------+
//! | 0x53 | 0x04 | 0x03 | 0x05 | 0x00 | 0x00 |  n (u16 BE) |
//! +------+------+------+------+------+------+------+------+
//! | I | item id (23 bits) | value or address (40 bits)    |  x n
//! +-------------------------------------------------------+
//! | payload ...                                           |
//! ```
//!
//! Contract: after [`Packet::new_checked`] succeeds no getter panics; the
//! setters never panic on a buffer of at least [`Packet::header_len`] bytes.

use core::fmt;

/// First header byte.
pub const MAGIC: u8 = 0x53;
/// Protocol version in the second header byte.
pub const VERSION: u8 = 4;
/// Item-pointer (item ID) width in bytes of the one supported flavour.
pub const ITEM_ID_BYTES: u8 = 3;
/// Heap-address width in bytes of the one supported flavour.
pub const HEAP_ADDRESS_BYTES: u8 = 5;
/// Bits of address (or immediate value) in an item pointer.
pub const ADDRESS_BITS: u32 = 40;
/// Largest item ID (23 bits).
pub const MAX_ID: u32 = (1 << 23) - 1;
/// Largest address, immediate value or heap length (40 bits).
pub const MAX_VALUE: u64 = (1 << ADDRESS_BITS) - 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 8;
/// Size of one item pointer.
pub const POINTER_LEN: usize = 8;
/// Header plus the four per-packet immediates spead2 always emits first.
pub const PREFIX_LEN: usize = HEADER_LEN + 4 * POINTER_LEN;

/// Well-known item IDs.
pub mod id {
    /// Padding / no item.
    pub const NULL: u32 = 0x00;
    /// Heap counter (identifies the heap).
    pub const HEAP_CNT: u32 = 0x01;
    /// Total heap payload length.
    pub const HEAP_LENGTH: u32 = 0x02;
    /// Offset of this packet's payload in the heap.
    pub const PAYLOAD_OFFSET: u32 = 0x03;
    /// Length of this packet's payload.
    pub const PAYLOAD_LENGTH: u32 = 0x04;
    /// An item descriptor (a nested SPEAD packet).
    pub const DESCRIPTOR: u32 = 0x05;
    /// Stream control (see [`super::ctrl`]).
    pub const STREAM_CTRL: u32 = 0x06;
    /// Descriptor field: name.
    pub const DESCRIPTOR_NAME: u32 = 0x10;
    /// Descriptor field: description.
    pub const DESCRIPTOR_DESCRIPTION: u32 = 0x11;
    /// Descriptor field: shape.
    pub const DESCRIPTOR_SHAPE: u32 = 0x12;
    /// Descriptor field: format.
    pub const DESCRIPTOR_FORMAT: u32 = 0x13;
    /// Descriptor field: the described item's ID.
    pub const DESCRIPTOR_ID: u32 = 0x14;
    /// Descriptor field: numpy-style dtype header.
    pub const DESCRIPTOR_DTYPE: u32 = 0x15;
}

/// Values of the STREAM_CTRL item.
pub mod ctrl {
    /// Stream start.
    pub const START: u64 = 0;
    /// Descriptor reissue.
    pub const DESCRIPTOR_REISSUE: u64 = 1;
    /// Stream stop: a heap carrying it ends the stream.
    pub const STOP: u64 = 2;
    /// Descriptor update.
    pub const DESCRIPTOR_UPDATE: u64 = 3;
}

/// Why bytes are not a SPEAD-64-40 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Shorter than its header, its item pointers or its payload length says.
    Truncated,
    /// First byte is not 0x53.
    BadMagic(u8),
    /// Version byte is not 4.
    BadVersion(u8),
    /// A flavour other than SPEAD-64-40 (item-ID bytes, heap-address bytes).
    UnsupportedFlavour {
        /// Item pointer ID width in bytes, from the header.
        item_id_bytes: u8,
        /// Heap address width in bytes, from the header.
        heap_address_bytes: u8,
    },
    /// A required per-packet item (HEAP_CNT, PAYLOAD_OFFSET, PAYLOAD_LENGTH) is absent.
    MissingItem(u32),
    /// Fields contradict each other (e.g. payload past the heap length).
    Inconsistent,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => write!(f, "truncated SPEAD packet"),
            Error::BadMagic(m) => write!(f, "not a SPEAD packet (magic {m:#04x}, expected 0x53)"),
            Error::BadVersion(v) => write!(f, "unsupported SPEAD version {v} (expected 4)"),
            Error::UnsupportedFlavour {
                item_id_bytes,
                heap_address_bytes,
            } => write!(
                f,
                "unsupported SPEAD flavour SPEAD-{}-{} (only SPEAD-64-40 is supported)",
                (u32::from(*item_id_bytes) + u32::from(*heap_address_bytes)) * 8,
                u32::from(*heap_address_bytes) * 8
            ),
            Error::MissingItem(id) => write!(f, "SPEAD packet lacks required item {id:#x}"),
            Error::Inconsistent => write!(f, "SPEAD packet fields are inconsistent"),
        }
    }
}

/// Result of wire operations.
pub type Result<T> = core::result::Result<T, Error>;

/// One 64-bit item pointer: immediate flag, 23-bit ID, 40-bit value or address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ItemPointer(pub u64);

impl ItemPointer {
    /// An immediate item (value carried in the pointer). ID and value are masked.
    pub const fn immediate(id: u32, value: u64) -> Self {
        ItemPointer((1 << 63) | (((id & MAX_ID) as u64) << ADDRESS_BITS) | (value & MAX_VALUE))
    }
    /// An addressed item (value at `address` in the heap payload).
    pub const fn addressed(id: u32, address: u64) -> Self {
        ItemPointer((((id & MAX_ID) as u64) << ADDRESS_BITS) | (address & MAX_VALUE))
    }
    /// Whether the value is carried in the pointer.
    pub const fn is_immediate(self) -> bool {
        self.0 >> 63 == 1
    }
    /// The item ID.
    pub const fn id(self) -> u32 {
        ((self.0 >> ADDRESS_BITS) as u32) & MAX_ID
    }
    /// The immediate value or the payload address.
    pub const fn value(self) -> u64 {
        self.0 & MAX_VALUE
    }
    /// Big-endian bytes.
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for ItemPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_immediate() { "imm" } else { "addr" };
        write!(f, "{:#x}:{}={}", self.id(), kind, self.value())
    }
}

mod field {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 1;
    pub const ITEM_ID_BYTES: usize = 2;
    pub const HEAP_ADDRESS_BYTES: usize = 3;
    pub const N_ITEMS: core::ops::Range<usize> = 6..8;
}

/// A read/write view of a SPEAD packet in a byte buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checks (getters may panic on short buffers).
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks magic, version, flavour and lengths.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        p.check()?;
        Ok(p)
    }

    /// Checks the header and that the item pointers fit.
    pub fn check(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::MAGIC] != MAGIC {
            return Err(Error::BadMagic(b[field::MAGIC]));
        }
        if b[field::VERSION] != VERSION {
            return Err(Error::BadVersion(b[field::VERSION]));
        }
        let (i, h) = (b[field::ITEM_ID_BYTES], b[field::HEAP_ADDRESS_BYTES]);
        if i != ITEM_ID_BYTES || h != HEAP_ADDRESS_BYTES {
            return Err(Error::UnsupportedFlavour {
                item_id_bytes: i,
                heap_address_bytes: h,
            });
        }
        if b.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Number of item pointers.
    pub fn item_count(&self) -> usize {
        let b = self.buffer.as_ref();
        usize::from(u16::from_be_bytes([
            b[field::N_ITEMS.start],
            b[field::N_ITEMS.start + 1],
        ]))
    }

    /// Header plus item pointers, in bytes.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + POINTER_LEN * self.item_count()
    }

    /// Item pointer `i` (`i < item_count()`).
    pub fn item_pointer(&self, i: usize) -> ItemPointer {
        let at = HEADER_LEN + POINTER_LEN * i;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&self.buffer.as_ref()[at..at + 8]);
        ItemPointer(u64::from_be_bytes(raw))
    }

    /// All item pointers in order.
    pub fn item_pointers(&self) -> impl Iterator<Item = ItemPointer> + '_ {
        (0..self.item_count()).map(move |i| self.item_pointer(i))
    }

    /// Everything after the item pointers (the payload, possibly with trailing bytes).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the 8-byte SPEAD-64-40 header announcing `n_items` item pointers.
    pub fn set_header(&mut self, n_items: u16) {
        let b = self.buffer.as_mut();
        b[..6].copy_from_slice(&[MAGIC, VERSION, ITEM_ID_BYTES, HEAP_ADDRESS_BYTES, 0, 0]);
        b[field::N_ITEMS].copy_from_slice(&n_items.to_be_bytes());
    }

    /// Writes item pointer `i`.
    pub fn set_item_pointer(&mut self, i: usize, p: ItemPointer) {
        let at = HEADER_LEN + POINTER_LEN * i;
        self.buffer.as_mut()[at..at + 8].copy_from_slice(&p.to_bytes());
    }

    /// Mutable payload after the item pointers.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// The per-packet fields every SPEAD packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// HEAP_CNT: which heap this packet belongs to.
    pub heap_cnt: u64,
    /// HEAP_LENGTH, when present.
    pub heap_length: Option<u64>,
    /// PAYLOAD_OFFSET of this packet's slice.
    pub payload_offset: u64,
    /// PAYLOAD_LENGTH of this packet's slice.
    pub payload_length: u64,
}

impl Repr {
    /// Extracts the per-packet fields; checks the payload is present and
    /// consistent with the heap length.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        let (mut cnt, mut len, mut off, mut plen) = (None, None, None, None);
        for p in packet.item_pointers() {
            if !p.is_immediate() {
                continue;
            }
            match p.id() {
                id::HEAP_CNT => cnt = Some(p.value()),
                id::HEAP_LENGTH => len = Some(p.value()),
                id::PAYLOAD_OFFSET => off = Some(p.value()),
                id::PAYLOAD_LENGTH => plen = Some(p.value()),
                _ => {}
            }
        }
        let repr = Repr {
            heap_cnt: cnt.ok_or(Error::MissingItem(id::HEAP_CNT))?,
            heap_length: len,
            payload_offset: off.ok_or(Error::MissingItem(id::PAYLOAD_OFFSET))?,
            payload_length: plen.ok_or(Error::MissingItem(id::PAYLOAD_LENGTH))?,
        };
        if (packet.payload().len() as u64) < repr.payload_length {
            return Err(Error::Truncated);
        }
        if let Some(l) = repr.heap_length {
            if repr.payload_offset + repr.payload_length > l {
                return Err(Error::Inconsistent);
            }
        }
        Ok(repr)
    }

    /// Bytes of this packet's heap payload (`payload_length` bytes).
    pub fn payload<'a, T: AsRef<[u8]>>(&self, packet: &'a Packet<T>) -> &'a [u8] {
        // parse() checked the length fits.
        &packet.payload()[..self.payload_length as usize]
    }

    /// Bytes of a packet carrying just these fields (HEAP_LENGTH given or
    /// not) and `payload_length` payload bytes.
    pub fn buffer_len(&self) -> usize {
        let pointers = 3 + usize::from(self.heap_length.is_some());
        HEADER_LEN + POINTER_LEN * pointers + self.payload_length as usize
    }

    /// Writes the header and these fields' pointers into a buffer of
    /// [`buffer_len`](Self::buffer_len) bytes; the payload is the caller's.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let mut ptrs = [
            ItemPointer::immediate(id::HEAP_CNT, self.heap_cnt),
            ItemPointer::immediate(id::PAYLOAD_OFFSET, self.payload_offset),
            ItemPointer::immediate(id::PAYLOAD_LENGTH, self.payload_length),
            ItemPointer::default(),
        ];
        let mut n = 3;
        if let Some(l) = self.heap_length {
            ptrs[n] = ItemPointer::immediate(id::HEAP_LENGTH, l);
            n += 1;
        }
        packet.set_header(n as u16);
        for (i, p) in ptrs[..n].iter().enumerate() {
            packet.set_item_pointer(i, *p);
        }
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SPEAD heap {} offset {} len {}",
            self.heap_cnt, self.payload_offset, self.payload_length
        )?;
        if let Some(l) = self.heap_length {
            write!(f, " of {l}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The stop heap spead2 4.x emits (captured with spead2.send.BytesStream):
    // HEAP_CNT 2, HEAP_LENGTH 1, PAYLOAD_OFFSET 0, PAYLOAD_LENGTH 1,
    // STREAM_CTRL=2 immediate, a NULL addressed pointer, one zero byte of padding.
    const SPEAD2_STOP: [u8; 57] = [
        0x53, 0x04, 0x03, 0x05, 0x00, 0x00, 0x00, 0x06, //
        0x80, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x02, //
        0x80, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x80, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x80, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x80, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x02, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x00,
    ];

    #[test]
    fn parses_spead2_stop_heap() {
        let p = Packet::new_checked(&SPEAD2_STOP[..]).unwrap();
        assert_eq!(p.item_count(), 6);
        let r = Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Repr {
                heap_cnt: 2,
                heap_length: Some(1),
                payload_offset: 0,
                payload_length: 1
            }
        );
        let ctrl = p.item_pointer(4);
        assert!(ctrl.is_immediate());
        assert_eq!((ctrl.id(), ctrl.value()), (id::STREAM_CTRL, ctrl::STOP));
        let null = p.item_pointer(5);
        assert!(!null.is_immediate());
        assert_eq!(null.id(), id::NULL);
        assert_eq!(r.payload(&p), &[0]);
    }

    #[test]
    fn emits_same_bytes_as_spead2() {
        let mut buf = [0u8; 57];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_header(6);
        let ptrs = [
            ItemPointer::immediate(id::HEAP_CNT, 2),
            ItemPointer::immediate(id::HEAP_LENGTH, 1),
            ItemPointer::immediate(id::PAYLOAD_OFFSET, 0),
            ItemPointer::immediate(id::PAYLOAD_LENGTH, 1),
            ItemPointer::immediate(id::STREAM_CTRL, ctrl::STOP),
            ItemPointer::addressed(id::NULL, 0),
        ];
        for (i, ptr) in ptrs.iter().enumerate() {
            p.set_item_pointer(i, *ptr);
        }
        assert_eq!(buf, SPEAD2_STOP);
    }

    #[test]
    fn rejects_other_flavours_and_garbage() {
        let mut b = SPEAD2_STOP;
        b[2] = 2;
        b[3] = 6;
        let e = Packet::new_checked(&b[..]).unwrap_err();
        assert_eq!(
            e,
            Error::UnsupportedFlavour {
                item_id_bytes: 2,
                heap_address_bytes: 6
            }
        );
        assert_eq!(
            std::string::ToString::to_string(&e),
            "unsupported SPEAD flavour SPEAD-64-48 (only SPEAD-64-40 is supported)"
        );
        assert_eq!(
            Packet::new_checked(&[0x53u8, 4][..]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&[0u8; 8][..]).unwrap_err(),
            Error::BadMagic(0)
        );
        let mut v = SPEAD2_STOP;
        v[1] = 3;
        assert_eq!(
            Packet::new_checked(&v[..]).unwrap_err(),
            Error::BadVersion(3)
        );
        // Announces 6 pointers but only has room for 2.
        assert_eq!(
            Packet::new_checked(&SPEAD2_STOP[..24]).unwrap_err(),
            Error::Truncated
        );
        // Payload length past the end of the datagram.
        let p = Packet::new_checked(&SPEAD2_STOP[..56]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn payload_past_heap_length_is_inconsistent() {
        let mut b = SPEAD2_STOP;
        b[31] = 1; // offset 1 + length 1 > heap length 1
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap_err(), Error::Inconsistent);
    }

    #[test]
    fn pointer_fields_round_trip() {
        let p = ItemPointer::immediate(0x1600, 0xAB_CDEF_0123);
        assert!(p.is_immediate());
        assert_eq!(p.id(), 0x1600);
        assert_eq!(p.value(), 0xAB_CDEF_0123);
        let a = ItemPointer::addressed(MAX_ID, MAX_VALUE);
        assert!(!a.is_immediate());
        assert_eq!((a.id(), a.value()), (MAX_ID, MAX_VALUE));
    }
}
