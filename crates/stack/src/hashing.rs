//! [`HashingSink`]: a memory sink that hashes the file itself, on a thread
//! of its own, while blocks keep arriving.
//!
//! A receiver computes SHA-256 over the in-order prefix of the file. On a
//! machine with a second core that work need not wait in line with reading,
//! deframing and storing: this sink takes the prefix as the receiver
//! announces it ([`Sink::hash_upto`]) and a worker thread hashes it where it
//! lies, so the receiver's own thread pays one atomic store per pass and,
//! at the end, the wait for the last bytes ([`Sink::digest`]).
//!
//! Memory for a file of 2 MiB or more is one anonymous mapping, asked for
//! in transparent huge pages where the kernel offers them (`madvise`), so a
//! 16 MB file costs eight page faults of 2 MiB rather than 4,096 of 4 KiB.
//! A smaller file comes from the allocator, and its memory is kept for the
//! next small file, so a process receiving file after file does not fault
//! in fresh pages for each.
//!
//! Safety rests on one rule the sink enforces: a byte announced to the
//! worker is never written again (a write below the announced length is
//! refused with [`ErrorKind::Sealed`]). The worker reads only below that
//! length, the owner writes only above it, and the mapping lives until both
//! have let go of it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::io::Sink;

/// Bytes the owner lets accumulate before it wakes a sleeping worker: a
/// wake-up is a system call (about a microsecond), the SHA-256 of this many
/// bytes about 150 µs.
const WAKE_EVERY: u64 = 256 << 10;

/// Smallest file hashed on a thread: below it, starting the thread and
/// waiting for it at the end (a wake-up and a join, tens of microseconds)
/// cost more than hashing on the owner's thread (1 MiB: about 0.6 ms).
pub const THREAD_MIN: u64 = 1 << 20;

/// Most bytes the worker hashes in one call (one measurement each).
const WORKER_PASS: usize = 1 << 20;

/// Files under this size live in memory from the allocator, and the last
/// one's memory is kept for the next ([`SPARE`]), so a process that
/// receives file after file writes blocks onto pages it already has; a
/// fresh page costs a fault as the first block lands in it (1-2.5 µs in a
/// VM, several blocks' worth of work). Huge pages start here, and so does
/// the mapping.
const MAP_FROM: usize = 2 << 20;

/// Smallest allocation for a file under [`MAP_FROM`]: sizes are rounded up
/// to a power of two from here, so files of similar size reuse the spare.
const HEAP_MIN: usize = 64 << 10;

/// The memory of the last file under [`MAP_FROM`] whose sink let go of it,
/// kept for the next file (at most one, at most 2 MiB per process).
static SPARE: std::sync::Mutex<Option<Spare>> = std::sync::Mutex::new(None);

/// An allocation of `cap` bytes (layout [`Region::layout`]) that no one
/// uses.
struct Spare {
    ptr: *mut u8,
    cap: usize,
}

// SAFETY: a spare is memory no one else points into; whoever takes it out
// of `SPARE` owns it.
unsafe impl Send for Spare {}

impl Spare {
    fn free(self) {
        if let Ok(layout) = Region::layout(self.cap) {
            // SAFETY: allocated by `Region::new` with this layout, unused.
            unsafe { std::alloc::dealloc(self.ptr, layout) };
        }
    }
}

/// One file's bytes: `len` zeroed bytes, from the allocator (`cap` bytes,
/// reused through [`SPARE`]) below [`MAP_FROM`], an anonymous mapping
/// (`cap` 0) from there up.
struct Region {
    ptr: *mut u8,
    len: usize,
    cap: usize,
}

// SAFETY: the region is plain memory; who may touch which bytes when is
// the sink's rule (module docs), kept with `ready`'s release/acquire.
unsafe impl Send for Region {}
unsafe impl Sync for Region {}

impl Region {
    fn new(len: usize) -> Result<Region> {
        if len == 0 {
            return Ok(Region {
                ptr: core::ptr::NonNull::dangling().as_ptr(),
                len,
                cap: 0,
            });
        }
        if len < MAP_FROM {
            return Self::from_heap(len);
        }
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::new(ErrorKind::Io {
                op: "mapping memory for the received file",
                code: std::io::Error::last_os_error().raw_os_error(),
            }));
        }
        // Huge pages where the kernel has them: advice only, so its answer
        // does not matter.
        #[cfg(target_os = "linux")]
        // SAFETY: advice on the mapping just made.
        unsafe {
            libc::madvise(ptr, len, libc::MADV_HUGEPAGE);
        }
        Ok(Region {
            ptr: ptr.cast(),
            len,
            cap: 0,
        })
    }

    /// `len` zeroed bytes (under [`MAP_FROM`]): the spare when it is large
    /// enough, else a new allocation (and the spare, too small, freed).
    fn from_heap(len: usize) -> Result<Region> {
        let cap = len.next_power_of_two().max(HEAP_MIN);
        let spare = SPARE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match spare {
            Some(sp) if sp.cap >= cap => {
                // SAFETY: the spare is ours now, `cap` >= `len` bytes.
                unsafe { core::ptr::write_bytes(sp.ptr, 0, len) };
                return Ok(Region {
                    ptr: sp.ptr,
                    len,
                    cap: sp.cap,
                });
            }
            Some(sp) => sp.free(),
            None => {}
        }
        let layout = Self::layout(cap)?;
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(Self::no_memory());
        }
        Ok(Region { ptr, len, cap })
    }

    /// The allocator's layout for `cap` bytes: cache-line aligned, as a
    /// mapping is page-aligned.
    fn layout(cap: usize) -> Result<std::alloc::Layout> {
        std::alloc::Layout::from_size_align(cap, 64).map_err(|_| Self::no_memory())
    }

    /// The allocator could not give a file under [`MAP_FROM`] its memory.
    fn no_memory() -> Error {
        Error::new(ErrorKind::Io {
            op: "allocating memory for the received file",
            code: None,
        })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        if self.cap > 0 {
            // No one uses the memory any more (the region is dropped when
            // its last owner lets go): it becomes the spare, unless the
            // spare is larger.
            let mine = Spare {
                ptr: self.ptr,
                cap: self.cap,
            };
            let mut s = SPARE
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let keep = match s.take() {
                Some(old) if old.cap > mine.cap => {
                    mine.free();
                    old
                }
                Some(old) => {
                    old.free();
                    mine
                }
                None => mine,
            };
            *s = Some(keep);
        } else {
            // SAFETY: the mapping made in `new`, which nothing uses any more.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }
}

/// What the owner and the worker share.
struct Shared {
    region: Region,
    /// Bytes announced: written, never to be written again.
    ready: AtomicU64,
    /// No more bytes will be announced.
    closed: AtomicBool,
    /// The owner has given up on the file: stop without finishing.
    abandoned: AtomicBool,
}

impl Shared {
    /// The first `len` bytes.
    ///
    /// # Safety
    /// `len` must not exceed what `ready` says (acquired), so no one writes
    /// these bytes while the slice lives.
    unsafe fn prefix(&self, from: usize, to: usize) -> &[u8] {
        debug_assert!(from <= to && to <= self.region.len);
        // SAFETY: inside the region (the caller's bound); see above.
        unsafe { core::slice::from_raw_parts(self.region.ptr.add(from), to - from) }
    }
}

/// How a [`HashingSink`] hashes.
enum Hashing {
    /// On a worker thread, which returns the digest when the file is closed.
    Thread(JoinHandle<Option<[u8; 32]>>),
    /// On the owner's thread, as bytes are announced (the worker thread
    /// could not start, or the sink was asked for no thread).
    Inline(Sha256, u64),
    /// Finished: the digest was handed out.
    Done,
}

/// A memory sink that hashes the file on its own thread (module docs).
pub struct HashingSink {
    max_len: usize,
    thread: bool,
    shared: Option<Arc<Shared>>,
    hashing: Hashing,
    /// What the owner has announced (its own copy of `shared.ready`).
    announced: u64,
    /// `announced` at the last wake-up of the worker.
    woken_at: u64,
    /// This file is hashed on a thread of its own.
    threaded: bool,
    /// Nanoseconds [`Sink::digest`] waited for the worker's last pass.
    tail_ns: u64,
}

impl core::fmt::Debug for HashingSink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HashingSink")
            .field("max_len", &self.max_len)
            .field("thread", &self.thread)
            .field("len", &self.data().len())
            .field("announced", &self.announced)
            .finish()
    }
}

impl HashingSink {
    /// A sink accepting files up to `max_len` bytes, hashing on a thread
    /// of its own when `thread` is true and the file has at least
    /// [`THREAD_MIN`] bytes, and on the caller's otherwise.
    pub fn new(max_len: usize, thread: bool) -> Self {
        HashingSink {
            max_len,
            thread,
            shared: None,
            hashing: Hashing::Done,
            announced: 0,
            woken_at: 0,
            threaded: false,
            tail_ns: 0,
        }
    }

    /// Whether the file is hashed on a thread of its own (false before
    /// META, for a file under [`THREAD_MIN`], or when the thread could not
    /// start).
    pub fn on_thread(&self) -> bool {
        self.threaded
    }

    /// How long, in wall-clock nanoseconds, the owner waited in
    /// [`Sink::digest`] for the worker to hash the file's last bytes (0
    /// when hashed inline). A receiver's own window ends at the last
    /// message it handled, before this wait; with hashing inline the same
    /// work falls inside that window, so a real-time figure adds it to
    /// count from the first message to the file verified either way.
    pub fn tail_wait_ns(&self) -> u64 {
        self.tail_ns
    }

    /// The file as received so far (the size META announced).
    pub fn data(&self) -> &[u8] {
        match &self.shared {
            // SAFETY: `&self` excludes the owner's writes while the slice
            // lives; the worker only reads.
            Some(s) => unsafe { s.prefix(0, s.region.len) },
            None => &[],
        }
    }

    fn len(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.region.len)
    }

    /// Stop a running worker without waiting for its digest.
    fn abandon(&mut self) {
        if let Some(s) = &self.shared {
            s.abandoned.store(true, Release);
            s.closed.store(true, Release);
        }
        if let Hashing::Thread(h) = core::mem::replace(&mut self.hashing, Hashing::Done) {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Drop for HashingSink {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// The worker: hash what is announced, sleep when caught up, finish when
/// the file is closed.
fn work(shared: Arc<Shared>) -> Option<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut done = 0usize;
    loop {
        if shared.abandoned.load(Acquire) {
            return None;
        }
        // Read `closed` before `ready`: a close after this read announced
        // all its bytes before it, so they are seen on the next turn.
        let closed = shared.closed.load(Acquire);
        let ready = shared.ready.load(Acquire) as usize;
        if ready > done {
            let to = ready.min(done + WORKER_PASS);
            // SAFETY: `to <= ready`, acquired above.
            let bytes = unsafe { shared.prefix(done, to) };
            stage!(
                "hash_thread::sha256",
                bytes = bytes.len(),
                hasher.update(bytes)
            );
            done = to;
        } else if closed {
            return Some(hasher.finalize().into());
        } else {
            thread::park();
        }
    }
}

impl Sink for HashingSink {
    fn set_len(&mut self, len: u64) -> Result<()> {
        self.abandon();
        // Let go of the last file first: its memory may be the spare this
        // one reuses, and a failed allocation leaves no stale file behind.
        self.shared = None;
        let len =
            crate::io::range(0, usize::try_from(len).unwrap_or(usize::MAX), self.max_len)?.end;
        let shared = Arc::new(Shared {
            region: Region::new(len)?,
            ready: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
        });
        self.announced = 0;
        self.woken_at = 0;
        self.tail_ns = 0;
        let worker = Arc::clone(&shared);
        let thread = self.thread && len as u64 >= THREAD_MIN;
        self.hashing = match thread.then(|| {
            thread::Builder::new()
                .name("perfkit-hash".into())
                .spawn(move || work(worker))
        }) {
            Some(Ok(h)) => Hashing::Thread(h),
            _ => Hashing::Inline(Sha256::new(), 0),
        };
        self.threaded = matches!(self.hashing, Hashing::Thread(_));
        self.shared = Some(shared);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        let r = crate::io::range(offset, data.len(), self.len())?;
        if offset < self.announced {
            return Err(Error::new(ErrorKind::Sealed {
                offset,
                sealed: self.announced,
            }));
        }
        if let Some(s) = &self.shared {
            // SAFETY: `r` lies inside the region and at or above every byte
            // announced, which the worker alone reads; `data` is the
            // caller's and cannot overlap a mapping only this sink hands
            // out as shared slices (none live: `&mut self`).
            unsafe {
                core::ptr::copy_nonoverlapping(data.as_ptr(), s.region.ptr.add(r.start), r.len())
            };
        }
        Ok(())
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let r = crate::io::range(offset, buf.len(), self.len())?;
        buf.copy_from_slice(&self.data()[r]);
        Ok(())
    }

    fn stored(&self, offset: u64, len: usize) -> Option<&[u8]> {
        self.data()
            .get(crate::io::range(offset, len, self.len()).ok()?)
    }

    fn hashes(&self) -> bool {
        true
    }

    fn hash_upto(&mut self, len: u64) {
        let Some(s) = &self.shared else { return };
        let len = len.min(s.region.len as u64);
        if len <= self.announced {
            return;
        }
        match &mut self.hashing {
            Hashing::Thread(h) => {
                s.ready.store(len, Release);
                if len - self.woken_at >= WAKE_EVERY || len == s.region.len as u64 {
                    self.woken_at = len;
                    h.thread().unpark();
                }
            }
            Hashing::Inline(hasher, done) => {
                // SAFETY: `&mut self`: no write runs while the slice lives.
                let bytes = unsafe { s.prefix(*done as usize, len as usize) };
                stage!(
                    "receiver::sha256",
                    bytes = bytes.len(),
                    hasher.update(bytes)
                );
                *done = len;
            }
            Hashing::Done => return,
        }
        self.announced = len;
    }

    fn digest(&mut self) -> Option<[u8; 32]> {
        let s = self.shared.as_ref()?;
        s.closed.store(true, Release);
        match core::mem::replace(&mut self.hashing, Hashing::Done) {
            Hashing::Thread(h) => {
                let start = std::time::Instant::now();
                h.thread().unpark();
                let digest = stage!("receiver::hash_wait", h.join().ok().flatten());
                self.tail_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                digest
            }
            Hashing::Inline(hasher, _) => Some(hasher.finalize().into()),
            Hashing::Done => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn file(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn hashes_what_was_announced_on_either_thread() {
        for thread in [true, false] {
            let data = file(3 << 20);
            let mut k = HashingSink::new(4 << 20, thread);
            assert!(data.len() as u64 >= THREAD_MIN);
            k.set_len(data.len() as u64).unwrap();
            assert_eq!(k.on_thread(), thread);
            for (i, chunk) in data.chunks(4093).enumerate() {
                k.write_at((i * 4093) as u64, chunk).unwrap();
                k.hash_upto(((i + 1) * 4093) as u64);
            }
            assert_eq!(k.data(), &data[..]);
            let want: [u8; 32] = Sha256::digest(&data).into();
            assert_eq!(k.tail_wait_ns(), 0);
            assert_eq!(k.digest(), Some(want), "thread: {thread}");
            // Only the thread leaves a tail to wait for; a new file starts afresh.
            assert_eq!(k.tail_wait_ns() > 0, thread);
            // Handed out once.
            assert_eq!(k.digest(), None);
            k.set_len(8).unwrap();
            assert_eq!(k.tail_wait_ns(), 0);
        }
    }

    #[test]
    fn refuses_to_write_what_it_announced_and_what_lies_outside() {
        let mut k = HashingSink::new(100, true);
        assert!(k.set_len(101).is_err());
        k.set_len(100).unwrap();
        k.write_at(0, &[1; 50]).unwrap();
        k.hash_upto(50);
        let e = k.write_at(49, &[2]).unwrap_err();
        assert_eq!(
            *e.kind(),
            ErrorKind::Sealed {
                offset: 49,
                sealed: 50
            }
        );
        assert!(k.write_at(99, &[2, 2]).is_err());
        k.write_at(50, &[3; 50]).unwrap();
        k.hash_upto(100);
        let mut want = vec![1u8; 50];
        want.extend([3u8; 50]);
        assert_eq!(k.digest(), Some(Sha256::digest(&want).into()));
    }

    #[test]
    fn a_sink_dropped_mid_file_stops_its_worker() {
        let mut k = HashingSink::new(1 << 20, true);
        k.set_len(1 << 20).unwrap();
        k.write_at(0, &[9; 4096]).unwrap();
        k.hash_upto(4096);
        drop(k);
        // A second file after an abandoned first.
        let mut k = HashingSink::new(1 << 20, true);
        k.set_len(10).unwrap();
        k.set_len(3).unwrap();
        k.write_at(0, b"abc").unwrap();
        k.hash_upto(3);
        assert_eq!(k.digest(), Some(Sha256::digest(b"abc").into()));
    }

    #[test]
    fn both_kinds_of_memory_start_zeroed_and_keep_what_was_written() {
        // Under MAP_FROM from the allocator (reused: a second file in the
        // same place must not see the first one's bytes), from it a mapping.
        for len in [1, 4095, MAP_FROM - 1, MAP_FROM, MAP_FROM + 4097] {
            for _ in 0..2 {
                let mut k = HashingSink::new(MAP_FROM * 2, false);
                k.set_len(len as u64).unwrap();
                assert!(k.data().iter().all(|&b| b == 0), "len {len}");
                k.write_at(0, &[0x5A]).unwrap();
                k.write_at(len as u64 - 1, &[0xA5]).unwrap();
                assert_eq!(k.data()[len - 1], 0xA5);
                assert_eq!(k.data()[0], if len > 1 { 0x5A } else { 0xA5 });
            }
        }
    }

    #[test]
    fn an_empty_file() {
        let mut k = HashingSink::new(0, true);
        k.set_len(0).unwrap();
        assert_eq!(k.data(), b"");
        k.hash_upto(0);
        assert_eq!(k.digest(), Some(Sha256::digest(b"").into()));
    }
}
