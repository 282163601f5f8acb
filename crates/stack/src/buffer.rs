//! A packet buffer with headroom and tailroom.
//!
//! The payload is written once, in the middle of the storage; headers are
//! prepended into the headroom and trailers (the CRC) appended into the
//! tailroom by moving two offsets, so a payload is never copied to add or strip
//! framing. Storage is anything that derefs to a byte slice: a fixed array
//! (`[u8; N]`, capacity as a const generic) or a caller-provided `&mut [u8]`.

use core::fmt;

/// Not enough head- or tailroom for the requested operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom {
    /// Bytes requested.
    pub wanted: usize,
    /// Bytes available on that side.
    pub available: usize,
}

impl fmt::Display for NoRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "buffer has room for {} bytes, {} wanted",
            self.available, self.wanted
        )
    }
}

/// A window `[start, end)` into `storage`, growable at both ends.
///
/// Invariant: `start <= end <= storage.len()`; every method keeps it, so no
/// accessor panics.
#[derive(Clone)]
pub struct Buffer<S> {
    storage: S,
    start: usize,
    end: usize,
}

impl<const N: usize> Buffer<[u8; N]> {
    /// A zeroed array-backed buffer with `headroom` bytes reserved in front
    /// (clamped to `N`).
    pub const fn with_headroom(headroom: usize) -> Self {
        let h = if headroom > N { N } else { headroom };
        Buffer {
            storage: [0; N],
            start: h,
            end: h,
        }
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> Buffer<S> {
    /// Wrap `storage` with an empty window starting `headroom` bytes in
    /// (clamped to the storage length).
    pub fn new(storage: S, headroom: usize) -> Self {
        let h = headroom.min(storage.as_ref().len());
        Buffer {
            storage,
            start: h,
            end: h,
        }
    }

    /// Reset to an empty window `headroom` bytes in.
    pub fn reset(&mut self, headroom: usize) {
        let h = headroom.min(self.storage.as_ref().len());
        self.start = h;
        self.end = h;
    }

    /// Wrap `storage` whose bytes `[0, len)` already hold a received message.
    pub fn filled(storage: S, len: usize) -> Self {
        let len = len.min(storage.as_ref().len());
        Buffer {
            storage,
            start: 0,
            end: len,
        }
    }

    /// Total capacity of the storage.
    pub fn capacity(&self) -> usize {
        self.storage.as_ref().len()
    }

    /// Free bytes in front of the window.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Free bytes behind the window.
    pub fn tailroom(&self) -> usize {
        self.capacity() - self.end
    }

    /// Length of the window.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when the window is empty.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The window's bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.storage.as_ref()[self.start..self.end]
    }

    /// The window's bytes, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage.as_mut()[self.start..self.end]
    }

    /// The whole tailroom, for a reader to fill in place before
    /// [`Buffer::commit`].
    pub fn spare_tail(&mut self) -> &mut [u8] {
        let end = self.end;
        &mut self.storage.as_mut()[end..]
    }

    /// Grow the window by `n` bytes already written into [`Buffer::spare_tail`].
    pub fn commit(&mut self, n: usize) -> Result<(), NoRoom> {
        self.append(n).map(|_| ())
    }

    /// Grow the window `n` bytes to the front and return those bytes.
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8], NoRoom> {
        if n > self.start {
            return Err(NoRoom {
                wanted: n,
                available: self.start,
            });
        }
        self.start -= n;
        let s = self.start;
        Ok(&mut self.storage.as_mut()[s..s + n])
    }

    /// Grow the window `n` bytes to the back and return those bytes.
    pub fn append(&mut self, n: usize) -> Result<&mut [u8], NoRoom> {
        let room = self.tailroom();
        if n > room {
            return Err(NoRoom {
                wanted: n,
                available: room,
            });
        }
        let e = self.end;
        self.end += n;
        Ok(&mut self.storage.as_mut()[e..e + n])
    }

    /// Shrink the window by `n` bytes at the front, returning them.
    pub fn strip_front(&mut self, n: usize) -> Result<&[u8], NoRoom> {
        let len = self.len();
        if n > len {
            return Err(NoRoom {
                wanted: n,
                available: len,
            });
        }
        let s = self.start;
        self.start += n;
        Ok(&self.storage.as_ref()[s..s + n])
    }

    /// Shrink the window by `n` bytes at the back, returning them.
    pub fn strip_back(&mut self, n: usize) -> Result<&[u8], NoRoom> {
        let len = self.len();
        if n > len {
            return Err(NoRoom {
                wanted: n,
                available: len,
            });
        }
        self.end -= n;
        let e = self.end;
        Ok(&self.storage.as_ref()[e..e + n])
    }

    /// Give the storage back.
    pub fn into_inner(self) -> S {
        self.storage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_append_strip_without_moving_payload() {
        let mut b: Buffer<[u8; 16]> = Buffer::with_headroom(5);
        b.spare_tail()[..3].copy_from_slice(b"abc");
        b.commit(3).unwrap();
        b.prepend(2).unwrap().copy_from_slice(b"hh");
        b.append(2).unwrap().copy_from_slice(b"tt");
        assert_eq!(b.as_slice(), b"hhabctt");
        assert_eq!(b.headroom(), 3);
        assert_eq!(b.strip_front(2).unwrap(), b"hh");
        assert_eq!(b.strip_back(2).unwrap(), b"tt");
        assert_eq!(b.as_slice(), b"abc");
    }

    #[test]
    fn no_room_is_an_error_not_a_panic() {
        let mut store = [0u8; 4];
        let mut b = Buffer::new(&mut store[..], 1);
        assert_eq!(
            b.prepend(2).unwrap_err(),
            NoRoom {
                wanted: 2,
                available: 1
            }
        );
        assert!(b.append(4).is_err());
        assert!(b.strip_front(1).is_err());
        assert!(b.append(3).is_ok());
        assert!(b.strip_back(4).is_err());
    }
}
