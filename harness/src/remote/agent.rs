//! `perfkit agent`: runs the other end of a transfer for a `perfkit run`
//! on another host, one run at a time.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use perfkit_engine::{drive, Policy, WallClock};
use perfkit_link::registry::Settings;

use super::proto::{self, Conn, HostInfo, Msg, Role, Setup, HANDSHAKE, MAX_BLOB, PROTOCOL};
use crate::integrity::{hex, sha256_hex};
use crate::kinds::endpoint::{self, EndReport};

/// How long an authenticated client may stay silent between runs' messages.
const IDLE: Duration = Duration::from_secs(60);

/// Settings of one agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where to listen for control connections.
    pub listen: String,
    /// The shared token.
    pub token: Vec<u8>,
    /// Stop after serving this many sessions (None = forever).
    pub max_sessions: Option<u64>,
}

/// Serves control connections until `max_sessions` have been served (or
/// forever). Prints the address it listens on as its first line on stdout.
pub fn serve(cfg: AgentConfig) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&cfg.listen)
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let at = listener.local_addr()?;
    println!("perfkit agent: listening on {at}");
    log(&format!(
        "perfkit {} agent, protocol {PROTOCOL}, on {at}",
        env!("CARGO_PKG_VERSION")
    ));
    let busy = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let token: Arc<[u8]> = cfg.token.into();
    let mut sessions: Vec<std::thread::JoinHandle<()>> = Vec::new();
    loop {
        if cfg
            .max_sessions
            .is_some_and(|n| served.load(Ordering::SeqCst) >= n)
        {
            break;
        }
        let (stream, peer) = match accept_for(&listener, Duration::from_millis(200)) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                log(&format!("accept failed: {e}"));
                continue;
            }
        };
        sessions.retain(|h| !h.is_finished());
        if busy.swap(true, Ordering::SeqCst) {
            // Told on a thread of its own, so a client that never reads
            // cannot stall the accept loop.
            std::thread::spawn(move || {
                let mut c = Conn::new(stream);
                let _ = c.send(&Msg::Busy);
            });
            log(&format!("{peer}: busy with another run, refused"));
            continue;
        }
        let (busy, served, token) = (busy.clone(), served.clone(), token.clone());
        sessions.push(std::thread::spawn(move || {
            let mut conn = Conn::new(stream);
            match session(&mut conn, &token) {
                Ok(runs) => log(&format!("{peer}: done after {runs} run(s)")),
                Err(e) => log(&format!("{peer}: {e:#}")),
            }
            served.fetch_add(1, Ordering::SeqCst);
            busy.store(false, Ordering::SeqCst);
        }));
    }
    for h in sessions {
        let _ = h.join();
    }
    Ok(())
}

fn accept_for(
    listener: &TcpListener,
    wait: Duration,
) -> std::io::Result<Option<(TcpStream, SocketAddr)>> {
    listener.set_nonblocking(true)?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        match listener.accept() {
            Ok((s, a)) => {
                s.set_nonblocking(false)?;
                return Ok(Some((s, a)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() >= deadline {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

fn log(line: &str) {
    eprintln!(
        "{} perfkit agent: {line}",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    );
}

/// One control connection: handshake, then runs until `bye`. Returns the
/// runs served.
fn session(conn: &mut Conn, token: &[u8]) -> anyhow::Result<u32> {
    let client_nonce = match conn.recv(HANDSHAKE)? {
        Msg::Hello {
            protocol, nonce, ..
        } if protocol == PROTOCOL => nonce,
        Msg::Hello { protocol, .. } => {
            let reason =
                format!("protocol {protocol} is not spoken here (this agent speaks {PROTOCOL})");
            let _ = conn.send(&Msg::Refused {
                reason: reason.clone(),
            });
            bail!("refused: {reason}");
        }
        other => bail!("expected hello, got {other:?}"),
    };
    let own = proto::nonce();
    conn.send(&Msg::Challenge {
        protocol: PROTOCOL,
        perfkit: env!("CARGO_PKG_VERSION").to_owned(),
        nonce: own.clone(),
    })?;
    match conn.recv(HANDSHAKE)? {
        Msg::Auth { mac } if proto::verify(token, "client", &client_nonce, &own, &mac) => {}
        Msg::Auth { .. } => {
            let _ = conn.send(&Msg::Refused {
                reason: "authentication failed: the token does not match".into(),
            });
            bail!("refused: wrong token");
        }
        other => bail!("expected auth, got {other:?}"),
    }
    conn.send(&Msg::Welcome {
        mac: proto::prove(token, "agent", &own, &client_nonce),
        host: HostInfo::here(),
    })?;
    let mut runs = 0;
    loop {
        match conn.recv(IDLE)? {
            Msg::TimeRequest { t1 } => {
                let t2 = proto::wall_ns();
                conn.send(&Msg::TimeReply {
                    t1,
                    t2,
                    t3: proto::wall_ns(),
                })?;
            }
            Msg::Setup(setup) => {
                runs += 1;
                let reply = match run(conn, &setup) {
                    Ok(report) => Msg::Result(Box::new(report)),
                    Err(e) => Msg::Failed {
                        error: format!("{e:#}"),
                    },
                };
                if let Msg::Failed { error } = &reply {
                    log(&format!("{}: run {runs} failed: {error}", conn.peer()));
                }
                conn.send(&reply)?;
            }
            Msg::Bye => return Ok(runs),
            other => bail!("unexpected {other:?}"),
        }
    }
}

/// The address a data link listens on here: the kind's `listen` port on
/// the address the client reached this agent at, so the client can reach
/// it too.
fn local_listen(conn: &Conn, settings: &Settings) -> anyhow::Result<String> {
    let ip: IpAddr = conn.stream().local_addr()?.ip();
    let port = settings
        .get("listen")
        .and_then(|v| v.as_str())
        .and_then(|l| l.rsplit_once(':'))
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(0);
    Ok(SocketAddr::new(ip, port).to_string())
}

/// Runs the agent's end of one transfer and reports it.
fn run(conn: &mut Conn, setup: &Setup) -> anyhow::Result<EndReport> {
    let kind = perfkit_link::link_kind(&setup.link)
        .ok_or_else(|| anyhow!("unknown link kind `{}`", setup.link))?;
    let mut settings = setup.settings.clone();
    let t = &setup.transfer;
    match setup.role {
        Role::Receiver => {
            settings.insert("listen".into(), local_listen(conn, &settings)?.into());
            let listening = kind.listen(&settings)?;
            conn.send(&Msg::Ready {
                address: Some(listening.address()),
            })?;
            expect_start(conn)?;
            let mut end = listening.accept(HANDSHAKE)?;
            let mut rx = endpoint::receiver(t.channel, t.framing());
            let chunk = settings
                .get("chunk")
                .and_then(|v| v.as_u64())
                .map_or(1 << 16, |c| c as usize);
            perfkit::reset();
            let (ended, wire) = watched(conn, t.timeout_s, |policy| {
                drive::receive_end(
                    &WallClock::start(),
                    policy,
                    &mut rx,
                    &mut end,
                    chunk,
                    Duration::from_secs(2),
                )
            })?;
            let _ = ended;
            let mut side = endpoint::side(rx.stats());
            side.errors = endpoint::rx_errors(&rx);
            let sent_sha = rx.meta().map(|m| hex(&m.sha256)).unwrap_or_default();
            Ok(EndReport {
                side,
                stages: crate::run::stages_from(&perfkit::snapshot()),
                integrity: Some(endpoint::integrity(&sent_sha, &rx)),
                wire_bytes: wire,
            })
        }
        Role::Sender => {
            let info = setup
                .input
                .as_ref()
                .ok_or_else(|| anyhow!("a sending agent needs the input"))?;
            let bytes = conn.recv_blob(HANDSHAKE, MAX_BLOB)?;
            if bytes.len() as u64 != info.len || sha256_hex(&bytes) != info.sha256 {
                bail!(
                    "the input arrived damaged ({} of {} bytes)",
                    bytes.len(),
                    info.len
                );
            }
            conn.send(&Msg::Ready { address: None })?;
            let address =
                expect_start(conn)?.ok_or_else(|| anyhow!("start named no address to send to"))?;
            let mut end = kind.connect(&settings, &address)?;
            let mut tx = endpoint::sender(t, &bytes, info.name.as_bytes())?;
            perfkit::reset();
            let wire = watched(conn, t.timeout_s, |policy| {
                drive::send_end(&WallClock::start(), policy, &mut tx, t.framing(), &mut end)
            })?;
            Ok(EndReport {
                side: endpoint::side(tx.stats()),
                stages: crate::run::stages_from(&perfkit::snapshot()),
                integrity: None,
                wire_bytes: wire,
            })
        }
    }
}

fn expect_start(conn: &mut Conn) -> anyhow::Result<Option<String>> {
    match conn.recv(HANDSHAKE)? {
        Msg::Start { address } => Ok(address),
        other => bail!("expected start, got {other:?}"),
    }
}

/// Runs `f` under the run's policy while a watcher reads the control
/// connection: `stop` from the client, or the client gone, cancels the run
/// within one poll.
fn watched<T>(
    conn: &Conn,
    timeout_s: f64,
    f: impl FnOnce(&Policy<'_>) -> Result<T, perfkit_engine::Error>,
) -> anyhow::Result<T> {
    let cancel = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let mut watch = conn.try_clone()?;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                match watch.poll(Duration::from_millis(100)) {
                    Ok(None) => {}
                    Ok(Some(_)) | Err(_) => {
                        cancel.store(true, Ordering::SeqCst);
                        break;
                    }
                }
            }
        });
        let policy = Policy::seconds(timeout_s).cancel_on(&cancel);
        let r = f(&policy);
        done.store(true, Ordering::SeqCst);
        r.map_err(|e| anyhow!("{e}"))
    })
}
