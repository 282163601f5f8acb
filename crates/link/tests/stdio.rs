//! `PipeLink::stdio()`, as `perfkit send` / `perfkit recv` use it: this test
//! binary starts itself as a child that echoes its stdin to its stdout
//! through the link, and checks the echo is byte-exact and that the child
//! sees end of file when its stdin closes.

use std::process::{Command, Stdio};
use std::time::Duration;

use perfkit_link::{ByteLink, ChildLink, PipeLink, ReadOutcome};

const CHILD: &str = "PERFKIT_LINK_STDIO_CHILD";

fn child() -> i32 {
    let mut link = PipeLink::stdio().expect("stdio link");
    let mut buf = vec![0u8; 4096];
    loop {
        match link.read(&mut buf, Duration::from_secs(20)) {
            Ok(ReadOutcome::Data(n)) => link.write(&buf[..n]).expect("echo"),
            Ok(ReadOutcome::Eof) => {
                eprintln!("child: EOF after {} bytes", link.stats().bytes_in);
                return 0;
            }
            Ok(ReadOutcome::Timeout) => return 3,
            Err(e) => {
                eprintln!("child: {e}");
                return 4;
            }
        }
    }
}

fn parent() {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD, "1").stderr(Stdio::piped());
    let mut link = ChildLink::spawn_command(cmd).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    for chunk in data.chunks(777) {
        link.write(chunk).unwrap();
        while let ReadOutcome::Data(n) = link.read(&mut buf, Duration::ZERO).unwrap() {
            got.extend_from_slice(&buf[..n]);
        }
    }
    link.close_stdin();
    loop {
        match link.read(&mut buf, Duration::from_secs(20)).unwrap() {
            ReadOutcome::Data(n) => got.extend_from_slice(&buf[..n]),
            ReadOutcome::Eof => break,
            ReadOutcome::Timeout => panic!("child went silent"),
        }
    }
    let status = link
        .wait_timeout(Duration::from_secs(20))
        .unwrap()
        .expect("child exits");
    let mut err = String::new();
    std::io::Read::read_to_string(link.child().stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "child failed: {status} {err}");
    assert!(err.contains("EOF after 200000 bytes"), "{err}");
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echo through stdin/stdout differs");
    println!("test stdio_echo ... ok");
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        std::process::exit(child());
    }
    parent();
}
