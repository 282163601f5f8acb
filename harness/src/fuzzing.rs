//! Entry points for the fuzz targets in `fuzz/` (not a user API): the
//! scenario parser with `--set`, and the agent's control protocol. Each
//! returns normally for every input; a panic is the finding.

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;

use crate::remote::{agent, proto};
use crate::scenario::Scenario;

/// Separates the scenario text from the `--set` assignments in a fuzz
/// input: `TEXT\n--set\nK=V\n--set\nK=V`.
pub const SET_MARK: &str = "\n--set\n";

/// Parses fuzz input as a scenario file plus `--set` assignments, the way
/// `perfkit run` and `perfkit check` load one, and checks what a loaded
/// scenario promises: errors name the file, sweeps stay within the cap,
/// and every configuration builds its run specification or is refused up
/// front by the preflight.
pub fn scenario(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split(SET_MARK);
    let body = parts.next().unwrap_or_default();
    let path = Path::new("fuzz.toml");
    let mut s = match Scenario::parse(path, body) {
        Ok(s) => s,
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.toml"), "unanchored: {e}");
            return;
        }
    };
    let mut changed = false;
    for assignment in parts {
        changed |= s.set(assignment).is_ok();
    }
    if changed && s.recheck().is_err() {
        return;
    }
    let configs = s.configs();
    assert!(
        !configs.is_empty(),
        "a loaded scenario has no configuration"
    );
    assert!(s.swept().len() <= s.sweep.len());
    // The preflight is what `check` runs; bounded here so one input stays
    // quick (each configuration is checked the same way).
    if configs.len() <= 64 {
        let _ = crate::kinds::preflight(&s);
    }
    let swept = s.swept();
    for c in configs.iter().take(64) {
        let _ = c.recorded(&s.kind, &swept);
    }
}

/// The token both ends of a fuzzed agent session share.
const TOKEN: &[u8] = b"fuzzing-token-0123456789";

/// Feeds fuzz input to the agent's control protocol. The first byte picks
/// where the bytes arrive: even, straight into a real session on a real
/// connection before authentication (what anyone who can reach the port
/// can send); odd, as frames after the handshake, each decoded as a control
/// message and a set-up's link settings checked (what an authenticated
/// client sends, without opening the links it names).
pub fn agent_control(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        unauthenticated_session(rest);
    } else {
        authenticated_messages(rest);
    }
}

fn unauthenticated_session(bytes: &[u8]) {
    let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
        return;
    };
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let Ok(mut client) = TcpStream::connect(addr) else {
        return;
    };
    let Ok((server, _)) = listener.accept() else {
        return;
    };
    let served = std::thread::spawn(move || {
        let mut conn = proto::Conn::new(server);
        let _ = agent::session(&mut conn, TOKEN);
    });
    let _ = client.write_all(bytes);
    let _ = client.shutdown(Shutdown::Write);
    if let Err(panic) = served.join() {
        std::panic::resume_unwind(panic);
    }
}

fn authenticated_messages(mut bytes: &[u8]) {
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let body = &bytes[4..bytes.len().min(4 + len)];
        bytes = &bytes[4 + body.len()..];
        if len > proto::MAX_MESSAGE {
            return;
        }
        let Ok(msg) = serde_json::from_slice::<proto::Msg>(body) else {
            continue;
        };
        if let proto::Msg::Setup(setup) = msg {
            if let proto::Work::Transfer { link, settings, .. } = &setup.work {
                if let Some(kind) = perfkit_link::link_kind(link) {
                    let _ = kind.check(settings);
                }
            }
        }
    }
}
