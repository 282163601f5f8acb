//! Item descriptors: a whole nested SPEAD packet carried as the value of a
//! DESCRIPTOR (0x5) item, naming an item and giving its type and shape
//! (`docs/specs/spead.md` section 7).
//!
//! The nested packet carries HEAP_CNT, HEAP_LENGTH, PAYLOAD_OFFSET and
//! PAYLOAD_LENGTH like any packet, the described ID as an immediate
//! (DESCRIPTOR_ID 0x14), then addressed fields: name (0x10), description
//! (0x11), format (0x13: 4-byte entries, type char + 24-bit bit width),
//! shape (0x12: 6-byte entries, flag byte with bit 0 = variable, then a
//! 40-bit size) and optionally a numpy-style dtype header (0x15). This is the
//! layout spead2 emits for SPEAD-64-40.

use crate::wire::{self, id, ItemPointer, Packet, Repr};
use core::fmt;

/// Bytes of one format entry.
pub const FORMAT_ENTRY_LEN: usize = 4;
/// Bytes of one shape entry.
pub const SHAPE_ENTRY_LEN: usize = 6;

/// A parsed descriptor borrowing the packet bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor<'a> {
    /// ID of the described item.
    pub id: u32,
    /// Short name.
    pub name: &'a [u8],
    /// Long description.
    pub description: &'a [u8],
    /// Raw format entries (`FORMAT_ENTRY_LEN` bytes each).
    pub format: &'a [u8],
    /// Raw shape entries (`SHAPE_ENTRY_LEN` bytes each).
    pub shape: &'a [u8],
    /// numpy-style dtype header, empty when the format is used instead.
    pub dtype: &'a [u8],
}

/// A format entry: type code (`u`, `i`, `f`, `c`, `b`...) and width in bits.
pub type FormatField = (u8, u32);

impl<'a> Descriptor<'a> {
    /// Parses a nested descriptor packet.
    pub fn parse(bytes: &'a [u8]) -> wire::Result<Descriptor<'a>> {
        let packet = Packet::new_checked(bytes)?;
        let repr = Repr::parse(&packet)?;
        let payload = repr.payload(&packet);
        // Lengths of addressed fields run to the next larger address (or the
        // end). A handful of pointers: a quadratic scan needs no allocation.
        let field = |want: u32| -> wire::Result<&'a [u8]> {
            let Some(p) = packet
                .item_pointers()
                .find(|p| !p.is_immediate() && p.id() == want)
            else {
                return Ok(&[]);
            };
            let start = p.value();
            let end = packet
                .item_pointers()
                .filter(|q| !q.is_immediate() && q.value() > start)
                .map(|q| q.value())
                .min()
                .unwrap_or(payload.len() as u64)
                .min(payload.len() as u64);
            if start > end {
                return Err(wire::Error::Inconsistent);
            }
            // Re-borrow from the original slice so the result lives for 'a.
            let base = packet.header_len();
            Ok(&bytes[base + start as usize..base + end as usize])
        };
        let id = packet
            .item_pointers()
            .find(|p| p.is_immediate() && p.id() == id::DESCRIPTOR_ID)
            .map(|p| p.value() as u32)
            .ok_or(wire::Error::MissingItem(id::DESCRIPTOR_ID))?;
        let d = Descriptor {
            id,
            name: field(id::DESCRIPTOR_NAME)?,
            description: field(id::DESCRIPTOR_DESCRIPTION)?,
            format: field(id::DESCRIPTOR_FORMAT)?,
            shape: field(id::DESCRIPTOR_SHAPE)?,
            dtype: field(id::DESCRIPTOR_DTYPE)?,
        };
        Ok(d)
    }

    /// Format entries (a partial trailing entry is ignored).
    pub fn format_fields(&self) -> impl Iterator<Item = FormatField> + 'a {
        self.format
            .chunks_exact(FORMAT_ENTRY_LEN)
            .map(|c| (c[0], u32::from_be_bytes([0, c[1], c[2], c[3]])))
    }

    /// Shape dimensions, `None` for a variable-size dimension.
    pub fn shape_dims(&self) -> impl Iterator<Item = Option<u64>> + 'a {
        self.shape.chunks_exact(SHAPE_ENTRY_LEN).map(|c| {
            if c[0] & 1 != 0 {
                None
            } else {
                Some(u64::from_be_bytes([0, 0, 0, c[1], c[2], c[3], c[4], c[5]]))
            }
        })
    }
}

/// What to emit: the fields of a descriptor, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct DescriptorRepr<'a> {
    /// ID of the described item.
    pub id: u32,
    /// Short name.
    pub name: &'a str,
    /// Long description.
    pub description: &'a str,
    /// Shape, `None` = variable.
    pub shape: &'a [Option<u64>],
    /// Format entries (ignored by readers when `dtype` is set).
    pub format: &'a [FormatField],
    /// numpy-style dtype header, e.g. `{'descr': '|i1', 'fortran_order': False, 'shape': (8192,)}`.
    pub dtype: Option<&'a str>,
}

impl DescriptorRepr<'_> {
    fn n_pointers(&self) -> usize {
        // four per-packet immediates + id + name + description + format + shape [+ dtype]
        9 + usize::from(self.dtype.is_some())
    }

    fn payload_len(&self) -> usize {
        self.name.len()
            + self.description.len()
            + self.format.len() * FORMAT_ENTRY_LEN
            + self.shape.len() * SHAPE_ENTRY_LEN
            + self.dtype.map_or(0, str::len)
    }

    /// Exact size of the emitted nested packet.
    pub fn buffer_len(&self) -> usize {
        wire::HEADER_LEN + wire::POINTER_LEN * self.n_pointers() + self.payload_len()
    }

    /// Writes the nested packet into `buf`, which must hold `buffer_len()`
    /// bytes; returns the bytes written, or `None` when `buf` is too short.
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let len = self.buffer_len();
        let buf = buf.get_mut(..len)?;
        let n = self.n_pointers();
        let plen = self.payload_len() as u64;
        let mut packet = Packet::new_unchecked(&mut *buf);
        packet.set_header(n as u16);
        let mut addr = 0u64;
        let mut next = |len: usize| {
            let a = addr;
            addr += len as u64;
            a
        };
        let mut ptrs = [ItemPointer::default(); 10];
        ptrs[0] = ItemPointer::immediate(id::HEAP_CNT, 1);
        ptrs[1] = ItemPointer::immediate(id::HEAP_LENGTH, plen);
        ptrs[2] = ItemPointer::immediate(id::PAYLOAD_OFFSET, 0);
        ptrs[3] = ItemPointer::immediate(id::PAYLOAD_LENGTH, plen);
        ptrs[4] = ItemPointer::immediate(id::DESCRIPTOR_ID, u64::from(self.id));
        ptrs[5] = ItemPointer::addressed(id::DESCRIPTOR_NAME, next(self.name.len()));
        ptrs[6] = ItemPointer::addressed(id::DESCRIPTOR_DESCRIPTION, next(self.description.len()));
        ptrs[7] = ItemPointer::addressed(id::DESCRIPTOR_FORMAT, next(self.format.len() * 4));
        ptrs[8] = ItemPointer::addressed(id::DESCRIPTOR_SHAPE, next(self.shape.len() * 6));
        if let Some(d) = self.dtype {
            ptrs[9] = ItemPointer::addressed(id::DESCRIPTOR_DTYPE, next(d.len()));
        }
        for (i, p) in ptrs[..n].iter().enumerate() {
            packet.set_item_pointer(i, *p);
        }
        let mut out = &mut packet.payload_mut()[..];
        let mut put = |bytes: &[u8]| {
            let (head, tail) = core::mem::take(&mut out).split_at_mut(bytes.len());
            head.copy_from_slice(bytes);
            out = tail;
        };
        put(self.name.as_bytes());
        put(self.description.as_bytes());
        for &(code, bits) in self.format {
            let b = bits.to_be_bytes();
            put(&[code, b[1], b[2], b[3]]);
        }
        for dim in self.shape {
            let (flag, size) = match dim {
                Some(s) => (0u8, *s),
                None => (1u8, 0),
            };
            let b = size.to_be_bytes();
            put(&[flag, b[3], b[4], b[5], b[6], b[7]]);
        }
        if let Some(d) = self.dtype {
            put(d.as_bytes());
        }
        Some(len)
    }
}

impl fmt::Display for Descriptor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "descriptor {:#x} ", self.id)?;
        for &b in self.name {
            write!(f, "{}", char::from(b))?;
        }
        Ok(())
    }
}

/// An owned descriptor, as a receiver keeps it.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemDescriptor {
    /// ID of the described item.
    pub id: u32,
    /// Short name (lossy UTF-8).
    pub name: alloc::string::String,
    /// Long description (lossy UTF-8).
    pub description: alloc::string::String,
    /// Shape, `None` = variable.
    pub shape: alloc::vec::Vec<Option<u64>>,
    /// Format entries.
    pub format: alloc::vec::Vec<FormatField>,
    /// numpy-style dtype header, if any.
    pub dtype: Option<alloc::string::String>,
}

#[cfg(feature = "alloc")]
impl From<&Descriptor<'_>> for ItemDescriptor {
    fn from(d: &Descriptor<'_>) -> Self {
        use alloc::string::String;
        ItemDescriptor {
            id: d.id,
            name: String::from_utf8_lossy(d.name).into_owned(),
            description: String::from_utf8_lossy(d.description).into_owned(),
            shape: d.shape_dims().collect(),
            format: d.format_fields().collect(),
            dtype: (!d.dtype.is_empty()).then(|| String::from_utf8_lossy(d.dtype).into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // spead2 4.5.1 `ItemGroup.add_item(0x1600, "timestamp", "ts", shape=(),
    // format=[("u", 40)])` descriptor, as found in the heap's payload.
    const SPEAD2_TS: &str = "53040305000000098000010000000001800002000000000f\
        8000030000000000800004000000000f8000140000001600000010000000000000001100\
        00000009000013000000000b000012000000000f74696d657374616d7074737500002\
        8";

    fn unhex(s: &str) -> std::vec::Vec<u8> {
        let s: std::string::String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn parses_spead2_descriptor() {
        let bytes = unhex(SPEAD2_TS);
        assert_eq!(bytes.len(), 95);
        let d = Descriptor::parse(&bytes).unwrap();
        assert_eq!(d.id, 0x1600);
        assert_eq!(d.name, b"timestamp");
        assert_eq!(d.description, b"ts");
        assert_eq!(
            d.format_fields().collect::<std::vec::Vec<_>>(),
            [(b'u', 40)]
        );
        assert_eq!(d.shape_dims().count(), 0);
        assert!(d.dtype.is_empty());
    }

    #[test]
    fn emits_spead2_descriptor_bytes() {
        let r = DescriptorRepr {
            id: 0x1600,
            name: "timestamp",
            description: "ts",
            shape: &[],
            format: &[(b'u', 40)],
            dtype: None,
        };
        let mut buf = [0u8; 128];
        let n = r.emit(&mut buf).unwrap();
        assert_eq!(n, r.buffer_len());
        assert_eq!(&buf[..n], &unhex(SPEAD2_TS)[..]);
        assert!(r.emit(&mut buf[..n - 1]).is_none());
    }

    #[test]
    fn dtype_and_shape_round_trip() {
        let dtype = "{'descr': '|u1', 'fortran_order': False, 'shape': (16,)}";
        let r = DescriptorRepr {
            id: 0x3300,
            name: "samples",
            description: "data",
            shape: &[Some(16), None],
            format: &[],
            dtype: Some(dtype),
        };
        let mut buf = [0u8; 256];
        let n = r.emit(&mut buf).unwrap();
        let d = Descriptor::parse(&buf[..n]).unwrap();
        assert_eq!(d.id, 0x3300);
        assert_eq!(d.name, b"samples");
        assert_eq!(d.dtype, dtype.as_bytes());
        assert_eq!(
            d.shape_dims().collect::<std::vec::Vec<_>>(),
            [Some(16), None]
        );
        let owned = ItemDescriptor::from(&d);
        assert_eq!(owned.dtype.as_deref(), Some(dtype));
    }
}
