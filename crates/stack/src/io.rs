//! Where a sender reads blocks from ([`Source`]) and where a receiver writes
//! them ([`Sink`]): memory always, files under `std`.
//!
//! Both work at offsets so a block is read straight into its place in the
//! outgoing message and written straight from the received message, with no
//! staging copy.

use crate::error::{Error, ErrorKind, Result};

/// A file-like thing a sender reads blocks from.
pub trait Source {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` from `offset`; the whole range must lie inside the source.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Base name sent in META (at most 211 bytes).
    fn name(&self) -> &[u8];
}

/// A file-like thing a receiver writes blocks into.
pub trait Sink {
    /// Called once when META announces the file size.
    fn set_len(&mut self, len: u64) -> Result<()>;
    /// Write `data` at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()>;
    /// Read back bytes already written (used to hash blocks that arrived out
    /// of order).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// The bytes at `offset..offset + len` where they are stored, for a sink
    /// that holds the file in memory; `None` (the default) otherwise, or
    /// outside the file. A receiver whose sink lends its bytes hashes them
    /// there in passes of many blocks rather than each block as it arrives.
    fn stored(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let _ = (offset, len);
        None
    }
    /// Whether this sink hashes the file itself ([`Sink::hash_upto`],
    /// [`Sink::digest`]), for example on a thread of its own while blocks
    /// keep arriving. A receiver asks once, at META; `false` (the default)
    /// leaves the hashing to the receiver.
    fn hashes(&self) -> bool {
        false
    }
    /// For a sink that hashes: the first `len` bytes of the file are
    /// written and will not be written again, so they can be hashed (now or
    /// later). A sink that hashes refuses later writes below `len`.
    fn hash_upto(&mut self, len: u64) {
        let _ = len;
    }
    /// For a sink that hashes: the SHA-256 of the bytes [`Sink::hash_upto`]
    /// announced, once they are all hashed (waiting for them if need be);
    /// `None` from a sink that does not hash or has lost the digest.
    fn digest(&mut self) -> Option<[u8; 32]> {
        None
    }
}

impl<T: Source + ?Sized> Source for &mut T {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read_at(offset, buf)
    }
    fn name(&self) -> &[u8] {
        (**self).name()
    }
}

impl<T: Sink + ?Sized> Sink for &mut T {
    fn set_len(&mut self, len: u64) -> Result<()> {
        (**self).set_len(len)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        (**self).write_at(offset, data)
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read_at(offset, buf)
    }
    fn stored(&self, offset: u64, len: usize) -> Option<&[u8]> {
        (**self).stored(offset, len)
    }
    fn hashes(&self) -> bool {
        (**self).hashes()
    }
    fn hash_upto(&mut self, len: u64) {
        (**self).hash_upto(len)
    }
    fn digest(&mut self) -> Option<[u8; 32]> {
        (**self).digest()
    }
}

pub(crate) fn range(offset: u64, len: usize, size: usize) -> Result<core::ops::Range<usize>> {
    let oob = || {
        Error::new(ErrorKind::OutOfBounds {
            offset,
            len,
            size: size as u64,
        })
    };
    let start = usize::try_from(offset).map_err(|_| oob())?;
    let end = start.checked_add(len).ok_or_else(oob)?;
    if end > size {
        return Err(oob());
    }
    Ok(start..end)
}

/// A source over a byte slice.
#[derive(Debug, Clone, Copy)]
pub struct MemorySource<'a> {
    data: &'a [u8],
    name: &'a [u8],
}

impl<'a> MemorySource<'a> {
    /// Serve `data` under `name`.
    pub const fn new(data: &'a [u8], name: &'a [u8]) -> Self {
        MemorySource { data, name }
    }
}

impl Source for MemorySource<'_> {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let r = range(offset, buf.len(), self.data.len())?;
        buf.copy_from_slice(&self.data[r]);
        Ok(())
    }
    fn name(&self) -> &[u8] {
        self.name
    }
}

/// A sink over caller storage (`[u8; N]`, `&mut [u8]`, or a `Vec<u8>` under
/// `alloc`, which grows to the announced size).
#[derive(Debug, Clone)]
pub struct MemorySink<B> {
    buf: B,
    len: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> MemorySink<B> {
    /// A sink writing into `buf`; files larger than `buf` are refused at META.
    pub fn new(buf: B) -> Self {
        MemorySink { buf, len: 0 }
    }
    /// The file as received so far (`len` bytes announced by META).
    pub fn data(&self) -> &[u8] {
        &self.buf.as_ref()[..self.len]
    }
    /// Give the storage back.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Sink for MemorySink<B> {
    fn set_len(&mut self, len: u64) -> Result<()> {
        let cap = self.buf.as_ref().len();
        let r = range(0, usize::try_from(len).unwrap_or(usize::MAX), cap)?;
        self.len = r.end;
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let r = range(offset, data.len(), self.len)?;
        self.buf.as_mut()[r].copy_from_slice(data);
        Ok(())
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let r = range(offset, buf.len(), self.len)?;
        buf.copy_from_slice(&self.buf.as_ref()[r]);
        Ok(())
    }
    fn stored(&self, offset: u64, len: usize) -> Option<&[u8]> {
        self.buf.as_ref().get(range(offset, len, self.len).ok()?)
    }
}

/// A growable in-memory sink (allocates once, at META).
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, Default)]
pub struct VecSink {
    /// The file as received.
    pub data: alloc::vec::Vec<u8>,
    /// Largest size accepted at META.
    pub max_len: usize,
}

#[cfg(feature = "alloc")]
impl VecSink {
    /// A sink accepting files up to `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        VecSink {
            data: alloc::vec::Vec::new(),
            max_len,
        }
    }
}

#[cfg(feature = "alloc")]
impl Sink for VecSink {
    fn set_len(&mut self, len: u64) -> Result<()> {
        let r = range(0, usize::try_from(len).unwrap_or(usize::MAX), self.max_len)?;
        // Zeroed memory from the allocator (fresh pages need no clearing),
        // not a fill of the whole file before the first block lands.
        self.data = alloc::vec![0; r.end];
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let r = range(offset, data.len(), self.data.len())?;
        self.data[r].copy_from_slice(data);
        Ok(())
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let r = range(offset, buf.len(), self.data.len())?;
        buf.copy_from_slice(&self.data[r]);
        Ok(())
    }
    fn stored(&self, offset: u64, len: usize) -> Option<&[u8]> {
        self.data.get(range(offset, len, self.data.len()).ok()?)
    }
}

#[cfg(feature = "std")]
mod file {
    use super::*;
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::path::Path;
    use std::vec::Vec;

    fn io(op: &'static str) -> impl Fn(std::io::Error) -> Error {
        move |e| {
            Error::new(ErrorKind::Io {
                op,
                code: e.raw_os_error(),
            })
        }
    }

    /// Checks `offset..offset + len` lies within `size`, then seeks there.
    fn seek_within(
        file: &mut File,
        offset: u64,
        len: usize,
        size: u64,
        what: &'static str,
    ) -> Result<()> {
        range(offset, len, usize::try_from(size).unwrap_or(usize::MAX))?;
        file.seek(SeekFrom::Start(offset)).map_err(io(what))?;
        Ok(())
    }

    /// A source reading a file at offsets.
    #[derive(Debug)]
    pub struct FileSource {
        file: File,
        size: u64,
        name: Vec<u8>,
    }

    impl FileSource {
        /// Open `path`; META carries its base name.
        pub fn open(path: impl AsRef<Path>) -> Result<Self> {
            let path = path.as_ref();
            let file = File::open(path).map_err(io("opening the source file"))?;
            let size = file
                .metadata()
                .map_err(io("reading the source file's size"))?
                .len();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().as_bytes().to_vec())
                .unwrap_or_default();
            Ok(FileSource { file, size, name })
        }
    }

    impl Source for FileSource {
        fn size(&self) -> u64 {
            self.size
        }
        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
            seek_within(
                &mut self.file,
                offset,
                buf.len(),
                self.size,
                "seeking in the source file",
            )?;
            self.file
                .read_exact(buf)
                .map_err(io("reading the source file"))
        }
        fn name(&self) -> &[u8] {
            &self.name
        }
    }

    /// A sink writing a file at offsets.
    #[derive(Debug)]
    pub struct FileSink {
        file: File,
        len: u64,
    }

    impl FileSink {
        /// Create (truncate) `path`.
        pub fn create(path: impl AsRef<Path>) -> Result<Self> {
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .map_err(io("creating the sink file"))?;
            Ok(FileSink { file, len: 0 })
        }
    }

    impl Sink for FileSink {
        fn set_len(&mut self, len: u64) -> Result<()> {
            self.file
                .set_len(len)
                .map_err(io("setting the sink file's length"))?;
            self.len = len;
            Ok(())
        }
        fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
            seek_within(
                &mut self.file,
                offset,
                data.len(),
                self.len,
                "seeking in the sink file",
            )?;
            self.file
                .write_all(data)
                .map_err(io("writing the sink file"))
        }
        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
            seek_within(
                &mut self.file,
                offset,
                buf.len(),
                self.len,
                "seeking in the sink file",
            )?;
            self.file
                .read_exact(buf)
                .map_err(io("reading back the sink file"))
        }
    }
}

#[cfg(feature = "std")]
pub use file::{FileSink, FileSource};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_source_and_sink_bounds() {
        let mut s = MemorySource::new(b"hello", b"h");
        let mut b = [0u8; 3];
        s.read_at(2, &mut b).unwrap();
        assert_eq!(&b, b"llo");
        assert!(s.read_at(3, &mut b).is_err());
        assert!(s.read_at(u64::MAX, &mut b).is_err());
        let mut k = MemorySink::new([0u8; 8]);
        assert!(k.set_len(9).is_err());
        k.set_len(5).unwrap();
        k.write_at(3, b"lo").unwrap();
        assert!(k.write_at(4, b"lo").is_err());
        assert_eq!(&k.data()[3..], b"lo");
    }
}
