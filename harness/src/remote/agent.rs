//! `perfkit agent`: runs the other end of a transfer for a `perfkit run`
//! on another host, one run at a time.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use perfkit_engine::{Policy, WallClock};
use perfkit_link::registry::Settings;

use super::proto::{self, Conn, HostInfo, Msg, Role, Work, HANDSHAKE, MAX_BLOB, PROTOCOL};
use crate::integrity::sha256_hex;

/// Clients told "busy" at once, at most.
const MAX_TELLING: usize = 16;

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
    let telling = Arc::new(std::sync::atomic::AtomicUsize::new(0));
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
            // cannot stall the accept loop; a flood beyond a few at once is
            // just closed.
            if telling.fetch_add(1, Ordering::SeqCst) < MAX_TELLING {
                let telling = telling.clone();
                std::thread::spawn(move || {
                    let mut c = Conn::new(stream);
                    // The client's hello is read first: a socket closed
                    // with it unread is reset, and the reset can reach the
                    // client before it reads the refusal.
                    let _ = c.recv(HANDSHAKE);
                    let _ = c.send(&Msg::Busy);
                    telling.fetch_sub(1, Ordering::SeqCst);
                });
            } else {
                telling.fetch_sub(1, Ordering::SeqCst);
            }
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
    crate::errln!(
        "{} perfkit agent: {line}",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    );
}

/// One control connection: handshake, then runs until `bye`. Returns the
/// runs served.
pub(crate) fn session(conn: &mut Conn, token: &[u8]) -> anyhow::Result<u32> {
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
        let msg = match conn.recv_checked(IDLE)? {
            Ok(msg) => msg,
            // A set-up this agent cannot read (a setting a newer perfkit
            // added, say) is refused with the reason, never half-understood:
            // serde would otherwise drop the fields it does not know and run
            // something other than what was asked.
            Err(e) if e.kind.as_deref() == Some("setup") => {
                // The input that follows a sending agent's set-up is read
                // first: left unread, it would reset the connection and take
                // the answer with it.
                if e.input_follows {
                    conn.recv_blob(HANDSHAKE, MAX_BLOB)?;
                }
                let error = format!(
                    "this agent (perfkit {}, protocol {PROTOCOL}) cannot read the run's set-up: {:#}; \
                     run the same perfkit version on both hosts",
                    env!("CARGO_PKG_VERSION"),
                    e.error
                );
                log(&format!("{}: {error}", conn.peer()));
                conn.send(&Msg::Failed { error })?;
                continue;
            }
            Err(e) => return Err(e.error),
        };
        match msg {
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
                let done = match &setup.work {
                    Work::Transfer {
                        transfer,
                        link,
                        settings,
                        input,
                        faults,
                    } => {
                        let job = Job {
                            t: transfer,
                            link,
                            settings,
                            input: input.as_ref(),
                            faults: faults.as_ref(),
                        };
                        transfer_run(conn, setup.role, &job).and_then(|(report, stamps)| {
                            conn.send(&Msg::Result(Box::new(report)))?;
                            // When the run measures latency, the stamps follow as a blob.
                            if transfer.latency {
                                let blob = stamps.map(|s| encode_pairs(&s)).unwrap_or_default();
                                conn.send_blob(&blob)?;
                            }
                            Ok(())
                        })
                    }
                    Work::Heaps { heaps } => heaps_run(conn, setup.role, heaps)
                        .and_then(|report| conn.send(&Msg::HeapsResult(Box::new(report)))),
                };
                if let Err(e) = done {
                    let error = format!("{e:#}");
                    log(&format!("{}: run {runs} failed: {error}", conn.peer()));
                    conn.send(&Msg::Failed { error })?;
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

/// A transfer's settings as the agent takes them from `setup`.
struct Job<'a> {
    t: &'a crate::spec::TransferSpec,
    link: &'a str,
    settings: &'a Settings,
    input: Option<&'a proto::InputInfo>,
    faults: Option<&'a perfkit_link::faults::FaultConfig>,
}

/// Runs the agent's end of one transfer and reports it.
fn transfer_run(conn: &mut Conn, role: Role, job: &Job<'_>) -> anyhow::Result<super::Side> {
    // A sending agent's input follows the set-up: read it before anything
    // can fail, or the unread bytes would reset the connection and take the
    // answer with them.
    let input = match (role, job.input) {
        (Role::Sender, Some(_)) => Some(conn.recv_blob(HANDSHAKE, MAX_BLOB)?),
        _ => None,
    };
    let kind = perfkit_link::link_kind(job.link)
        .ok_or_else(|| anyhow!("unknown link kind `{}`", job.link))?;
    // Checked before `ready`, in either role, as this end will use them (a
    // receiving agent listens on its own address, not the client's): a
    // setting this agent does not know, or a value it refuses, is the
    // answer, not a connection that never comes.
    let check = |settings: &Settings| {
        kind.check(settings)
            .map_err(|(key, why)| anyhow!("link `{}`, setting `{key}`: {why}", job.link))
    };
    let mut settings = job.settings.clone();
    let t = job.t;
    let clock = WallClock::start();
    let mut report = match role {
        Role::Receiver => {
            settings.insert("listen".into(), local_listen(conn, &settings)?.into());
            check(&settings)?;
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
            let info = job
                .input
                .ok_or_else(|| anyhow!("a sending agent needs the input"))?;
            let bytes = input.unwrap_or_default();
            check(&settings)?;
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
                let faults = job.faults.filter(|f| f.injects_any());
                super::send_side(&clock, policy, t, &bytes, info.name.as_bytes(), end, faults)
            })?
        }
    };
    report.0.stages = crate::run::stages_from(&perfkit::snapshot());
    Ok(report)
}

/// Runs the agent's end of a heaps run: perfkit's receiver, or perfkit's or
/// spead2's sender (found where this agent runs, as a run would find it).
fn heaps_run(
    conn: &mut Conn,
    role: Role,
    h: &crate::spec::HeapsSpec,
) -> anyhow::Result<proto::HeapsReport> {
    use perfkit_spead::run::send_to;
    let rc = crate::kinds::heaps::config(&crate::locate::Places::here(), h)?;
    rc.validate().map_err(|e| anyhow!("{e}"))?;
    let timeout_s = rc.time_cap.as_secs_f64() + 30.0;
    let mut report = match role {
        Role::Receiver => {
            let ip = conn.stream().local_addr()?.ip();
            let places = crate::locate::Places::here();
            let receiving = crate::kinds::heaps::Waiting::bind(&places, h, &rc, ip)?;
            conn.send(&Msg::Ready {
                address: Some(receiving.address().to_string()),
            })?;
            expect_start(conn)?;
            perfkit::reset();
            let rx = watched_flag(conn, timeout_s, |cancel| receiving.receive(&rc, cancel))?;
            proto::HeapsReport {
                rx: Some(rx),
                ..Default::default()
            }
        }
        Role::Sender => {
            conn.send(&Msg::Ready { address: None })?;
            let dest: SocketAddr = expect_start(conn)?
                .ok_or_else(|| anyhow!("start named no address to send to"))?
                .parse()?;
            perfkit::reset();
            let tx = watched_flag(conn, timeout_s, |cancel| {
                send_to(&rc, dest, cancel).map_err(|e| anyhow!("{e}"))
            })?;
            proto::HeapsReport {
                tx: Some(tx),
                ..Default::default()
            }
        }
    };
    report.stages = crate::run::stages_from(&perfkit::snapshot());
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
    watched_flag(conn, timeout_s, |cancel| {
        f(&Policy::seconds(timeout_s).cancel_on(cancel))
    })
}

/// Runs `f` with a cancel flag that a watcher of the control connection
/// raises when the client says `stop` or goes away.
fn watched_flag<T>(
    conn: &Conn,
    _timeout_s: f64,
    f: impl FnOnce(&AtomicBool) -> anyhow::Result<T>,
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
        let r = f(&cancel);
        done.store(true, Ordering::SeqCst);
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore, SeedableRng};
    use std::io::Write;

    const TOKEN: &[u8] = b"0123456789abcdef0123";

    /// A session on a real connection fed `bytes`; it must end (with an
    /// error or not) and never panic.
    fn feed(bytes: &[u8]) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let agent = std::thread::spawn(move || {
            let mut conn = Conn::new(s);
            let _ = session(&mut conn, TOKEN);
        });
        let _ = c.write_all(bytes);
        let _ = c.shutdown(std::net::Shutdown::Write);
        agent.join().expect("the session panicked");
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    /// Valid messages, then mutated ones: bytes flipped, cut, spliced.
    fn samples() -> Vec<Vec<u8>> {
        let msgs = [
            Msg::Hello {
                protocol: PROTOCOL,
                perfkit: "x".into(),
                nonce: proto::nonce(),
            },
            Msg::Auth {
                mac: "00".repeat(32),
            },
            Msg::TimeRequest { t1: 1 },
            Msg::Start {
                address: Some("127.0.0.1:1".into()),
            },
            Msg::Bye,
        ];
        msgs.iter()
            .map(|m| serde_json::to_vec(m).unwrap())
            .collect()
    }

    /// The default transfer's set-up, as JSON the test can add to.
    fn setup_json() -> serde_json::Value {
        let transfer = crate::spec::RunSpec::from_config(&crate::scenario::Config {
            values: crate::scenario::PARAMS
                .iter()
                .map(|p| (p.name.to_owned(), p.default.clone()))
                .collect(),
        })
        .unwrap()
        .transfer;
        let tcp = perfkit_link::registry::link_kind("tcp").unwrap();
        serde_json::to_value(Msg::Setup(Box::new(proto::Setup {
            role: Role::Receiver,
            config_hash: "h".into(),
            work: Work::Transfer {
                transfer,
                link: "tcp".into(),
                settings: tcp.settings(|_| None),
                input: None,
                faults: None,
            },
        })))
        .unwrap()
    }

    /// What an agent answers `body`, and `blob` after it, with after a real
    /// handshake.
    fn answer(body: &serde_json::Value, blob: Option<&[u8]>) -> anyhow::Result<Msg> {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = l.local_addr().unwrap().to_string();
        let agent = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut conn = Conn::new(s);
            session(&mut conn, TOKEN)
        });
        let mut client = super::super::client::Session::open(&at, TOKEN).unwrap();
        let conn = client.conn();
        conn.send_blob(&serde_json::to_vec(body).unwrap()).unwrap();
        if let Some(b) = blob {
            conn.send_blob(b).unwrap();
        }
        let got = conn.recv(Duration::from_secs(10));
        drop(client);
        let _ = agent.join().expect("the session panicked");
        got
    }

    /// Adds `new_knob` to the object at `path` in `v`.
    fn with_knob(mut v: serde_json::Value, path: &[&str]) -> serde_json::Value {
        let mut at = &mut v;
        for k in path {
            at = at.get_mut(*k).unwrap();
        }
        at.as_object_mut()
            .unwrap()
            .insert("new_knob".into(), serde_json::json!(3));
        v
    }

    #[test]
    fn a_setting_the_agent_does_not_know_is_refused_not_dropped() {
        // A newer perfkit's setting, at each level of the set-up: an agent
        // that dropped it would run something other than what was asked.
        let places: [&[&str]; 4] = [&[], &["work"], &["work", "transfer"], &["work", "settings"]];
        // A sending agent's input (12 MB, more than the socket buffers
        // hold) follows its set-up; left unread, it reset the connection
        // and the answer was lost.
        let input = vec![7u8; 12 << 20];
        let mut sender = setup_json();
        sender["role"] = "sender".into();
        sender["work"]["input"] = serde_json::json!({
            "len": input.len(),
            "name": "f.bin",
            "sha256": sha256_hex(&input),
        });
        for path in places {
            for (setup, blob) in [(setup_json(), None), (sender.clone(), Some(&input[..]))] {
                let role = setup["role"].clone();
                match answer(&with_knob(setup, path), blob) {
                    Ok(Msg::Failed { error }) => {
                        assert!(
                            error.contains("unknown field `new_knob`"),
                            "{path:?}: {error}"
                        );
                        // The link's settings are read by its kind, which names it.
                        let by = if path.last() == Some(&"settings") {
                            "link `tcp`"
                        } else {
                            "same perfkit version"
                        };
                        assert!(error.contains(by), "{error}");
                    }
                    other => panic!("{path:?} {role}: {other:?}"),
                }
            }
        }
        // A sending set-up without an input has no input to wait for: it is
        // refused at once, not after the input's time-out.
        let mut no_input = sender.clone();
        no_input["work"]["input"] = serde_json::Value::Null;
        let t = std::time::Instant::now();
        match answer(&no_input, None) {
            Ok(Msg::Failed { error }) => assert!(error.contains("needs the input"), "{error}"),
            other => panic!("{other:?}"),
        }
        assert!(t.elapsed() < HANDSHAKE / 2, "{:?}", t.elapsed());
        // The set-ups as sent are taken: the agent gets ready for them. A
        // receiving agent listens on its own address, so a client's `listen`
        // host it cannot resolve is no reason to refuse.
        let mut elsewhere = setup_json();
        elsewhere["work"]["settings"]["listen"] = "client.invalid:0".into();
        for (setup, blob) in [
            (setup_json(), None),
            (elsewhere, None),
            (sender, Some(&input[..])),
        ] {
            match answer(&setup, blob) {
                Ok(Msg::Ready { .. }) => {}
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn malformed_control_messages_never_panic_the_agent() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let valid = samples();
        for i in 0..400 {
            let mut stream = Vec::new();
            for _ in 0..rng.random_range(1..4) {
                let mut body = valid[rng.random_range(0..valid.len())].clone();
                match i % 4 {
                    0 => {
                        let k = rng.random_range(0..body.len());
                        body[k] ^= 1 << rng.random_range(0..8);
                    }
                    1 => body.truncate(rng.random_range(0..body.len())),
                    2 => {
                        let mut junk = vec![0u8; rng.random_range(0..64)];
                        rng.fill_bytes(&mut junk);
                        let at = rng.random_range(0..=body.len());
                        body.splice(at..at, junk);
                    }
                    _ => {}
                }
                stream.extend(frame(&body));
            }
            if i % 7 == 0 {
                // A lying length prefix.
                let n = stream.len();
                stream[rng.random_range(0..4.min(n))] = rng.random();
            }
            feed(&stream);
        }
        // After a real handshake: mutated set-ups and stray messages.
        let setup = serde_json::to_vec(&setup_json()).unwrap();
        for i in 0..60 {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let at = l.local_addr().unwrap().to_string();
            let agent = std::thread::spawn(move || {
                let (s, _) = l.accept().unwrap();
                let mut conn = Conn::new(s);
                let _ = session(&mut conn, TOKEN);
            });
            let mut client = super::super::client::Session::open(&at, TOKEN).unwrap();
            let mut body = setup.clone();
            for _ in 0..rng.random_range(1..6) {
                let k = rng.random_range(0..body.len());
                body[k] = rng.random();
            }
            if i % 3 == 0 {
                body = serde_json::to_vec(&Msg::Welcome {
                    mac: "x".into(),
                    host: HostInfo::default(),
                })
                .unwrap();
            }
            let conn = client.conn();
            let _ = conn.send_blob(&body);
            // The agent answers (failed, or a ready it will wait on) or ends.
            let _ = conn.recv(Duration::from_secs(2));
            drop(client);
            agent.join().expect("the session panicked");
        }
        // And raw noise.
        for _ in 0..100 {
            let mut junk = vec![0u8; rng.random_range(0..300)];
            rng.fill_bytes(&mut junk);
            feed(&junk);
        }
    }
}
