//! `perfkit agent`: runs the other end of a transfer for a `perfkit run`
//! on another host, one run at a time.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use perfkit_engine::{Policy, WallClock};
use perfkit_link::registry::Settings;

use super::proto::{self, Conn, HostInfo, Msg, Role, Setup, HANDSHAKE, MAX_BLOB, PROTOCOL};
use crate::integrity::sha256_hex;

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
                match run(conn, &setup) {
                    Ok((report, stamps)) => {
                        conn.send(&Msg::Result(Box::new(report)))?;
                        // When the run measures latency, the stamps follow as a blob.
                        if setup.transfer.latency {
                            let blob = stamps.map(|s| encode_pairs(&s)).unwrap_or_default();
                            conn.send_blob(&blob)?;
                        }
                    }
                    Err(e) => {
                        let error = format!("{e:#}");
                        log(&format!("{}: run {runs} failed: {error}", conn.peer()));
                        conn.send(&Msg::Failed { error })?;
                    }
                }
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

/// (block, ns) pairs as [`crate::kinds::latency::Stamps::encode`] writes them.
pub(crate) fn encode_pairs(pairs: &[(u16, u64)]) -> Vec<u8> {
    pairs
        .iter()
        .flat_map(|(b, t)| b.to_be_bytes().into_iter().chain(t.to_be_bytes()))
        .collect()
}

/// Runs the agent's end of one transfer and reports it.
fn run(conn: &mut Conn, setup: &Setup) -> anyhow::Result<super::Side> {
    let kind = perfkit_link::link_kind(&setup.link)
        .ok_or_else(|| anyhow!("unknown link kind `{}`", setup.link))?;
    let mut settings = setup.settings.clone();
    let t = &setup.transfer;
    let clock = WallClock::start();
    let mut report = match setup.role {
        Role::Receiver => {
            settings.insert("listen".into(), local_listen(conn, &settings)?.into());
            let listening = kind.listen(&settings)?;
            conn.send(&Msg::Ready {
                address: Some(listening.address()),
            })?;
            expect_start(conn)?;
            let end = listening.accept(HANDSHAKE)?;
            perfkit::reset();
            watched(conn, t.timeout_s, |policy| {
                super::receive_side(&clock, policy, t, end, super::chunk(&settings))
            })?
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
            let end = kind.connect(&settings, &address)?;
            perfkit::reset();
            watched(conn, t.timeout_s, |policy| {
                let faults = setup.faults.as_ref().filter(|f| f.injects_any());
                super::send_side(&clock, policy, t, &bytes, info.name.as_bytes(), end, faults)
            })?
        }
    };
    report.0.stages = crate::run::stages_from(&perfkit::snapshot());
    Ok(report)
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
    f: impl FnOnce(&Policy<'_>) -> anyhow::Result<T>,
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
        r
    })
}
