//! A byte link over a TCP connection: a byte stream, so the transfer frames
//! its messages as over a UART, with the socket options a network run
//! tunes (Nagle off, buffer sizes, busy polling).
//!
//! The socket is non-blocking; reads and writes wait in poll(2), so a read
//! honours its timeout and a write gives up after the write timeout instead
//! of hanging on a peer that stopped reading.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::pipe::DEFAULT_WRITE_TIMEOUT;
use crate::registry::{End, LinkKind, LinkParam, Listening, ParamDefault, ParamType};
use crate::sys::{poll_fd, read_outcome, Ready};
use crate::{ByteLink, Error, ErrorKind, LinkStats, ReadOutcome, Result};

/// Socket options a TCP link sets on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketOptions {
    /// TCP_NODELAY: send small writes at once instead of coalescing them.
    pub nodelay: bool,
    /// SO_SNDBUF, bytes (0 = the system's default).
    pub send_buffer: usize,
    /// SO_RCVBUF, bytes (0 = the system's default).
    pub recv_buffer: usize,
    /// SO_BUSY_POLL, microseconds (0 = off; Linux only, may need privileges).
    pub busy_poll_us: u32,
}

impl SocketOptions {
    /// Sets the options on a socket (TCP_NODELAY only on a TCP one). A
    /// buffer larger than the system's limit is forced where the process
    /// may (SO_SNDBUFFORCE / SO_RCVBUFFORCE need CAP_NET_ADMIN), else the
    /// kernel's cap stands.
    pub(crate) fn apply(&self, sock: socket2::SockRef<'_>, tcp: bool) -> io::Result<()> {
        if tcp {
            sock.set_tcp_nodelay(self.nodelay)?;
        }
        if self.send_buffer > 0 {
            sock.set_send_buffer_size(self.send_buffer)?;
            #[cfg(target_os = "linux")]
            if sock.send_buffer_size()? < self.send_buffer {
                let _ = force_buffer(&sock, libc::SO_SNDBUFFORCE, self.send_buffer);
            }
        }
        if self.recv_buffer > 0 {
            sock.set_recv_buffer_size(self.recv_buffer)?;
            #[cfg(target_os = "linux")]
            if sock.recv_buffer_size()? < self.recv_buffer {
                let _ = force_buffer(&sock, libc::SO_RCVBUFFORCE, self.recv_buffer);
            }
        }
        #[cfg(target_os = "linux")]
        if self.busy_poll_us > 0 {
            sock.set_busy_poll(self.busy_poll_us)?;
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn force_buffer(sock: &socket2::SockRef<'_>, name: libc::c_int, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads exactly size_of::<c_int>() bytes from a live int.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One end of a TCP connection as a byte link.
#[derive(Debug)]
pub struct TcpLink {
    stream: TcpStream,
    peer: String,
    write_timeout: Duration,
    eof: bool,
    stats: LinkStats,
}

impl TcpLink {
    /// Wraps a connected stream, setting `options`.
    pub fn from_stream(stream: TcpStream, options: &SocketOptions) -> Result<Self> {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "<tcp peer>".to_owned(), |a| a.to_string());
        let what = |doing: &str| format!("{doing} the connection to {peer}");
        options
            .apply(socket2::SockRef::from(&stream), true)
            .map_err(|e| Error::io(what("setting socket options on"), e))?;
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::io(what("configuring"), e))?;
        Ok(TcpLink {
            stream,
            peer,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            eof: false,
            stats: LinkStats::default(),
        })
    }

    /// Connects to `addr`, waiting at most `timeout`.
    pub fn connect(addr: &str, options: &SocketOptions, timeout: Duration) -> Result<Self> {
        let target = resolve(addr)?;
        let stream = TcpStream::connect_timeout(&target, timeout)
            .map_err(|e| Error::io(format!("connecting to {addr}"), e))?;
        Self::from_stream(stream, options)
    }

    /// A connected pair through a listener on `listen` (port 0 = any free
    /// port): the first end connected, the second accepted.
    pub fn pair(listen: &str, options: &SocketOptions) -> Result<(Self, Self)> {
        let listening = TcpListening::bind(listen, options)?;
        let a = Self::connect(
            &listening.address.to_string(),
            options,
            Duration::from_secs(5),
        )?;
        let b = listening.accept_link(Duration::from_secs(5))?;
        Ok((a, b))
    }

    /// Sets how long a write may wait for the peer to take the bytes.
    pub fn set_write_timeout(&mut self, timeout: Duration) {
        self.write_timeout = timeout;
    }

    /// Ends this side's stream: the peer reads end of stream once drained.
    pub fn close_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// A TCP listener waiting for the sending end.
#[derive(Debug)]
pub struct TcpListening {
    listener: TcpListener,
    address: SocketAddr,
    options: SocketOptions,
}

impl TcpListening {
    /// Listens on `listen` (port 0 = any free port).
    pub fn bind(listen: &str, options: &SocketOptions) -> Result<Self> {
        let listener = TcpListener::bind(resolve(listen)?)
            .map_err(|e| Error::io(format!("listening on {listen}"), e))?;
        let address = listener
            .local_addr()
            .map_err(|e| Error::io(format!("listening on {listen}"), e))?;
        Ok(TcpListening {
            listener,
            address,
            options: *options,
        })
    }

    /// Waits at most `timeout` for one connection.
    pub fn accept_link(self, timeout: Duration) -> Result<TcpLink> {
        let what = || format!("waiting for a connection on {}", self.address);
        match poll_fd(self.listener.as_raw_fd(), libc::POLLIN, timeout)
            .map_err(|e| Error::io(what(), e))?
        {
            Ready::Yes => {}
            _ => {
                return Err(Error::new(ErrorKind::TimedOut {
                    what: format!(
                        "{}: nobody connected in {:.1} s",
                        what(),
                        timeout.as_secs_f64()
                    ),
                }))
            }
        }
        let (stream, _) = self.listener.accept().map_err(|e| Error::io(what(), e))?;
        TcpLink::from_stream(stream, &self.options)
    }
}

impl Listening for TcpListening {
    fn address(&self) -> String {
        self.address.to_string()
    }
    fn accept(self: Box<Self>, timeout: Duration) -> Result<End<'static>> {
        Ok(End::Bytes(Box::new(self.accept_link(timeout)?)))
    }
}

pub(crate) fn resolve(addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .map_err(|e| Error::io(format!("resolving {addr}"), e))?
        .next()
        .ok_or_else(|| Error::config("address", format!("`{addr}` resolves to nothing")))
}

impl ByteLink for TcpLink {
    fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        let total = bytes.len();
        // Includes waiting for room in the socket buffer: a slow peer shows up here.
        let _measure = perfkit::span!("link.tcp.write", bytes = total);
        let deadline = Instant::now() + self.write_timeout;
        while !bytes.is_empty() {
            match self.stream.write(bytes) {
                Ok(0) => return Err(Error::new(ErrorKind::Closed)),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let ready = poll_fd(self.stream.as_raw_fd(), libc::POLLOUT, left)
                        .map_err(|e| Error::io(format!("waiting to write to {}", self.peer), e))?;
                    match ready {
                        Ready::Yes => {}
                        Ready::HangUp => return Err(Error::new(ErrorKind::Closed)),
                        Ready::No => {
                            return Err(Error::new(ErrorKind::TimedOut {
                                what: format!(
                                    "{} read nothing for {:.1} s while {} bytes waited",
                                    self.peer,
                                    self.write_timeout.as_secs_f64(),
                                    bytes.len()
                                ),
                            }))
                        }
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    return Err(Error::new(ErrorKind::Closed))
                }
                Err(e) => return Err(Error::io(format!("writing to {}", self.peer), e)),
            }
        }
        self.stats.sent(total);
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<ReadOutcome> {
        if self.eof {
            return Ok(ReadOutcome::Eof);
        }
        if buf.is_empty() {
            return Ok(ReadOutcome::Timeout);
        }
        let mut waited = false;
        loop {
            let r = perfkit::measure!("link.tcp.read", self.stream.read(buf));
            match read_outcome(r, &mut self.eof, &mut self.stats) {
                Ok(Some(outcome)) => return Ok(outcome),
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if waited {
                        return Ok(ReadOutcome::Timeout);
                    }
                    let ready = poll_fd(self.stream.as_raw_fd(), libc::POLLIN, timeout)
                        .map_err(|e| Error::io(format!("waiting to read from {}", self.peer), e))?;
                    if ready == Ready::No {
                        return Ok(ReadOutcome::Timeout);
                    }
                    waited = true;
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    self.eof = true;
                    return Ok(ReadOutcome::Eof);
                }
                Err(e) => return Err(Error::io(format!("reading from {}", self.peer), e)),
            }
        }
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

/// The `tcp` link kind: both ends in this process over a real TCP
/// connection through the kernel's network stack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSettings {
    /// Where the receiving end listens.
    pub listen: String,
    /// TCP_NODELAY.
    pub tcp_nodelay: bool,
    /// SO_SNDBUF, bytes (0 = the system's default).
    pub sndbuf: usize,
    /// SO_RCVBUF, bytes (0 = the system's default).
    pub rcvbuf: usize,
    /// SO_BUSY_POLL, microseconds (0 = off).
    pub busy_poll_us: u32,
    /// Largest read, bytes.
    pub chunk: usize,
}

impl TcpSettings {
    /// The socket options these settings ask for.
    pub fn options(&self) -> SocketOptions {
        SocketOptions {
            nodelay: self.tcp_nodelay,
            send_buffer: self.sndbuf,
            recv_buffer: self.rcvbuf,
            busy_poll_us: self.busy_poll_us,
        }
    }
}

impl LinkKind for TcpSettings {
    const NAME: &'static str = "tcp";
    const HELP: &'static str = "a TCP connection through the kernel's network stack";
    const PARAMS: &'static [LinkParam] = &[
        LinkParam {
            key: "listen",
            ty: ParamType::Str,
            default: ParamDefault::Str("127.0.0.1:0"),
            help: "address the receiving end listens on (port 0 = any free port)",
        },
        LinkParam {
            key: "tcp_nodelay",
            ty: ParamType::Bool,
            default: ParamDefault::Bool(true),
            help: "TCP_NODELAY, send each write at once (false = Nagle coalescing)",
        },
        LinkParam {
            key: "sndbuf",
            ty: ParamType::Int(0, 1 << 30),
            default: ParamDefault::Int(0),
            help: "SO_SNDBUF, bytes (0 = the system's default)",
        },
        LinkParam {
            key: "rcvbuf",
            ty: ParamType::Int(0, 1 << 30),
            default: ParamDefault::Int(0),
            help: "SO_RCVBUF, bytes (0 = the system's default)",
        },
        LinkParam {
            key: "busy_poll_us",
            ty: ParamType::Int(0, 1_000_000),
            default: ParamDefault::Int(0),
            help: "SO_BUSY_POLL, microseconds (0 = off; Linux)",
        },
        LinkParam {
            key: "chunk",
            ty: ParamType::Int(1, 1 << 24),
            default: ParamDefault::Int(65536),
            help: "largest read, bytes",
        },
    ];

    fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        self.listen
            .to_socket_addrs()
            .map(|_| ())
            .map_err(|e| ("listen", format!("`{}`: {e}", self.listen)))
    }

    fn chunk(&self) -> usize {
        self.chunk
    }

    fn listen(&self) -> Result<Box<dyn Listening>> {
        Ok(Box::new(TcpListening::bind(&self.listen, &self.options())?))
    }

    fn connect(&self, address: &str) -> Result<End<'static>> {
        let link = TcpLink::connect(address, &self.options(), Duration::from_secs(5))?;
        Ok(End::Bytes(Box::new(link)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_and_end_of_stream_is_seen() {
        let opts = SocketOptions {
            nodelay: true,
            send_buffer: 4096,
            recv_buffer: 4096,
            busy_poll_us: 0,
        };
        let (mut a, mut b) = TcpLink::pair("127.0.0.1:0", &opts).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        let sender = std::thread::spawn(move || {
            a.write(&data).unwrap();
            a.close_write();
            data
        });
        let (mut got, mut buf) = (Vec::new(), [0u8; 1000]);
        loop {
            match b.read(&mut buf, Duration::from_millis(100)).unwrap() {
                ReadOutcome::Data(n) => got.extend_from_slice(&buf[..n]),
                ReadOutcome::Timeout => {}
                ReadOutcome::Eof => break,
            }
        }
        let data = sender.join().unwrap();
        assert_eq!(got, data);
        assert_eq!(b.stats().bytes_in, 200_000);
    }

    #[test]
    fn a_read_with_nothing_to_read_times_out() {
        let (_a, mut b) = TcpLink::pair("127.0.0.1:0", &SocketOptions::default()).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            b.read(&mut buf, Duration::ZERO).unwrap(),
            ReadOutcome::Timeout
        );
    }

    #[test]
    fn a_write_to_a_peer_that_stopped_reading_gives_up() {
        let (mut a, _b) = TcpLink::pair("127.0.0.1:0", &SocketOptions::default()).unwrap();
        a.set_write_timeout(Duration::from_millis(50));
        let e = a.write(&vec![0u8; 64 << 20]).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::TimedOut { .. }), "{e}");
    }

    #[test]
    fn a_bad_listen_address_is_named() {
        let s = TcpSettings {
            listen: "not an address".into(),
            tcp_nodelay: true,
            sndbuf: 0,
            rcvbuf: 0,
            busy_poll_us: 0,
            chunk: 1024,
        };
        assert_eq!(s.check().unwrap_err().0, "listen");
    }
}
