//! A second host on this machine: a network namespace joined to this one
//! by a veth pair (optionally rate-limited by a `tbf` qdisc), with a
//! `perfkit agent` running inside. A scenario asks for it with
//! `[hosts] receiver = "netns"` (or `sender`); the namespace lives as long
//! as the `perfkit run` that made it, and is removed when it ends, fails or
//! is interrupted. One killed with SIGKILL leaves it behind; the next run
//! removes namespaces whose process is gone.
//!
//! Needs root (CAP_NET_ADMIN) and iproute2.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context};

/// The namespace this process made, if any.
static TOPOLOGY: Mutex<Option<Netns>> = Mutex::new(None);

const PREFIX: &str = "perfkit-";

/// A namespace with an agent inside.
#[derive(Debug)]
struct Netns {
    name: String,
    rate_mbit: f64,
    mtu: u32,
    agent: Child,
    address: String,
    token: Vec<u8>,
    _token_dir: tempfile::TempDir,
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.agent.kill();
        let _ = self.agent.wait();
        // Deleting the namespace deletes its veth end, and so the pair.
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn tc(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("tc")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run `tc` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "`tc {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Removes namespaces left by perfkit processes that no longer exist.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// The agent in this run's namespace, made on first use (or remade for a
/// different rate or MTU): its control address and token.
pub fn agent(rate_mbit: f64, mtu: u32) -> anyhow::Result<(String, Vec<u8>)> {
    let mut slot = TOPOLOGY.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = slot.as_mut() {
        if n.rate_mbit == rate_mbit && n.mtu == mtu && n.agent.try_wait()?.is_none() {
            return Ok((n.address.clone(), n.token.clone()));
        }
    }
    // The old one goes first: the names are this process's.
    *slot = None;
    let n = make(rate_mbit, mtu)?;
    let r = (n.address.clone(), n.token.clone());
    *slot = Some(n);
    Ok(r)
}

/// The namespace this run made and its agent's IP, if it made one.
pub fn current() -> Option<(String, String)> {
    let slot = TOPOLOGY.lock().unwrap_or_else(|p| p.into_inner());
    slot.as_ref().map(|n| {
        let ip = n
            .address
            .rsplit_once(':')
            .map_or(n.address.as_str(), |(ip, _)| ip);
        (n.name.clone(), ip.to_owned())
    })
}

/// Removes this run's namespace, if it made one.
pub fn teardown() {
    let mut slot = TOPOLOGY.lock().unwrap_or_else(|p| p.into_inner());
    *slot = None;
}

fn make(rate_mbit: f64, mtu: u32) -> anyhow::Result<Netns> {
    remove_stale();
    let pid = std::process::id();
    let name = format!("{PREFIX}{pid}");
    // Interface names are at most 15 bytes.
    let (here, there) = (format!("pka{pid}"), format!("pkb{pid}"));
    // A /30 of its own per process, in 10.211.0.0/16.
    let net = (pid % 16_000) * 4;
    let (a, b) = (
        format!("10.211.{}.{}", net / 256, net % 256 + 1),
        format!("10.211.{}.{}", net / 256, net % 256 + 2),
    );
    let _ = ip(&["netns", "del", &name]);
    ip(&["netns", "add", &name]).context(
        "cannot create a network namespace (root, or CAP_NET_ADMIN, is needed for `netns` hosts)",
    )?;
    // From here a failure removes what was made.
    let guard = Undo(&name, &here);
    let mtu_s = mtu.to_string();
    ip(&[
        "link", "add", &here, "mtu", &mtu_s, "type", "veth", "peer", "name", &there, "mtu", &mtu_s,
    ])?;
    ip(&["link", "set", &there, "netns", &name])?;
    ip(&["addr", "add", &format!("{a}/30"), "dev", &here])?;
    ip(&["link", "set", &here, "up"])?;
    ip(&[
        "-n",
        &name,
        "addr",
        "add",
        &format!("{b}/30"),
        "dev",
        &there,
    ])?;
    ip(&["-n", &name, "link", "set", &there, "up"])?;
    ip(&["-n", &name, "link", "set", "lo", "up"])?;
    if rate_mbit > 0.0 {
        let rate = format!("{rate_mbit}mbit");
        // A burst of about 1 ms at the rate (at least a few frames), and a
        // queue of 50 ms: the shaper's own defaults for a host interface.
        let burst = format!(
            "{}",
            ((rate_mbit * 1e6 / 8.0 / 1000.0) as u64).max(32 * 1024)
        );
        for args in [
            vec![
                "qdisc", "add", "dev", &here, "root", "tbf", "rate", &rate, "burst", &burst,
                "latency", "50ms",
            ],
            vec![
                "-n", &name, "qdisc", "add", "dev", &there, "root", "tbf", "rate", &rate, "burst",
                &burst, "latency", "50ms",
            ],
        ] {
            tc(&args).context("cannot shape the veth pair with tbf")?;
        }
    }
    let token_dir = tempfile::tempdir()?;
    let token_hex = super::proto::nonce();
    let token_file = token_dir.path().join("token");
    std::fs::write(&token_file, &token_hex)?;
    let log = token_dir.path().join("agent.log");
    let exe = std::env::current_exe().context("cannot find the perfkit executable")?;
    let mut agent = Command::new("ip")
        .args(["netns", "exec", &name])
        .arg(exe)
        .args(["agent", "--listen", &format!("{b}:0"), "--token-file"])
        .arg(&token_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("cannot start the agent in the namespace")?;
    let mut line = String::new();
    BufReader::new(
        agent
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no agent stdout"))?,
    )
    .read_line(&mut line)?;
    let address = line
        .trim()
        .strip_prefix("perfkit agent: listening on ")
        .ok_or_else(|| {
            let why = std::fs::read_to_string(&log).unwrap_or_default();
            anyhow!("the agent in {name} did not start: {}", why.trim())
        })?
        .to_owned();
    std::mem::forget(guard);
    Ok(Netns {
        name,
        rate_mbit,
        mtu,
        agent,
        address,
        token: token_hex.into_bytes(),
        _token_dir: token_dir,
    })
}

/// Deletes the namespace and this side's veth end unless forgotten.
struct Undo<'a>(&'a str, &'a str);

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", self.0]);
        let _ = ip(&["link", "del", self.1]);
    }
}

/// Removes the namespace when the run that may have made one ends,
/// however it ends.
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        teardown();
    }
}
