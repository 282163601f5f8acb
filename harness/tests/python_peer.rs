//! perfkit against scripts/dttk-py, an independent pure-Python implementation
//! of the dttk wire profile written from the spec: each end talks to the
//! other byte-exact, both senders put identical bytes on the wire, the
//! Python receiver rejects garbage and truncated streams, and a scenario
//! sweeping the implementations at both ends of a pipe delivers every time.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;

use common::{exe, root};
use perfkit_report::model::Results;

const IMAGE: &str = "fixtures/test35k.jpg";
const SEND_PY: &str = "scripts/dttk-py/dttk_send.py";
const RECV_PY: &str = "scripts/dttk-py/dttk_recv.py";

fn image() -> Vec<u8> {
    std::fs::read(root().join(IMAGE)).unwrap()
}

fn python(script: &str) -> Command {
    let mut c = Command::new("python3");
    c.arg(script).current_dir(root());
    c
}

fn perfkit() -> Command {
    let mut c = Command::new(exe());
    c.current_dir(root());
    c
}

/// Runs `sender | receiver` and returns both outputs (stderr captured).
fn pipeline(mut sender: Command, mut receiver: Command) -> (Output, Output) {
    let mut tx = sender
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = receiver
        .stdin(Stdio::from(tx.stdout.take().unwrap()))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let tx = tx.wait_with_output().unwrap();
    (tx, rx)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Feeds `input` to `dttk_recv.py OUT` and returns its output.
fn python_recv(input: &[u8], out: &Path) -> Output {
    let mut rx = python(RECV_PY)
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The receiver may stop reading early; what it got is what counts.
    let _ = rx.stdin.take().unwrap().write_all(input);
    rx.wait_with_output().unwrap()
}

#[test]
fn python_sender_to_perfkit_recv_is_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jpg");
    let mut send = python(SEND_PY);
    send.arg(IMAGE);
    let mut recv = perfkit();
    recv.arg("recv").arg(&out);
    let (tx, rx) = pipeline(send, recv);
    assert!(tx.status.success(), "{}", stderr(&tx));
    assert!(rx.status.success(), "{}", stderr(&rx));
    assert_eq!(std::fs::read(&out).unwrap(), image());
    assert!(
        stderr(&tx).contains("tx transfer: T:0 blk:2780 by:138840 PPS:"),
        "{}",
        stderr(&tx)
    );
    // Repeats show up as duplicates; anything else means a wire error.
    let e = stderr(&rx);
    let line = e.lines().find(|l| l.starts_with("rx errors: ")).unwrap();
    for counter in line["rx errors: ".len()..].split_whitespace() {
        assert!(
            counter == "none" || counter.starts_with("duplicates:"),
            "perfkit saw errors in the Python sender's stream: {e}"
        );
    }
}

#[test]
fn perfkit_send_to_python_receiver_is_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jpg");
    let mut send = perfkit();
    send.args(["send", IMAGE]);
    let mut recv = python(RECV_PY);
    recv.arg(&out);
    let (tx, rx) = pipeline(send, recv);
    assert!(tx.status.success(), "{}", stderr(&tx));
    assert!(rx.status.success(), "{}", stderr(&rx));
    assert_eq!(std::fs::read(&out).unwrap(), image());
    let e = stderr(&rx);
    assert!(e.contains("rx transfer: T:0 blk:695 by:34710 PPS:"), "{e}");
    for clean in [
        "junk:0 ",
        "violations:0 ",
        "bad_length:0 ",
        "crc:0 ",
        "seq_gaps:0 ",
        "meta_conflict:0 ",
    ] {
        assert!(e.contains(clean), "expected {clean:?} in {e}");
    }
}

/// Framed stream of a sender for the test image with the given settings.
fn stream(mut cmd: Command, block_size: &str) -> Vec<u8> {
    let o = cmd
        .args([
            "--block-size",
            block_size,
            "--repeats",
            "3",
            "--start-meta",
            "8",
            "--meta-every",
            "50",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    o.stdout
}

#[test]
fn both_senders_put_identical_bytes_on_the_wire() {
    for bs in ["50", "249"] {
        let mut pk = perfkit();
        pk.args(["send", IMAGE]);
        let mut py = python(SEND_PY);
        py.arg(IMAGE);
        let a = stream(pk, bs);
        let b = stream(py, bs);
        assert!(!a.is_empty());
        if a != b {
            let at = a.iter().zip(&b).position(|(x, y)| x != y);
            panic!(
                "block size {bs}: perfkit {} bytes, Python {} bytes, first difference at {:?}",
                a.len(),
                b.len(),
                at
            );
        }
    }
}

#[test]
fn python_receiver_rejects_garbage_and_truncated_streams() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jpg");
    let good = stream(
        {
            let mut c = perfkit();
            c.args(["send", IMAGE]);
            c
        },
        "50",
    );
    // A deterministic mix of garbage: flags, escapes, overlong frames, bad
    // lengths, frames with good lengths but bad CRCs, and plain noise.
    let mut x: u32 = 0x1234_5678;
    let mut noise = Vec::new();
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push((x >> 24) as u8);
    }
    let mut crafted = vec![
        0xFF, 0xFE, 0xFF, 0x00, 0xFF, 0xFF, 0x06, 1, 2, 3, 4, 5, 6, 0xFF,
    ];
    crafted.extend(std::iter::once(0xFF).chain(std::iter::repeat_n(0x41, 2000)));
    crafted.extend([0xFF, 0xFE, 0x01, 0xFF, 0xFE]);
    let mut corrupted = good.clone();
    for i in (7..corrupted.len()).step_by(29) {
        corrupted[i] ^= 0x10;
    }
    let cases: [(&str, Vec<u8>); 6] = [
        ("empty", Vec::new()),
        ("noise", noise.clone()),
        ("crafted", crafted),
        ("truncated", good[..good.len() / 2].to_vec()),
        (
            "without END and last blocks",
            good[..good.len() - 4000].to_vec(),
        ),
        ("corrupted", corrupted),
    ];
    for (what, input) in cases {
        let o = python_recv(&input, &out);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{what}: {e}");
        assert!(!out.exists(), "{what}: nothing may be written");
        assert!(!e.contains("Traceback"), "{what}: {e}");
        assert!(e.contains("not written"), "{what}: {e}");
    }
    // Noise before, between and after does not stop a good stream.
    let mut noisy = noise[..5000].to_vec();
    noisy.retain(|&b| b != 0xFF);
    noisy.extend_from_slice(&good);
    noisy.extend_from_slice(&noise[..5000]);
    let o = python_recv(&noisy, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), image());
    assert!(stderr(&o).contains("junk:"), "{}", stderr(&o));
    // A conflicting META (another file) ends in error.
    std::fs::remove_file(&out).unwrap();
    let other = dir.path().join("other.bin");
    std::fs::write(&other, vec![7u8; 2000]).unwrap();
    let o = perfkit()
        .arg("send")
        .arg(&other)
        .args(["--repeats", "0", "--quiet"])
        .output()
        .unwrap();
    let mut mixed = o.stdout.clone();
    mixed.truncate(mixed.len() / 2);
    mixed.extend_from_slice(&good);
    let o = python_recv(&mixed, &out);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("meta_conflict:1"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn scenario_sweeping_both_implementations_delivers_every_combination() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("peers.toml");
    let image = root().join(IMAGE);
    let send_py = root().join(SEND_PY);
    let recv_py = root().join(RECV_PY);
    std::fs::write(
        &s,
        format!(
            "name = \"python-peer\"\ninput = {:?}\n[link]\nkind = \"pipe\"\n\
             [transfer]\nblock_size = 50\nrepeats = 3\ntimeout_s = 60\n[sweep]\n\
             sender_cmd = [\"perfkit\", [\"python3\", {:?}, \"{{input}}\", \"--block-size\", \"{{block_size}}\", \"--repeats\", \"{{repeats}}\", \"--quiet\"]]\n\
             receiver_cmd = [\"perfkit\", [\"python3\", {:?}, \"{{output}}\", \"--quiet\"]]\n",
            image.display().to_string(),
            send_py.display().to_string(),
            recv_py.display().to_string(),
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = perfkit()
        .arg("run")
        .arg(&s)
        .arg("--out")
        .arg(&out)
        .args(["--no-report", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = Results::load(out.join("results.json")).unwrap();
    assert_eq!(r.runs.len(), 4);
    let mut combos = std::collections::BTreeSet::new();
    for rec in &r.runs {
        let ends = (
            rec.config.get("sender_cmd").map(|v| v.to_string()),
            rec.config.get("receiver_cmd").map(|v| v.to_string()),
        );
        assert!(rec.integrity.ok, "{ends:?}: {:?}", rec.integrity);
        assert_eq!(rec.rx.bytes, 34_710, "{ends:?}");
        assert_eq!(rec.tx.blocks, 2780, "{ends:?}");
        combos.insert(ends);
    }
    assert_eq!(combos.len(), 4, "{combos:?}");
}
