//! UDP receiver: `recvmmsg` into a ring of buffers, UDP GRO when the kernel
//! offers it (one buffer then holds several datagrams of `gso_size` bytes,
//! which are split again here), packets handed to a [`Stream`].

use crate::descriptor::ItemDescriptor;
use crate::reasm::{Heap, Stream};
use crate::sockopt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;
use std::vec::Vec;
use std::{fmt, mem};

/// Receiver settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Requested SO_RCVBUF in bytes (forced past `rmem_max` when privileged).
    pub rcvbuf: usize,
    /// Datagrams (or GRO buffers) per `recvmmsg` call.
    pub batch: usize,
    /// Ask for UDP GRO.
    pub gro: bool,
    /// How long one call blocks before returning nothing.
    pub poll: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rcvbuf: 64 << 20,
            // 16 GRO buffers of 64 KiB: one call's datagrams (1 MiB) still
            // sit in the L2 cache when reassembly copies them out; 64 per
            // call cost 5-20 % more receiver CPU per byte on loopback.
            batch: 16,
            gro: true,
            poll: Duration::from_millis(50),
        }
    }
}

const CMSG_SPACE: usize = 64;

/// A bound UDP socket read with `recvmmsg`.
pub struct UdpReceiver {
    socket: UdpSocket,
    gro: bool,
    buf_size: usize,
    bufs: Vec<u8>,
    msgs: Vec<libc::mmsghdr>,
    // Never read here: kept alive because `msgs` point into them.
    _iov: Vec<libc::iovec>,
    _cmsgs: Vec<[u64; CMSG_SPACE / 8]>,
    calls: u64,
    datagrams: u64,
}

impl fmt::Debug for UdpReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpReceiver")
            .field("socket", &self.socket)
            .field("gro", &self.gro)
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

// SAFETY: the raw pointers in `msgs`/`_iov` point into `bufs`/`_cmsgs`/`_iov`, heap
// storage owned by the receiver that moves with it and is never resized.
unsafe impl Send for UdpReceiver {}

impl UdpReceiver {
    /// Binds to `addr` (port 0 picks one).
    pub fn bind(addr: SocketAddr, config: Config) -> io::Result<Self> {
        let domain = if addr.is_ipv4() {
            socket2::Domain::IPV4
        } else {
            socket2::Domain::IPV6
        };
        let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        // Root may exceed net.core.rmem_max; others get what the limit allows.
        if s.set_recv_buffer_size(config.rcvbuf).is_ok() {
            let v = libc::c_int::try_from(config.rcvbuf).unwrap_or(libc::c_int::MAX);
            let _ = sockopt::set_int(&s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v);
        }
        s.bind(&addr.into())?;
        s.set_read_timeout(Some(config.poll))?;
        let socket: UdpSocket = s.into();
        let gro = config.gro && sockopt::set_int(&socket, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok();
        let buf_size = if gro { 65536 } else { 9216 };
        let n = config.batch.clamp(1, 1024);
        let mut bufs = std::vec![0u8; n * buf_size];
        let mut cmsgs = std::vec![[0u64; CMSG_SPACE / 8]; n];
        // The message headers point into `bufs`, `cmsgs` and `iov`, whose heap
        // storage never moves or resizes: built once, only lengths are reset
        // before each call.
        let mut iov: Vec<libc::iovec> = bufs
            .chunks_exact_mut(buf_size)
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr() as *mut libc::c_void,
                iov_len: buf_size,
            })
            .collect();
        let msgs = iov
            .iter_mut()
            .zip(cmsgs.iter_mut())
            .map(|(v, c)| {
                // SAFETY: an all-zero mmsghdr is valid ("no name, no control").
                let mut m: libc::mmsghdr = unsafe { mem::zeroed() };
                m.msg_hdr.msg_iov = v;
                m.msg_hdr.msg_iovlen = 1;
                if gro {
                    m.msg_hdr.msg_control = c.as_mut_ptr() as *mut libc::c_void;
                }
                m
            })
            .collect();
        Ok(UdpReceiver {
            socket,
            gro,
            buf_size,
            bufs,
            msgs,
            _iov: iov,
            _cmsgs: cmsgs,
            calls: 0,
            datagrams: 0,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Whether UDP GRO is on.
    pub fn gro(&self) -> bool {
        self.gro
    }

    /// Actual SO_RCVBUF granted by the kernel.
    pub fn rcvbuf(&self) -> usize {
        socket2::SockRef::from(&self.socket)
            .recv_buffer_size()
            .unwrap_or(0)
    }

    /// `recvmmsg` calls made and datagrams received so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.calls, self.datagrams)
    }

    /// One `recvmmsg` call (blocking up to the poll interval for the first
    /// message); each datagram is passed to `each`. Returns how many
    /// datagrams arrived (0 on timeout).
    pub fn recv_batch(&mut self, mut each: impl FnMut(&[u8])) -> io::Result<usize> {
        let n = self.msgs.len();
        // The kernel writes back the control length; everything else stays.
        if self.gro {
            for m in &mut self.msgs {
                m.msg_hdr.msg_controllen = CMSG_SPACE as _;
            }
        }
        let fd = self.socket.as_raw_fd();
        // SAFETY: msgs/iov/cmsgs are valid for n entries during the call.
        let rc = stage!("spead.recv_call", unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.as_mut_ptr(),
                n as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        });
        self.calls += 1;
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(0),
                _ => Err(e),
            };
        }
        let got = rc as usize;
        let mut datagrams = 0;
        for i in 0..got {
            let len = self.msgs[i].msg_len as usize;
            let seg = if self.gro {
                gro_size(&self.msgs[i].msg_hdr)
            } else {
                None
            };
            let data = &self.bufs[i * self.buf_size..i * self.buf_size + len];
            match seg {
                Some(s) if s > 0 && s < len => {
                    for chunk in data.chunks(s) {
                        each(chunk);
                        datagrams += 1;
                    }
                }
                _ => {
                    each(data);
                    datagrams += 1;
                }
            }
        }
        self.datagrams += datagrams as u64;
        Ok(datagrams)
    }
}

fn gro_size(h: &libc::msghdr) -> Option<usize> {
    // SAFETY: walking the control buffer the kernel filled, with libc's macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_GRO {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                return usize::try_from(v).ok();
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// Receives into `stream` until it stops or `keep_going` says no (checked
/// after every call, including empty ones). `on_heap` sees every complete heap.
pub fn receive_until_stop(
    rx: &mut UdpReceiver,
    stream: &mut Stream,
    keep_going: impl FnMut(usize) -> bool,
    on_heap: &mut impl FnMut(&Heap, &[ItemDescriptor]),
) -> io::Result<()> {
    receive_inspecting(rx, stream, keep_going, |_| {}, on_heap)
}

/// As [`receive_until_stop`], with `on_datagram` seeing each datagram just
/// before reassembly, while its bytes are still in cache: a place for
/// per-packet checks that would otherwise read the whole heap again.
pub fn receive_inspecting(
    rx: &mut UdpReceiver,
    stream: &mut Stream,
    mut keep_going: impl FnMut(usize) -> bool,
    mut on_datagram: impl FnMut(&[u8]),
    on_heap: &mut impl FnMut(&Heap, &[ItemDescriptor]),
) -> io::Result<()> {
    while !stream.is_stopped() {
        let n = rx.recv_batch(|d| {
            on_datagram(d);
            stage!(
                "spead.reassemble",
                bytes = d.len() as u64,
                stream.add_packet(d, on_heap)
            )
        })?;
        if !keep_going(n) {
            break;
        }
    }
    if !stream.is_stopped() {
        stream.flush(on_heap);
    }
    Ok(())
}
