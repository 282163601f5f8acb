//! What can be known before running a configuration: files to find and
//! values the stack would refuse. `perfkit check` and `perfkit run` (before
//! the first configuration) call this through [`super::preflight`], so a
//! value that would fail every run is a bad-input error (exit 2) naming the
//! file, line and key, never a run failure (exit 3) minutes later.

use perfkit_stack::dttk::wire::{META_FIXED_LEN, OVERHEAD};
use perfkit_stack::error::ErrorKind;

use super::Refusal;
use crate::scenario::Scenario;
use crate::spec::{LinkSpec, PipeEnd, RunSpec, TransferSpec};

/// The sender settings, as the stack validates them.
pub fn sender(t: &TransferSpec) -> Result<(), Refusal> {
    t.sender_config().map(drop).map_err(|e| {
        match e
            .downcast_ref::<perfkit_stack::error::Error>()
            .map(|x| x.kind())
        {
            Some(ErrorKind::Config { key, reason }) => {
                Refusal::new(format!("transfer.{key}"), *reason)
            }
            _ => Refusal::new("transfer", format!("{e:#}")),
        }
    })
}

/// The input file: found, and small enough for the wire profile. Returns
/// the name its META carries.
pub fn input(s: &Scenario, t: &TransferSpec) -> Result<Vec<u8>, Refusal> {
    let block = u64::from(t.block_size.max(1));
    if t.input_size > 0 {
        let most = super::input::max_file_size(block);
        if t.input_size > most {
            return Err(Refusal::new(
                "transfer.input_size",
                format!(
                    "{} bytes is more than the wire profile carries with {block}-byte blocks \
                     ({most} bytes: u16 block numbers)",
                    t.input_size
                ),
            ));
        }
        return Ok(format!("input-{}.bin", t.input_size).into_bytes());
    }
    let (path, len) = match super::input::source(s) {
        Ok(super::input::Source::File(path)) => {
            let meta = std::fs::metadata(&path).map_err(|e| {
                Refusal::new("input", format!("cannot read {}: {e}", path.display()))
            })?;
            if !meta.is_file() {
                let what = if meta.is_dir() {
                    "a folder"
                } else {
                    "not a regular file"
                };
                return Err(Refusal::new(
                    "input",
                    format!("{} is {what}: name the file to send", path.display()),
                ));
            }
            (path, meta.len())
        }
        Ok(super::input::Source::Shipped(bytes)) => (s.input.clone(), bytes.len() as u64),
        Err(e) => return Err(Refusal::new("input", strip(s, &e))),
    };
    super::input::check_size(&path, len as usize, block)
        .map_err(|e| Refusal::new("input", e.to_string()))?;
    Ok(super::endpoint::file_name(&path))
}

/// A transfer configuration: sender settings, input, and the link.
pub fn transfer(s: &Scenario, spec: &RunSpec) -> Result<(), Refusal> {
    let t = &spec.transfer;
    sender(t)?;
    let name = input(s, t)?;
    match &spec.link {
        LinkSpec::Loopback { mtu, .. } => {
            // A loopback keeps packet boundaries: every message must fit.
            let largest = (usize::from(t.block_size) + OVERHEAD)
                .max(META_FIXED_LEN + name.len() + 1 + OVERHEAD);
            if *mtu < largest {
                return Err(Refusal::new(
                    "link.mtu",
                    format!(
                        "{mtu} is below the largest message this transfer sends ({largest} bytes: \
                         META naming the file, or a {}-byte block, plus {OVERHEAD} bytes of header and CRC)",
                        t.block_size
                    ),
                ));
            }
        }
        LinkSpec::Uart {
            tx_profile,
            rx_profile,
            ..
        } => {
            // One profile for both ends is what `profile` sets.
            let keys = match tx_profile == rx_profile {
                true => ["profile", "profile"],
                false => ["tx_profile", "rx_profile"],
            };
            for (name, key) in [(tx_profile, keys[0]), (rx_profile, keys[1])] {
                super::uart::load_profile(s, name)
                    .map_err(|e| Refusal::new(format!("link.{key}"), e.to_string()))?;
            }
        }
        LinkSpec::Pipe {
            sender, receiver, ..
        } => {
            for (end, key) in [(sender, "link.sender_cmd"), (receiver, "link.receiver_cmd")] {
                if let PipeEnd::Command(argv) = end {
                    program(&argv[0]).map_err(|m| Refusal::new(key, m))?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// An agent's token, when an end runs on one: read as the run will read it
/// (`[hosts] token_file`, else `PERFKIT_AGENT_TOKEN`) and long enough.
/// Found missing only by the run, it failed every run, each with a record
/// of a run that never started.
pub fn hosts(spec: &RunSpec) -> Result<(), Refusal> {
    use crate::spec::Host;
    let h = &spec.hosts;
    if !matches!(h.sender, Host::Agent(_)) && !matches!(h.receiver, Host::Agent(_)) {
        return Ok(());
    }
    crate::remote::proto::load_token(h.token_file.as_deref().map(std::path::Path::new))
        .map(drop)
        .map_err(|e| Refusal::new("hosts.token_file", format!("{e:#}")))
}

/// An external pipe end's program: found the way the run will start it
/// (a name on PATH, or a path from the current folder), so a typo is a
/// bad-input error before the first run rather than a failed run.
fn program(name: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    // A placeholder is filled in per run; nothing to check yet.
    if name.contains('{') {
        return Ok(());
    }
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        return match runnable(std::path::Path::new(name)) {
            true => Ok(()),
            false => Err(format!(
                "program `{name}` is not an executable file (relative paths start at the current folder)"
            )),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    match std::env::split_paths(&path).any(|dir| runnable(&dir.join(name))) {
        true => Ok(()),
        false => Err(format!("program `{name}` is not found on PATH")),
    }
}

/// An error message without the `FILE: key `K`: ` prefix the caller adds again.
pub fn strip(s: &Scenario, e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let prefix = format!("{}: ", s.path.display());
    let rest = text.strip_prefix(&prefix).unwrap_or(&text);
    match rest.strip_prefix("key `") {
        Some(r) => r.split_once("`: ").map_or(rest, |(_, m)| m).to_owned(),
        None => rest.to_owned(),
    }
}
