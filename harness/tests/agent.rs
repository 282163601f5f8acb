//! `perfkit agent` and runs with one end on it: real processes, real
//! sockets on 127.0.0.1 (the two-namespace topology is
//! scripts/two-hosts.sh's, run by scripts/test.d).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{exe, root};
use perfkit_report::model::Results;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// A running agent, killed when dropped.
struct Agent {
    child: Child,
    address: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, TOKEN).unwrap();
        let log = dir.path().join("agent.log");
        let mut child = Command::new(exe())
            .args(["agent", "--listen", "127.0.0.1:0", "--token-file"])
            .arg(&token)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("the agent prints its address")
            .to_owned();
        Agent {
            child,
            address,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scenario with one end on the agent.
fn scenario(dir: &Path, agent: &Agent, extra: &str) -> PathBuf {
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let s = dir.join("remote.toml");
    std::fs::write(
        &s,
        format!(
            "runs = 1\n[link]\nkind = \"tcp\"\n[transfer]\nblock_size = 249\ninput_size = 400000\nrepeats = 0\n\
             [hosts]\nreceiver = \"agent://{}\"\ntoken_file = {:?}\n{extra}",
            agent.address,
            token.display().to_string()
        ),
    )
    .unwrap();
    s
}

fn run(scenario: &Path, out: &Path, set: &[&str]) -> Output {
    let mut cmd = Command::new(exe());
    cmd.arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .arg("--no-report")
        .current_dir(root());
    for s in set {
        cmd.args(["--set", s]);
    }
    cmd.output().unwrap()
}

#[test]
fn either_end_on_the_agent_over_tcp_and_udp_arrives_whole() {
    let agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), &agent, "");
    let here = format!("agent://{}", agent.address);
    for (link, placement) in [
        ("tcp", ["receiver_host=local", "sender_host=local"]),
        ("udp", ["receiver_host=local", "sender_host=local"]),
    ] {
        for (agent_end, [a, b]) in [
            (
                "receiver",
                [format!("receiver_host={here}"), placement[1].to_owned()],
            ),
            (
                "sender",
                [placement[0].to_owned(), format!("sender_host={here}")],
            ),
        ] {
            let out = dir.path().join(format!("{link}-{agent_end}"));
            let link_set = format!("link={link}");
            let o = run(
                &s,
                &out,
                &[&link_set, "rcvbuf=8388608", "latency=true", &a, &b],
            );
            assert!(
                o.status.success(),
                "{link}, agent {agent_end}: {}\n{}",
                String::from_utf8_lossy(&o.stderr),
                agent.log()
            );
            let r = Results::load(out.join("results.json")).unwrap();
            let rec = &r.runs[0];
            assert!(rec.integrity.ok, "{link} {agent_end}: {:?}", rec.integrity);
            assert_eq!(rec.rx.bytes, 400_000);
            // Both ends' figures and stage tables are in the one record.
            assert!(rec.tx.blocks > 0 && rec.rx.blocks > 0);
            assert!(
                rec.hosts[agent_end].starts_with("agent: "),
                "{:?}",
                rec.hosts
            );
            let names: Vec<_> = rec.stages.sites.iter().map(|s| s.name.as_str()).collect();
            assert!(names.iter().any(|n| n.starts_with("sender::")), "{names:?}");
            assert!(
                names.iter().any(|n| n.starts_with("receiver::")),
                "{names:?}"
            );
            assert!(rec.metrics.contains_key("clock_offset_us"));
            // Every block's one-way delay, across the two ends' clocks.
            assert_eq!(
                rec.metrics["one_way_delay_blocks"], 1607.0,
                "{:?}",
                rec.metrics
            );
        }
    }
}

#[test]
fn a_wrong_token_is_refused_and_the_agent_keeps_serving() {
    let mut agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), &agent, "");
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "not-the-token-at-all").unwrap();
    let bad_set = format!("agent_token_file={}", bad.display());
    let o = run(&s, &dir.path().join("bad-out"), &[&bad_set]);
    assert_eq!(o.status.code(), Some(3));
    let r = Results::load(dir.path().join("bad-out/results.json")).unwrap();
    let err = r.runs[0].error.as_deref().unwrap_or("");
    assert!(err.contains("the token does not match"), "{err}");
    assert!(
        agent.log().contains("refused: wrong token"),
        "{}",
        agent.log()
    );
    assert!(agent.alive());
    let o = run(&s, &dir.path().join("good-out"), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn garbage_on_the_control_port_leaves_the_agent_serving() {
    let mut agent = Agent::start();
    for garbage in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0, 0, 0, 5, b'{', b'x', b'}', 0, 0][..],
        &u32::MAX.to_be_bytes()[..],
        &[0, 0, 0, 2, b'{', b'}'][..],
    ] {
        let mut c = TcpStream::connect(&agent.address).unwrap();
        c.write_all(garbage).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
    }
    assert!(agent.alive());
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), &agent, "");
    let o = run(&s, &dir.path().join("out"), &[]);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        agent.log()
    );
}

#[test]
fn a_client_killed_mid_run_leaves_the_agent_ready_and_a_second_is_told_busy() {
    let mut agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    // 400 kB at 200 blocks/s: long enough to be killed mid-run.
    let s = scenario(dir.path(), &agent, "");
    let mut slow = Command::new(exe())
        .arg("run")
        .arg(&s)
        .args(["--out"])
        .arg(dir.path().join("slow"))
        .args(["--no-report", "--set", "throttle_pps=200"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the agent is serving it.
    let t0 = Instant::now();
    while !agent.log().contains("127.0.0.1") && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let o = run(&s, &dir.path().join("busy"), &[]);
    assert_eq!(o.status.code(), Some(3));
    let r = Results::load(dir.path().join("busy/results.json")).unwrap();
    let err = r.runs[0].error.as_deref().unwrap_or("");
    assert!(err.contains("busy with another run"), "{err}");
    // A client slow to say hello still reads the refusal: the agent waits
    // for the hello before it answers and closes.
    let mut c = TcpStream::connect(&agent.address).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let hello = br#"{"type":"hello","protocol":1,"perfkit":"0","nonce":"00"}"#;
    c.write_all(&(hello.len() as u32).to_be_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let sent = c.write_all(hello);
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut reply = Vec::new();
    let read = c.read_to_end(&mut reply);
    assert!(
        sent.is_ok() && read.is_ok() && String::from_utf8_lossy(&reply).contains("\"busy\""),
        "sent {sent:?}, read {read:?}: {:?}",
        String::from_utf8_lossy(&reply)
    );
    slow.kill().unwrap();
    slow.wait().unwrap();
    // The agent notices within one poll and is free again.
    let t0 = Instant::now();
    loop {
        let o = run(&s, &dir.path().join("after"), &[]);
        if o.status.success() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the agent did not recover: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(agent.alive());
}

/// Open descriptors, threads and resident KiB of a process.
fn footprint(pid: u32) -> (usize, u64, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (fds, field("Threads:"), field("VmRSS:"))
}

#[test]
fn a_hundred_runs_leak_no_descriptor_thread_or_memory() {
    let agent = Agent::start();
    let pid = agent.child.id();
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), &agent, "");
    // One session first, so what is allocated once is allocated.
    let o = run(&s, &dir.path().join("warm"), &["input_size=20000"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_millis(300));
    let before = footprint(pid);
    let o = Command::new(exe())
        .arg("run")
        .arg(&s)
        .arg("--out")
        .arg(dir.path().join("many"))
        .args(["--no-report", "--quiet", "--set", "input_size=20000"])
        .args(["--set", "rcvbuf=8388608"])
        .args([
            "--set",
            "link=[\"tcp\",\"udp\"]",
            "--set",
            "seed=[1,2,3,4,5,6,7,8,9,10]",
        ])
        .args(["--set", "block_size=[50,100,150,200,249]"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = Results::load(dir.path().join("many/results.json")).unwrap();
    assert_eq!(r.runs.len(), 100);
    for x in &r.runs {
        assert!(
            x.integrity.ok,
            "{:?}: {:?} {:?}",
            x.config, x.error, x.link.counters
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = footprint(pid);
    assert_eq!(
        after.0, before.0,
        "descriptors before/after: {before:?} {after:?}"
    );
    assert_eq!(
        after.1, before.1,
        "threads before/after: {before:?} {after:?}"
    );
    assert!(
        after.2 < before.2 + 8 * 1024,
        "resident KiB grew from {} to {}",
        before.2,
        after.2
    );
    eprintln!("agent before 100 runs {before:?}, after {after:?} (fds, threads, RSS KiB)");
}

#[test]
fn a_client_waits_for_an_agent_finishing_its_previous_session() {
    use perfkit_harness::remote::client::Session;
    let agent = Agent::start();
    // The previous configuration's session, still open for a moment (its
    // end stopping after a failure, or its goodbye not yet read).
    let first = Session::open(&agent.address, TOKEN.as_bytes()).unwrap();
    let closing = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        first.close();
    });
    let second = Session::open(&agent.address, TOKEN.as_bytes());
    closing.join().unwrap();
    let second = second.unwrap_or_else(|e| panic!("{e:#}\n{}", agent.log()));
    // It was told busy first and asked again, rather than failing the run.
    assert!(agent.log().contains("busy with another run, refused"));
    second.close();
}

/// Connects to `address` and sends a hello frame's length, then its body a
/// byte every half second; returns how long until the agent closed the
/// connection (or answered), `None` if it had not after `give_up`.
fn trickle_hello(address: &str, give_up: Duration) -> Option<Duration> {
    let mut c = TcpStream::connect(address).unwrap();
    let body = br#"{"type":"hello","protocol":1,"perfkit":"0","nonce":"000000000000000000000000000000000000000000000000000000"}"#;
    let t0 = Instant::now();
    c.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 256];
    for byte in body {
        if t0.elapsed() > give_up {
            return None;
        }
        // Closed (a read of 0 or a reset), or answered (busy): let go.
        match c.read(&mut buf) {
            Ok(_) => return Some(t0.elapsed()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(t0.elapsed()),
        }
        if c.write_all(&[*byte]).is_err() {
            return Some(t0.elapsed());
        }
    }
    None
}

#[test]
fn a_client_trickling_its_hello_is_dropped_at_the_handshake_deadline() {
    use perfkit_harness::remote::client::Session;
    let agent = Agent::start();
    // The first takes the session slot; the second is on the busy path,
    // which reads the hello before it answers.
    let first = {
        let at = agent.address.clone();
        std::thread::spawn(move || trickle_hello(&at, Duration::from_secs(40)))
    };
    std::thread::sleep(Duration::from_millis(300));
    let second = {
        let at = agent.address.clone();
        std::thread::spawn(move || trickle_hello(&at, Duration::from_secs(40)))
    };
    for (who, t) in [("first", first), ("second", second)] {
        let t = t.join().unwrap();
        // 10 s for the whole hello, with room for a slow machine; before,
        // each byte restarted the wait and the slot was held for ever.
        assert!(
            t.is_some_and(|t| t < Duration::from_secs(25)),
            "the {who} trickling client held on for {t:?}\n{}",
            agent.log()
        );
    }
    // The slot is free again for a real client.
    let s = Session::open(&agent.address, TOKEN.as_bytes())
        .unwrap_or_else(|e| panic!("{e:#}\n{}", agent.log()));
    s.close();
    assert!(
        agent.log().contains("no whole message in 10 s"),
        "{}",
        agent.log()
    );
}
