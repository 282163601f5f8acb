//! The client side: a transfer whose other end runs on `perfkit agent`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use perfkit_engine::{Policy, WallClock};
use perfkit_report::model::{LinkStats, TimeBase};

use super::proto::{
    self, Conn, HeapsReport, HostInfo, InputInfo, Msg, Role, Setup, Work, HANDSHAKE, PROTOCOL,
};
use crate::kinds::endpoint::{self, EndReport};
use crate::kinds::input::Input;
use crate::kinds::latency::{self, Stamps};
use crate::kinds::transfer::packet_counters;
use crate::kinds::Outcome;
use crate::spec::{LinkSpec, RunSpec};

/// Rounds of the clock exchange before a run.
const TIME_ROUNDS: usize = 8;

/// An authenticated control connection to an agent.
#[derive(Debug)]
pub struct Session {
    conn: Conn,
    /// What the agent runs on.
    pub host: HostInfo,
    /// The agent's clock minus ours, ns, from the exchange with the
    /// shortest round trip.
    pub offset_ns: i64,
    /// That exchange's round trip, ns: the offset is known to within half of it.
    pub rtt_ns: u64,
}

/// How long a client keeps asking an agent that says it is busy. The agent
/// serves one run at a time and frees itself once the previous session's
/// end has stopped (within a poll, after a failed or stopped run), so the
/// next configuration of a sweep can find it busy for a moment; a run of
/// another client holds it far longer than this.
pub const BUSY_WAIT: Duration = Duration::from_secs(3);

impl Session {
    /// Connects, proves the token both ways, and measures the clocks. An
    /// agent busy with another session is asked again for [`BUSY_WAIT`].
    pub fn open(address: &str, token: &[u8]) -> anyhow::Result<Session> {
        let give_up = std::time::Instant::now() + BUSY_WAIT;
        loop {
            match Session::open_once(address, token)? {
                Some(s) => return Ok(s),
                None if std::time::Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                None => bail!(
                    "the agent at {address} is busy with another run (still after {} s)",
                    BUSY_WAIT.as_secs()
                ),
            }
        }
    }

    /// One attempt; `None` when the agent said it is busy.
    fn open_once(address: &str, token: &[u8]) -> anyhow::Result<Option<Session>> {
        let addr: SocketAddr = address
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve agent address {address}"))?
            .next()
            .ok_or_else(|| anyhow!("agent address {address} resolves to nothing"))?;
        let stream = TcpStream::connect_timeout(&addr, HANDSHAKE)
            .with_context(|| format!("cannot reach the agent at {address}"))?;
        let mut conn = Conn::new(stream);
        let own = proto::nonce();
        conn.send(&Msg::Hello {
            protocol: PROTOCOL,
            perfkit: env!("CARGO_PKG_VERSION").to_owned(),
            nonce: own.clone(),
        })?;
        let theirs = match conn.recv(HANDSHAKE)? {
            Msg::Challenge { nonce, .. } => nonce,
            Msg::Busy => return Ok(None),
            Msg::Refused { reason } => bail!("the agent at {address} refused: {reason}"),
            other => bail!("the agent at {address} answered {other:?} to hello"),
        };
        conn.send(&Msg::Auth {
            mac: proto::prove(token, "client", &own, &theirs),
        })?;
        let host = match conn.recv(HANDSHAKE)? {
            Msg::Welcome { mac, host } if proto::verify(token, "agent", &theirs, &own, &mac) => {
                host
            }
            Msg::Welcome { .. } => {
                bail!("the agent at {address} could not prove the token: not the agent you meant")
            }
            Msg::Refused { reason } => bail!("the agent at {address} refused: {reason}"),
            other => bail!("the agent at {address} answered {other:?} to auth"),
        };
        let mut s = Session {
            conn,
            host,
            offset_ns: 0,
            rtt_ns: u64::MAX,
        };
        s.measure_clocks()?;
        Ok(Some(s))
    }

    /// NTP's four timestamps, a few rounds, keeping the shortest round trip.
    fn measure_clocks(&mut self) -> anyhow::Result<()> {
        for _ in 0..TIME_ROUNDS {
            let t1 = proto::wall_ns();
            self.conn.send(&Msg::TimeRequest { t1 })?;
            let (t2, t3) = match self.conn.recv(HANDSHAKE)? {
                Msg::TimeReply { t1: echo, t2, t3 } if echo == t1 => (t2, t3),
                other => bail!("expected time_reply, got {other:?}"),
            };
            let t4 = proto::wall_ns();
            let rtt = (t4.saturating_sub(t1)).saturating_sub(t3.saturating_sub(t2));
            if rtt < self.rtt_ns {
                self.rtt_ns = rtt;
                self.offset_ns = ((t2 as i128 - t1 as i128 + t3 as i128 - t4 as i128) / 2) as i64;
            }
        }
        Ok(())
    }

    /// The control connection.
    #[cfg(test)]
    pub(crate) fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// Says goodbye (the agent is then ready for the next client).
    pub fn close(mut self) {
        let _ = self.conn.send(&Msg::Bye);
    }
}

/// Which end runs on the agent, and where.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The agent's control address.
    pub agent: String,
    /// The agent's end.
    pub role: Role,
    /// The shared token.
    pub token: Vec<u8>,
}

/// A transfer over a registered link kind with one end on an agent.
pub fn transfer(
    spec: &RunSpec,
    config_hash: &str,
    input: &Input,
    place: &Placement,
    cancel: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let LinkSpec::Registered {
        name: link,
        settings,
    } = &spec.link
    else {
        bail!("only the link crate's kinds (tcp, udp) join two hosts");
    };
    let t = &spec.transfer;
    let faults = spec.faults.injects_any().then_some(&spec.faults);
    let kind =
        perfkit_link::link_kind(link).ok_or_else(|| anyhow!("unknown link kind `{link}`"))?;
    let mut session = Session::open(&place.agent, &place.token)?;
    let name = endpoint::file_name(&input.path);
    let setup = Setup {
        role: place.role,
        config_hash: config_hash.to_owned(),
        work: Work::Transfer {
            transfer: t.clone(),
            link: link.to_owned(),
            settings: settings.clone(),
            input: (place.role == Role::Sender).then(|| InputInfo {
                len: input.bytes.len() as u64,
                name: String::from_utf8_lossy(&name).into_owned(),
                sha256: input.sha256.clone(),
            }),
            faults: faults.cloned(),
        },
    };
    session.conn.send(&Msg::Setup(Box::new(setup)))?;
    if place.role == Role::Sender {
        if let Err(e) = session.conn.send_blob(&input.bytes) {
            // An agent that refused the set-up may have closed before taking
            // it all: its answer says why, and is worth more than the pipe error.
            if let Ok(Msg::Failed { error }) = session.conn.recv(Duration::from_secs(1)) {
                bail!("the agent could not prepare the run: {error}");
            }
            return Err(e);
        }
    }
    let agent_address = match session.conn.recv(HANDSHAKE)? {
        Msg::Ready { address } => address,
        Msg::Failed { error } => bail!("the agent could not prepare the run: {error}"),
        other => bail!("expected ready, got {other:?}"),
    };
    let policy = Policy::seconds(t.timeout_s).cancel_on(cancel);
    let clock = WallClock::start();
    let mine = match place.role {
        Role::Receiver => {
            // The agent receives: connect to it and send.
            let address =
                agent_address.ok_or_else(|| anyhow!("the agent named no address to send to"))?;
            session.conn.send(&Msg::Start { address: None })?;
            let end = match kind.connect(settings, &address) {
                Ok(end) => end,
                Err(e) => return Err(unreachable_receiver(&mut session, &address, e)),
            };
            let r = super::send_side(&clock, &policy, t, &input.bytes, &name, end, faults);
            stop_on_error(&mut session, r)?
        }
        Role::Sender => {
            // The agent sends: listen where it can reach us.
            let mut local = settings.clone();
            let ip = session.conn.stream().local_addr()?.ip();
            local.insert("listen".into(), SocketAddr::new(ip, 0).to_string().into());
            let listening = kind.listen(&local)?;
            session.conn.send(&Msg::Start {
                address: Some(listening.address()),
            })?;
            let end = listening.accept(HANDSHAKE)?;
            let r = super::receive_side(&clock, &policy, t, end, super::chunk(settings));
            stop_on_error(&mut session, r)?
        }
    };
    // The agent's end reports when it is done; it gives up at its own deadline.
    let theirs = match wait_result(&mut session, t.timeout_s, cancel)? {
        Msg::Result(r) => *r,
        other => bail!("expected the agent's result, got {other:?}"),
    };
    let their_stamps = if t.latency {
        let blob = session.conn.recv_blob(HANDSHAKE, 10 << 16)?;
        Some(
            Stamps::decode(&blob)
                .ok_or_else(|| anyhow!("the agent's block stamps are malformed"))?,
        )
    } else {
        None
    };
    let offset = (session.offset_ns, session.rtt_ns);
    let agent_host = session.host.clone();
    session.close();
    let (mine, my_stamps) = mine;
    let mut o = outcome(place.role, mine, theirs, offset, &agent_host, &input.sha256);
    if let (Some(a), Some(b)) = (my_stamps, their_stamps) {
        // The receiver's clock minus the sender's.
        let (tx, rx, off) = match place.role {
            Role::Receiver => (a, b, session_offset(offset.0, true)),
            Role::Sender => (b, a, session_offset(offset.0, false)),
        };
        latency::metrics(latency::delays(&tx, &rx, off), &mut o.metrics);
    }
    Ok(o)
}

/// Waits for the agent's result, passing a Ctrl-C on as `stop` (the agent's
/// end stops within its poll); `failed` becomes the error.
fn wait_result(session: &mut Session, timeout_s: f64, cancel: &AtomicBool) -> anyhow::Result<Msg> {
    let wait = Duration::from_secs_f64(timeout_s + HANDSHAKE.as_secs_f64());
    let deadline = std::time::Instant::now() + wait;
    let mut stopped = false;
    loop {
        if cancel.load(Ordering::SeqCst) && !stopped {
            let _ = session.conn.send(&Msg::Stop);
            stopped = true;
        }
        if std::time::Instant::now() >= deadline {
            bail!("the agent sent no result in {:.0} s", wait.as_secs_f64());
        }
        match session.conn.poll(Duration::from_millis(100))? {
            None => {}
            Some(Msg::Failed { error }) => bail!("the agent's end failed: {error}"),
            Some(m) => return Ok(m),
        }
    }
}

/// SPEAD heaps with one end on an agent: perfkit's receiver at either end,
/// perfkit's or spead2's sender at the other.
pub fn heaps(
    rc: &perfkit_spead::run::RunConfig,
    h: &crate::spec::HeapsSpec,
    config_hash: &str,
    place: &Placement,
    cancel: &AtomicBool,
) -> anyhow::Result<Outcome> {
    use perfkit_spead::run::send_to;
    let mut session = Session::open(&place.agent, &place.token)?;
    session.conn.send(&Msg::Setup(Box::new(Setup {
        role: place.role,
        config_hash: config_hash.to_owned(),
        work: Work::Heaps { heaps: h.clone() },
    })))?;
    let agent_address = match session.conn.recv(HANDSHAKE)? {
        Msg::Ready { address } => address,
        Msg::Failed { error } => bail!("the agent could not prepare the run: {error}"),
        other => bail!("expected ready, got {other:?}"),
    };
    let mine = match place.role {
        Role::Receiver => {
            let address =
                agent_address.ok_or_else(|| anyhow!("the agent named no address to send to"))?;
            let dest: SocketAddr = address.parse()?;
            session.conn.send(&Msg::Start { address: None })?;
            let r = send_to(rc, dest, cancel).map_err(|e| anyhow!("{e}"));
            HeapsReport {
                tx: Some(stop_on_error(&mut session, r)?),
                ..Default::default()
            }
        }
        Role::Sender => {
            let ip = session.conn.stream().local_addr()?.ip();
            let places = crate::locate::Places::here();
            let receiving = crate::kinds::heaps::Waiting::bind(&places, h, rc, ip)?;
            session.conn.send(&Msg::Start {
                address: Some(receiving.address().to_string()),
            })?;
            let r = receiving.receive(rc, cancel);
            HeapsReport {
                rx: Some(stop_on_error(&mut session, r)?),
                ..Default::default()
            }
        }
    };
    let timeout = rc.time_cap.as_secs_f64() + 30.0;
    let theirs = match wait_result(&mut session, timeout, cancel)? {
        Msg::HeapsResult(r) => *r,
        other => bail!("expected the agent's heaps result, got {other:?}"),
    };
    let offset = (session.offset_ns, session.rtt_ns);
    let agent = session.host.clone();
    session.close();
    let (tx, rx) = match (mine.tx.or(theirs.tx), mine.rx.or(theirs.rx)) {
        (Some(tx), Some(rx)) => (tx, rx),
        _ => bail!("the agent's report lacks its end's figures"),
    };
    let mut o = crate::kinds::heaps::outcome(&perfkit_spead::run::combine(rc, tx, rx));
    o.peer_stages = Some(theirs.stages);
    clock_metrics(&mut o.metrics, offset);
    o.hosts = hosts(place.role, &agent);
    Ok(o)
}

/// Where each end ran: the agent's host for the end it ran, this one for
/// the other.
fn hosts(agent_role: Role, agent: &HostInfo) -> BTreeMap<String, String> {
    let (theirs, ours) = match agent_role {
        Role::Sender => ("sender", "receiver"),
        Role::Receiver => ("receiver", "sender"),
    };
    BTreeMap::from([
        (theirs.to_owned(), format!("agent: {}", agent.describe())),
        (ours.to_owned(), HostInfo::here().describe()),
    ])
}

/// The clock exchange's figures.
fn clock_metrics(metrics: &mut BTreeMap<String, f64>, (offset_ns, rtt_ns): (i64, u64)) {
    metrics.insert("clock_offset_us".into(), offset_ns as f64 / 1e3);
    metrics.insert("clock_offset_uncertainty_us".into(), rtt_ns as f64 / 2e3);
    metrics.insert("control_rtt_us".into(), rtt_ns as f64 / 1e3);
}

/// The offset to take from a delay: `agent - client` when the agent
/// receives, its negation when the agent sends.
fn session_offset(agent_minus_client: i64, agent_receives: bool) -> i64 {
    if agent_receives {
        agent_minus_client
    } else {
        -agent_minus_client
    }
}

/// Why the agent's receiver could not be reached. Its data port was open
/// when the agent said `ready` and takes one connection, unauthenticated, so
/// a refusal now most likely means another connection took it first. The
/// agent's end is told to stop: one that ran with another connection answers
/// at once (one still waiting for ours would not), and then that is known.
fn unreachable_receiver(
    session: &mut Session,
    address: &str,
    e: perfkit_link::Error,
) -> anyhow::Error {
    let _ = session.conn.send(&Msg::Stop);
    let theirs = match session.conn.poll(Duration::from_secs(2)) {
        Ok(Some(Msg::Failed { error })) => Some(format!("it stopped with: {error}")),
        Ok(Some(Msg::Result(_))) => Some("it received a whole transfer".to_owned()),
        _ => None,
    };
    match theirs {
        Some(theirs) => anyhow!(
            "the agent's receiver at {address} took another connection before ours: its data \
             port accepts one, and the agent's end ran with that one ({theirs}); ours got: {e}"
        ),
        None => anyhow!("cannot reach the agent's receiver at {address}: {e}"),
    }
}

/// A local error stops the agent's end too, before it is reported.
fn stop_on_error<T>(session: &mut Session, r: anyhow::Result<T>) -> anyhow::Result<T> {
    r.inspect_err(|_| {
        let _ = session.conn.send(&Msg::Stop);
    })
}

fn outcome(
    role: Role,
    mine: EndReport,
    theirs: EndReport,
    (offset_ns, rtt_ns): (i64, u64),
    agent: &HostInfo,
    input_sha256: &str,
) -> Outcome {
    let (sent, got) = match role {
        Role::Receiver => (mine, theirs),
        Role::Sender => (theirs, mine),
    };
    let mut metrics = BTreeMap::new();
    clock_metrics(&mut metrics, (offset_ns, rtt_ns));
    let mut counters: BTreeMap<String, u64> = sent.counters.clone();
    counters.extend(got.counters.clone());
    if let (Some(&s), Some(&a)) = (
        sent.counters.get("packets_sent"),
        got.counters.get("packets_arrived"),
    ) {
        packet_counters(s, a, &mut counters);
    }
    counters.insert("rx_wire_bytes".into(), got.wire_bytes);
    let agent_stages = match role {
        Role::Sender => sent.stages,
        Role::Receiver => got.stages.clone(),
    };
    Outcome {
        time_base: TimeBase::Real,
        tx: sent.side,
        rx: got.side,
        integrity: endpoint::of_input(got.integrity.unwrap_or_default(), input_sha256, STRANGER),
        link: LinkStats {
            wire_bytes: sent.wire_bytes,
            utilisation: None,
            counters,
        },
        peer_stages: Some(agent_stages),
        metrics,
        hosts: hosts(role, agent),
        ..Default::default()
    }
}

/// Who could have sent another file here: the receiving end's data port
/// (the agent's, or this client's when the agent sends) takes the first
/// connection or datagrams, unauthenticated.
const STRANGER: &str = "another sender reached its data port first?";

#[cfg(test)]
mod tests {
    use super::*;
    use perfkit_report::model::Integrity;
    use std::io::Read;
    use std::net::TcpListener;

    const TOKEN: &[u8] = b"0123456789abcdef0123";

    /// A stand-in agent on a real socket: the handshake and clocks as the
    /// agent does them, then `setup`, `ready {address}` and `start`, then
    /// `then`.
    fn stand_in(
        listener: TcpListener,
        address: String,
        then: impl FnOnce(&mut Conn) + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut conn = Conn::new(listener.accept().unwrap().0);
            let Msg::Hello { nonce: client, .. } = conn.recv(HANDSHAKE).unwrap() else {
                panic!("no hello");
            };
            let own = proto::nonce();
            conn.send(&Msg::Challenge {
                protocol: PROTOCOL,
                perfkit: "test".into(),
                nonce: own.clone(),
            })
            .unwrap();
            assert!(matches!(conn.recv(HANDSHAKE).unwrap(), Msg::Auth { .. }));
            conn.send(&Msg::Welcome {
                mac: proto::prove(TOKEN, "agent", &own, &client),
                host: HostInfo::default(),
            })
            .unwrap();
            for _ in 0..TIME_ROUNDS {
                let Msg::TimeRequest { t1 } = conn.recv(HANDSHAKE).unwrap() else {
                    panic!("no time_request");
                };
                conn.send(&Msg::TimeReply { t1, t2: t1, t3: t1 }).unwrap();
            }
            assert!(matches!(conn.recv(HANDSHAKE).unwrap(), Msg::Setup(_)));
            conn.send(&Msg::Ready {
                address: Some(address),
            })
            .unwrap();
            assert!(matches!(conn.recv(HANDSHAKE).unwrap(), Msg::Start { .. }));
            then(&mut conn);
        })
    }

    /// A transfer over TCP of 5,000 bytes to the agent at `agent`.
    fn send_to_agent(agent: &str) -> anyhow::Result<Outcome> {
        let mut spec = RunSpec::from_config(&crate::scenario::Config {
            values: crate::scenario::PARAMS
                .iter()
                .map(|p| (p.name.to_owned(), p.default.clone()))
                .collect(),
        })
        .unwrap();
        let tcp = perfkit_link::registry::link_kind("tcp").unwrap();
        spec.link = LinkSpec::Registered {
            name: "tcp".into(),
            settings: tcp.settings(|_| None),
        };
        spec.transfer.timeout_s = 20.0;
        let input = Input::in_memory(vec![42u8; 5000], "ours.bin");
        let place = Placement {
            agent: agent.to_owned(),
            role: Role::Receiver,
            token: TOKEN.to_vec(),
        };
        transfer(&spec, "h", &input, &place, &AtomicBool::new(false))
    }

    #[test]
    fn a_whole_file_that_is_not_the_input_is_not_intact() {
        // The receiving end took another sender's file, whole and matching
        // its own META: its verdict is ok, and the client used to copy it.
        let control = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = control.local_addr().unwrap().to_string();
        let data = TcpListener::bind("127.0.0.1:0").unwrap();
        let data_at = data.local_addr().unwrap().to_string();
        let other = crate::integrity::sha256_hex(b"a stranger's file");
        let reported = other.clone();
        let agent = stand_in(control, data_at, move |conn| {
            let (mut s, _) = data.accept().unwrap();
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
            conn.send(&Msg::Result(Box::new(EndReport {
                integrity: Some(Integrity {
                    ok: true,
                    sha256_sent: reported.clone(),
                    sha256_received: reported,
                    ..Default::default()
                }),
                ..Default::default()
            })))
            .unwrap();
            let _ = conn.recv(HANDSHAKE);
        });
        let o = send_to_agent(&at).unwrap();
        agent.join().unwrap();
        let i = &o.integrity;
        assert!(!i.ok, "{i:?}");
        assert_eq!(i.sha256_sent, crate::integrity::sha256_hex(&[42u8; 5000]));
        assert_eq!(i.sha256_received, other);
        let why = crate::output::failure(i);
        assert!(why.contains("not this run's input"), "{why}");
        assert!(why.contains(&other[..16]), "{why}");
    }

    #[test]
    fn the_input_itself_arriving_stays_intact() {
        let ours = crate::integrity::sha256_hex(&[42u8; 5000]);
        let ok = Integrity {
            ok: true,
            sha256_sent: ours.clone(),
            sha256_received: ours.clone(),
            ..Default::default()
        };
        assert_eq!(endpoint::of_input(ok.clone(), &ours, STRANGER), ok);
        // A failed verdict of the input stays as it was.
        let lost = Integrity {
            ok: false,
            missing_blocks: vec![3],
            sha256_sent: ours.clone(),
            ..Default::default()
        };
        assert_eq!(endpoint::of_input(lost.clone(), &ours, STRANGER), lost);
        // The input's META with other bytes (corrupted on the way): the
        // verdict's own "SHA-256 differs", not "another sender".
        let corrupted = Integrity {
            ok: false,
            sha256_sent: ours.clone(),
            sha256_received: crate::integrity::sha256_hex(b"flipped"),
            ..Default::default()
        };
        let v = endpoint::of_input(corrupted.clone(), &ours, STRANGER);
        assert_eq!(v, corrupted);
        assert!(v.reason.is_none());
    }

    #[test]
    fn a_data_port_taken_by_another_connection_is_named() {
        // The agent's data port, closed once another connection took it.
        let control = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = control.local_addr().unwrap().to_string();
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let data_at = taken.local_addr().unwrap().to_string();
        drop(taken);
        let agent = stand_in(control, data_at.clone(), |conn| {
            // The agent's end, running with the stranger, stops when told.
            assert!(matches!(conn.recv(HANDSHAKE).unwrap(), Msg::Stop));
            conn.send(&Msg::Failed {
                error: "interrupted".into(),
            })
            .unwrap();
        });
        let err = format!("{:#}", send_to_agent(&at).unwrap_err());
        agent.join().unwrap();
        assert!(err.contains("took another connection before ours"), "{err}");
        assert!(err.contains(&data_at), "{err}");
    }
}
