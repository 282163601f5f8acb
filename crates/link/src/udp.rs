//! A packet link over a real UDP socket, connected to one peer.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::sys::{poll_fd, Ready};
use crate::{Error, ErrorKind, LinkStats, PacketLink, Result};

/// Largest UDP payload over IPv4.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// A UDP socket bound locally and connected to its peer, so the kernel
/// drops datagrams from anyone else.
#[derive(Debug)]
pub struct UdpLink {
    sock: UdpSocket,
    mtu: usize,
    stats: LinkStats,
}

impl UdpLink {
    /// Binds `local` and connects to `peer`.
    pub fn bind(local: SocketAddr, peer: SocketAddr) -> Result<Self> {
        let sock =
            UdpSocket::bind(local).map_err(|e| Error::io(format!("binding UDP {local}"), e))?;
        sock.connect(peer)
            .map_err(|e| Error::io(format!("connecting UDP to {peer}"), e))?;
        Ok(Self::from_socket(sock))
    }

    /// Wraps an already bound and connected socket.
    pub fn from_socket(sock: UdpSocket) -> Self {
        Self {
            sock,
            mtu: MAX_UDP_PAYLOAD,
            stats: LinkStats::default(),
        }
    }

    /// Two links on 127.0.0.1, on ephemeral ports, connected to each other.
    pub fn pair_localhost() -> Result<(Self, Self)> {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
        let a = UdpSocket::bind(any).map_err(|e| Error::io("binding UDP 127.0.0.1:0", e))?;
        let b = UdpSocket::bind(any).map_err(|e| Error::io("binding UDP 127.0.0.1:0", e))?;
        let (aa, ba) = (
            a.local_addr()
                .map_err(|e| Error::io("UDP local address", e))?,
            b.local_addr()
                .map_err(|e| Error::io("UDP local address", e))?,
        );
        a.connect(ba)
            .map_err(|e| Error::io(format!("connecting UDP to {ba}"), e))?;
        b.connect(aa)
            .map_err(|e| Error::io(format!("connecting UDP to {aa}"), e))?;
        Ok((Self::from_socket(a), Self::from_socket(b)))
    }

    /// Sets the largest datagram this link sends (at most [`MAX_UDP_PAYLOAD`]).
    pub fn with_mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu.min(MAX_UDP_PAYLOAD);
        self
    }

    /// The local address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.sock
            .local_addr()
            .map_err(|e| Error::io("UDP local address", e))
    }
}

impl PacketLink for UdpLink {
    fn send(&mut self, packet: &[u8]) -> Result<()> {
        self.stats.check_mtu(packet.len(), self.mtu)?;
        loop {
            match perfkit::measure!(
                "link.udp.send",
                bytes = packet.len(),
                self.sock.send(packet)
            ) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Nobody listening yet (ICMP port unreachable from an earlier
                // datagram): UDP loses the packet, and so do we, counted.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    self.stats.dropped += 1;
                    break;
                }
                Err(e) => return Err(Error::io("sending UDP datagram", e)),
            }
        }
        self.stats.sent(packet.len());
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
        let fd = self.sock.as_raw_fd();
        loop {
            match poll_fd(fd, libc::POLLIN, timeout)
                .map_err(|e| Error::io("waiting for a UDP datagram", e))?
            {
                Ready::No => return Ok(None),
                Ready::Yes | Ready::HangUp => {}
            }
            // MSG_TRUNC makes recv return the datagram's real length, so a
            // datagram larger than `buf` is detected instead of silently cut.
            // SAFETY: buf is valid for buf.len() bytes.
            let rc = perfkit::measure!("link.udp.recv", unsafe {
                libc::recv(
                    fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_TRUNC | libc::MSG_DONTWAIT,
                )
            });
            if rc < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Ok(None),
                    // A pending ICMP error from an earlier send: not a datagram.
                    io::ErrorKind::ConnectionRefused => continue,
                    _ => return Err(Error::io("receiving UDP datagram", err)),
                }
            }
            let len = rc as usize;
            if len > buf.len() {
                self.stats.dropped += 1;
                return Err(Error::new(ErrorKind::BufferTooSmall {
                    len,
                    buf: buf.len(),
                }));
            }
            self.stats.received(len);
            return Ok(Some(len));
        }
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

/// The `udp` link kind: one message per datagram through the kernel's
/// network stack, so loss and reordering reach the receiver as they happen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpSettings {
    /// Where the receiving end binds.
    pub listen: String,
    /// SO_SNDBUF, bytes (0 = the system's default).
    pub sndbuf: usize,
    /// SO_RCVBUF, bytes (0 = the system's default).
    pub rcvbuf: usize,
    /// SO_BUSY_POLL, microseconds (0 = off).
    pub busy_poll_us: u32,
}

impl UdpSettings {
    fn options(&self) -> crate::tcp::SocketOptions {
        crate::tcp::SocketOptions {
            nodelay: false,
            send_buffer: self.sndbuf,
            recv_buffer: self.rcvbuf,
            busy_poll_us: self.busy_poll_us,
        }
    }

    fn socket(&self, local: SocketAddr) -> Result<UdpSocket> {
        let sock =
            UdpSocket::bind(local).map_err(|e| Error::io(format!("binding UDP {local}"), e))?;
        self.options()
            .apply(socket2::SockRef::from(&sock), false)
            .map_err(|e| Error::io(format!("setting socket options on UDP {local}"), e))?;
        Ok(sock)
    }
}

/// A bound UDP socket: it receives from whoever sends to its address.
#[derive(Debug)]
struct UdpListening {
    sock: UdpSocket,
    address: SocketAddr,
}

impl crate::registry::Listening for UdpListening {
    fn address(&self) -> String {
        self.address.to_string()
    }
    fn accept(self: Box<Self>, _timeout: Duration) -> Result<crate::registry::End<'static>> {
        // Nothing to wait for: datagrams arrive when the sender sends.
        Ok(crate::registry::End::Packets(Box::new(
            UdpLink::from_socket(self.sock),
        )))
    }
}

impl crate::registry::LinkKind for UdpSettings {
    const NAME: &'static str = "udp";
    const HELP: &'static str =
        "UDP datagrams, one message each: loss and reordering are the network's";
    const PARAMS: &'static [crate::registry::LinkParam] = {
        use crate::registry::{LinkParam as P, ParamDefault as D, ParamType as T};
        &[
            P { key: "listen", ty: T::Str, default: D::Str("127.0.0.1:0"), help: "address the receiving end listens on (port 0 = any free port)" },
            P { key: "sndbuf", ty: T::Int(0, 1 << 30), default: D::Int(0), help: "SO_SNDBUF, bytes (0 = the system's default)" },
            P { key: "rcvbuf", ty: T::Int(0, 1 << 30), default: D::Int(0), help: "SO_RCVBUF, bytes (0 = the system's default; above the system's cap it is forced where permitted)" },
            P { key: "busy_poll_us", ty: T::Int(0, 1_000_000), default: D::Int(0), help: "SO_BUSY_POLL, microseconds (0 = off; Linux)" },
        ]
    };

    fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        crate::tcp::resolve(&self.listen)
            .map(|_| ())
            .map_err(|e| ("listen", format!("`{}`: {e}", self.listen)))
    }

    fn listen(&self) -> Result<Box<dyn crate::registry::Listening>> {
        let sock = self.socket(crate::tcp::resolve(&self.listen)?)?;
        let address = sock
            .local_addr()
            .map_err(|e| Error::io("UDP local address", e))?;
        Ok(Box::new(UdpListening { sock, address }))
    }

    fn connect(&self, address: &str) -> Result<crate::registry::End<'static>> {
        let peer = crate::tcp::resolve(address)?;
        let any: SocketAddr = if peer.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .expect("valid address");
        let sock = self.socket(any)?;
        sock.connect(peer)
            .map_err(|e| Error::io(format!("connecting UDP to {peer}"), e))?;
        Ok(crate::registry::End::Packets(Box::new(
            UdpLink::from_socket(sock),
        )))
    }
}
