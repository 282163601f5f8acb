//! The control protocol between `perfkit run` and `perfkit agent`: one TCP
//! connection per run, each message a 4-byte big-endian length and a JSON
//! object (docs/specs/agent.md). Every read has a deadline.
//!
//! Authentication is an HMAC-SHA-256 challenge-response over a shared
//! token, both ways: the client proves the token on the agent's nonce and
//! the agent proves it back on the client's, so neither sends the token and
//! neither trusts a peer that does not hold it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hmac::{Hmac, Mac};
use perfkit_link::registry::Settings;
use perfkit_report::files::{self, Accept};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::kinds::endpoint::EndReport;
use crate::spec::TransferSpec;

/// The protocol's version: an agent refuses a client that speaks another.
pub const PROTOCOL: u32 = 1;

/// Largest JSON message, bytes.
pub const MAX_MESSAGE: usize = 1 << 20;

/// Largest input file sent to an agent that sends (the profile's limit).
pub const MAX_BLOB: usize = crate::kinds::endpoint::MAX_FILE;

/// How long a peer may take to answer during set-up.
pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// Which end of the transfer the agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The agent sends; the client receives.
    Sender,
    /// The agent receives; the client sends.
    Receiver,
}

/// The input an agent that sends receives first, as a blob after `setup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputInfo {
    /// Bytes.
    pub len: u64,
    /// The name META carries.
    pub name: String,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// What one run asks of the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// The agent's end.
    pub role: Role,
    /// SHA-256 of the flat configuration the client resolved (recorded by
    /// both sides, so a record can be matched to what each ran).
    pub config_hash: String,
    /// The run.
    pub work: Work,
}

/// The two kinds of run an agent takes an end of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// A dttk file transfer over a link kind.
    Transfer {
        /// The transfer's settings.
        transfer: TransferSpec,
        /// The link kind (`tcp`, `udp`).
        link: String,
        /// Its settings.
        settings: Settings,
        /// The input, when the agent sends.
        input: Option<InputInfo>,
        /// Seeded faults to inject in front of the sending end, when it is the agent's.
        #[serde(default)]
        faults: Option<perfkit_link::faults::FaultConfig>,
    },
    /// SPEAD heaps over UDP.
    Heaps {
        /// The heaps' settings.
        heaps: crate::spec::HeapsSpec,
    },
}

/// The agent's end of a heaps run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeapsReport {
    /// Its figures when it sent.
    pub tx: Option<perfkit_spead::run::TxOutcome>,
    /// Its figures when it received.
    pub rx: Option<perfkit_spead::run::RxStats>,
    /// Its perfkit snapshot.
    pub stages: perfkit_report::model::Stages,
}

/// What a host is, for the record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name.
    pub name: String,
    /// CPU model and logical CPUs.
    pub fingerprint: String,
    /// Kernel release.
    pub kernel: String,
}

impl HostInfo {
    /// One line for a record: `name; CPU model; N cpus; kernel`.
    pub fn describe(&self) -> String {
        format!("{}; {}; {}", self.name, self.fingerprint, self.kernel)
    }

    /// This machine.
    pub fn here() -> HostInfo {
        HostInfo {
            name: crate::host::name(),
            fingerprint: crate::host::fingerprint(),
            kernel: crate::host::kernel(),
        }
    }
}

/// A control message that arrived whole but could not be read.
#[derive(Debug)]
pub struct Unreadable {
    /// Its `type`, when it has one.
    pub kind: Option<String>,
    /// It reads as a set-up for a sending agent's transfer with an input,
    /// which the input blob follows.
    pub input_follows: bool,
    /// Why it could not be read.
    pub error: anyhow::Error,
}

/// One control message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// Client, first: its protocol version and nonce.
    Hello {
        /// Protocol version.
        protocol: u32,
        /// perfkit's version.
        perfkit: String,
        /// 32 random bytes, hex.
        nonce: String,
    },
    /// Agent: its nonce, for the client to prove the token on.
    Challenge {
        /// Protocol version.
        protocol: u32,
        /// perfkit's version.
        perfkit: String,
        /// 32 random bytes, hex.
        nonce: String,
    },
    /// Client: HMAC of the token over both nonces.
    Auth {
        /// Hex.
        mac: String,
    },
    /// Agent: accepted, with its own proof and what it runs on.
    Welcome {
        /// Hex.
        mac: String,
        /// The agent's host.
        host: HostInfo,
    },
    /// Agent: refused (version, token), then it closes.
    Refused {
        /// Why.
        reason: String,
    },
    /// Agent: serving another run.
    Busy,
    /// Client: a clock exchange; `t1` is the client's clock when sent.
    TimeRequest {
        /// Client clock, ns since the Unix epoch.
        t1: u64,
    },
    /// Agent: when the request arrived (`t2`) and the reply left (`t3`).
    TimeReply {
        /// Echoed.
        t1: u64,
        /// Agent clock at receipt.
        t2: u64,
        /// Agent clock at reply.
        t3: u64,
    },
    /// Client: the run to prepare.
    Setup(Box<Setup>),
    /// Agent: prepared; the address its receiving end listens on.
    Ready {
        /// Where the client's sender connects (agent receives).
        address: Option<String>,
    },
    /// Client: go; the address the client's receiver listens on (agent sends).
    Start {
        /// Where the agent's sender connects.
        address: Option<String>,
    },
    /// Client: stop the run now.
    Stop,
    /// Agent: its end's figures, stages and verdict.
    Result(Box<EndReport>),
    /// Agent: its end of a heaps run.
    HeapsResult(Box<HeapsReport>),
    /// Agent: its end failed.
    Failed {
        /// Why.
        error: String,
    },
    /// Client: done with this connection.
    Bye,
}

impl Msg {
    fn name(&self) -> &'static str {
        match self {
            Msg::Hello { .. } => "hello",
            Msg::Challenge { .. } => "challenge",
            Msg::Auth { .. } => "auth",
            Msg::Welcome { .. } => "welcome",
            Msg::Refused { .. } => "refused",
            Msg::Busy => "busy",
            Msg::TimeRequest { .. } => "time_request",
            Msg::TimeReply { .. } => "time_reply",
            Msg::Setup(_) => "setup",
            Msg::Ready { .. } => "ready",
            Msg::Start { .. } => "start",
            Msg::Stop => "stop",
            Msg::Result(_) => "result",
            Msg::HeapsResult(_) => "heaps_result",
            Msg::Failed { .. } => "failed",
            Msg::Bye => "bye",
        }
    }
}

/// A control connection: framed messages with deadlines.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    peer: String,
}

impl Conn {
    /// Wraps a connected stream.
    pub fn new(stream: TcpStream) -> Conn {
        let _ = stream.set_nodelay(true);
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "the peer".to_owned(), |a| a.to_string());
        Conn { stream, peer }
    }

    /// The peer's address.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The underlying stream (for its addresses).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// A second handle on the same connection (for a watcher thread).
    pub fn try_clone(&self) -> anyhow::Result<Conn> {
        Ok(Conn {
            stream: self.stream.try_clone()?,
            peer: self.peer.clone(),
        })
    }

    /// Sends a message.
    pub fn send(&mut self, msg: &Msg) -> anyhow::Result<()> {
        let json = serde_json::to_vec(msg)?;
        self.send_frame(&json)
            .with_context(|| format!("sending `{}` to {}", msg.name(), self.peer))
    }

    /// Sends raw bytes as one frame (the input blob).
    pub fn send_blob(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.send_frame(bytes)
            .with_context(|| format!("sending {} bytes of input to {}", bytes.len(), self.peer))
    }

    fn send_frame(&mut self, body: &[u8]) -> io::Result<()> {
        let len = u32::try_from(body.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        self.stream.set_write_timeout(Some(HANDSHAKE))?;
        // One write per frame: a peer that closed turns the first write
        // into a reset, so a second would fail before the reply is read.
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(body);
        self.stream.write_all(&frame)?;
        self.stream.flush()
    }

    /// Receives one message, all of it within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> anyhow::Result<Msg> {
        match self.recv_checked(timeout)? {
            Ok(msg) => Ok(msg),
            Err(unreadable) => Err(unreadable.error),
        }
    }

    /// As [`Conn::recv`], with a message that arrived whole but could not
    /// be read kept apart from a failed connection, with its `type`, so
    /// that an agent can answer a set-up it does not understand.
    pub fn recv_checked(&mut self, timeout: Duration) -> anyhow::Result<Result<Msg, Unreadable>> {
        let body = self.recv_frame(timeout, MAX_MESSAGE, false)?;
        Ok(serde_json::from_slice(&body).map_err(|e| {
            let v = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
            Unreadable {
                kind: v.get("type").and_then(|t| t.as_str()).map(str::to_owned),
                input_follows: v.get("type") == Some(&"setup".into())
                    && v.get("role") == Some(&"sender".into())
                    && v.pointer("/work/kind") == Some(&"transfer".into())
                    && v.pointer("/work/input").is_some_and(|i| i.is_object()),
                error: anyhow!(
                    "{} sent a malformed control message ({} bytes): {e}",
                    self.peer,
                    body.len()
                ),
            }
        }))
    }

    /// Receives one message if one arrives within `timeout`; `Ok(None)` when
    /// none began in that time.
    pub fn poll(&mut self, timeout: Duration) -> anyhow::Result<Option<Msg>> {
        let mut first = [0u8; 1];
        self.stream.set_read_timeout(Some(timeout.max(MIN_WAIT)))?;
        match self.stream.peek(&mut first) {
            Ok(0) => bail!("{} closed the connection", self.peer),
            Ok(_) => self.recv(HANDSHAKE).map(Some),
            Err(e) if is_timeout(&e) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading from {}", self.peer)),
        }
    }

    /// Receives a raw frame of at most `max` bytes (the input blob, the
    /// stamps). The length must arrive within `timeout`; the body may take
    /// longer by a second per [`BLOB_RATE`] bytes it announced, so a large
    /// input crosses a slow link, yet the whole frame still has a deadline.
    pub fn recv_blob(&mut self, timeout: Duration, max: usize) -> anyhow::Result<Vec<u8>> {
        self.recv_frame(timeout, max, true)
    }

    /// Reads one frame. The deadline is for the whole frame, not for each
    /// read: a per-read time-out restarts with every byte, so a peer that
    /// trickles a byte every few seconds would hold the connection (and an
    /// agent's only session) for ever.
    fn recv_frame(&mut self, timeout: Duration, max: usize, blob: bool) -> anyhow::Result<Vec<u8>> {
        let started = Instant::now();
        let mut deadline = started + timeout;
        let mut len = [0u8; 4];
        self.read_by(&mut len, deadline, started)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > max {
            bail!(
                "{} announced a {len}-byte message; at most {max} are accepted",
                self.peer
            );
        }
        if blob {
            deadline += Duration::from_secs((len / BLOB_RATE) as u64);
        }
        let mut body = vec![0u8; len];
        self.read_by(&mut body, deadline, started)?;
        Ok(body)
    }

    /// Fills `buf` by `deadline`, the time left recomputed before each read.
    fn read_by(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        started: Instant,
    ) -> anyhow::Result<()> {
        let mut got = 0;
        while got < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let timed_out = || {
                anyhow!(
                    "{} sent no whole message in {:.0} s (every message has a deadline)",
                    self.peer,
                    deadline.duration_since(started).as_secs_f64()
                )
            };
            if left.is_zero() {
                return Err(timed_out());
            }
            self.stream
                .set_read_timeout(Some(left.max(MIN_WAIT)))
                .with_context(|| format!("reading from {}", self.peer))?;
            match self.stream.read(&mut buf[got..]) {
                Ok(0) => bail!("{} closed the connection", self.peer),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Err(timed_out()),
                Err(e) => return Err(anyhow!("reading from {}: {e}", self.peer)),
            }
        }
        Ok(())
    }
}

/// The slowest a blob may arrive, bytes per second (64 kbit/s): its
/// deadline grows by a second per this many bytes. A blob comes only after
/// the handshake, from a peer that knows the token, so the floor is set by
/// the slowest link a run may shape (`netns_rate_mbit`, a real WAN), not by
/// what a stranger could hold: at 1 Mbit/s a 16 MB input over a 0.5 Mbit/s
/// link missed its deadline.
pub const BLOB_RATE: usize = 8 << 10;

/// set_read_timeout refuses zero.
const MIN_WAIT: Duration = Duration::from_millis(1);

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// 32 random bytes, hex.
pub fn nonce() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    crate::integrity::hex(&b)
}

/// The proof of the token by `who` (`client` or `agent`) over the two nonces,
/// the prover's own first.
pub fn prove(token: &[u8], who: &str, own: &str, other: &str) -> String {
    crate::integrity::hex(&mac(token, who, own, other).finalize().into_bytes())
}

/// Checks a proof in constant time.
pub fn verify(token: &[u8], who: &str, own: &str, other: &str, proof: &str) -> bool {
    match crate::integrity::unhex(proof) {
        Some(bytes) => mac(token, who, own, other).verify_slice(&bytes).is_ok(),
        None => false,
    }
}

fn mac(token: &[u8], who: &str, own: &str, other: &str) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(token).expect("HMAC takes any key length");
    for part in ["perfkit-agent", who, own, other] {
        m.update(&(part.len() as u32).to_be_bytes());
        m.update(part.as_bytes());
    }
    m
}

/// The most a token file may hold: a token is tens of bytes.
const TOKEN_FILE_LIMIT: u64 = 64 << 10;

/// Reads the shared token: from `file` when given, else the environment's
/// `PERFKIT_AGENT_TOKEN`. Surrounding whitespace is not part of it.
pub fn load_token(file: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    let raw = match file {
        Some(f) => files::read_limited(f, TOKEN_FILE_LIMIT, Accept::Regular)
            .with_context(|| format!("cannot read the agent token from {}", f.display()))?,
        None => std::env::var("PERFKIT_AGENT_TOKEN")
            .map(String::into_bytes)
            .map_err(|_| anyhow!("no agent token: give a token file or set PERFKIT_AGENT_TOKEN"))?,
    };
    let token = raw.trim_ascii().to_vec();
    if token.len() < 16 {
        bail!(
            "the agent token is {} bytes; use at least 16 random bytes",
            token.len()
        );
    }
    Ok(token)
}

/// This machine's clock for the time exchange: ns since the Unix epoch.
pub fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_only_with_the_token_and_the_right_roles() {
        let (a, c) = (nonce(), nonce());
        let p = prove(b"0123456789abcdef", "client", &c, &a);
        assert!(verify(b"0123456789abcdef", "client", &c, &a, &p));
        assert!(!verify(b"0123456789abcdeX", "client", &c, &a, &p));
        assert!(!verify(b"0123456789abcdef", "agent", &c, &a, &p));
        assert!(!verify(b"0123456789abcdef", "client", &a, &c, &p));
        assert!(!verify(b"0123456789abcdef", "client", &c, &a, "zz"));
    }

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = Conn::new(TcpStream::connect(l.local_addr().unwrap()).unwrap());
        let mut b = Conn::new(l.accept().unwrap().0);
        let m = Msg::TimeReply {
            t1: 1,
            t2: 2,
            t3: 3,
        };
        a.send(&m).unwrap();
        assert_eq!(b.recv(HANDSHAKE).unwrap(), m);
        a.send_frame(b"{\"type\":\"nonsense\"}").unwrap();
        assert!(b.recv(HANDSHAKE).is_err());
        a.send_frame(&[0xff; 3]).unwrap();
        assert!(b
            .recv(HANDSHAKE)
            .unwrap_err()
            .to_string()
            .contains("malformed"));
        a.stream.write_all(&u32::MAX.to_be_bytes()).unwrap();
        assert!(b
            .recv(HANDSHAKE)
            .unwrap_err()
            .to_string()
            .contains("at most"));
        assert!(b.poll(Duration::from_millis(10)).unwrap().is_none());
    }

    #[test]
    fn a_message_trickled_a_byte_at_a_time_misses_its_deadline() {
        // Each byte well within the time-out, the whole message far beyond
        // it: a per-read time-out never fired, and the reader waited for ever.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let mut b = Conn::new(l.accept().unwrap().0);
        let trickle = std::thread::spawn(move || {
            let body = serde_json::to_vec(&Msg::Bye).unwrap();
            let _ = a.write_all(&(body.len() as u32).to_be_bytes());
            for byte in body {
                std::thread::sleep(Duration::from_millis(200));
                if a.write_all(&[byte]).is_err() {
                    break;
                }
            }
        });
        let t = Instant::now();
        let err = b.recv(Duration::from_millis(700)).unwrap_err().to_string();
        assert!(err.contains("no whole message in"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        drop(b);
        trickle.join().unwrap();
    }
}
