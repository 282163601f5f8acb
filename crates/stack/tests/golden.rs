//! Golden vectors: the stack must reproduce, byte for byte, the messages in
//! `fixtures/wire/` that `fixtures/wire/make_golden.py` builds from the spec.

use std::path::PathBuf;

use perfkit_stack::wire::{self, Control, EndRepr, Packet, Repr};
use perfkit_stack::{
    Deframer, Event, FileSource, Framing, MemorySink, Poll, Receiver, Sender, SenderConfig,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn hex(name: &str) -> Vec<u8> {
    let path = fixtures().join("wire").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .map(|h| u8::from_str_radix(h, 16).unwrap_or_else(|e| panic!("{name}: {h}: {e}")))
        .collect()
}

/// The first nine messages of the reference sender over the test image.
fn sender_messages() -> Vec<Vec<u8>> {
    let src = FileSource::open(fixtures().join("test35k.jpg")).unwrap();
    let mut tx = Sender::new(src, SenderConfig::default()).unwrap();
    let mut out = [0u8; 256];
    (0..9)
        .map(|_| match tx.poll(0, &mut out).unwrap() {
            Poll::Message(n) => out[..n].to_vec(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn crc_check_value() {
    assert_eq!(wire::crc16(b"123456789"), 0xE5CC);
}

#[test]
fn sender_meta_and_first_block_match_the_vectors() {
    let msgs = sender_messages();
    assert_eq!(msgs[0], hex("meta.hex"));
    // Ticks 1..8 are META too (START_META = 8), with increasing seqno.
    for (i, m) in msgs.iter().enumerate().take(8) {
        let p = Packet::new_checked(&m[..]).unwrap();
        assert_eq!(p.seqno(), i as u8);
        assert!(matches!(Control::parse(p.payload()), Control::Meta(_)));
    }
    assert_eq!(msgs[8], hex("data0.hex"));
}

#[test]
fn last_block_and_end_match_the_vectors() {
    let image = std::fs::read(fixtures().join("test35k.jpg")).unwrap();
    let mut out = [0u8; 256];
    let n = wire::build(&mut out, 0x2A, 0x05, 694, 10, |p| {
        p.copy_from_slice(&image[34700..]);
        Ok(())
    })
    .unwrap();
    assert_eq!(out[..n], hex("data_last.hex")[..]);
    let n = wire::build(&mut out, 0xFF, 0x80, 0, 1, |p| EndRepr.emit(p)).unwrap();
    assert_eq!(out[..n], hex("end.hex")[..]);
}

#[test]
fn framing_matches_the_vectors() {
    for stem in ["meta", "data0", "data_last", "end"] {
        let msg = hex(&format!("{stem}.hex"));
        let mut out = [0u8; 600];
        let n = Framing::Dttk.encode(&msg, &mut out).unwrap();
        assert_eq!(
            out[..n],
            hex(&format!("{stem}.dttk.hex"))[..],
            "{stem} dttk"
        );
        let n = Framing::Cobs.encode(&msg, &mut out).unwrap();
        assert_eq!(
            out[..n],
            hex(&format!("{stem}.cobs.hex"))[..],
            "{stem} cobs"
        );
    }
}

#[test]
fn escaping_of_ff_and_fe() {
    // data0 starts ff d8 ff e0 and end carries 0xff twice; every 0xff/0xfe
    // inside a frame must be escaped.
    for stem in ["data0", "end"] {
        let framed = hex(&format!("{stem}.dttk.hex"));
        let inner = &framed[1..framed.len() - 1];
        assert!(!inner.contains(&0xFF), "{stem}");
        assert!(inner.windows(2).any(|w| w == [0xFE, 0xFD]), "{stem}");
    }
    let mut out = [0u8; 16];
    let n = Framing::Dttk.encode(&[0xFE, 0xFF], &mut out).unwrap();
    assert_eq!(&out[..n], &[0xFF, 0xFE, 0xFE, 0xFE, 0xFD, 0xFF]);
}

fn parse_all(stream: &[u8], framing: Framing, cut: &[usize]) -> Vec<Vec<u8>> {
    let mut d: Deframer = Deframer::new(framing);
    let mut got = Vec::new();
    let mut start = 0;
    for &c in cut.iter().chain(std::iter::once(&stream.len())) {
        d.push(&stream[start..c], |f| got.push(f.to_vec()));
        start = c;
    }
    got
}

#[test]
fn decoding_a_stream_cut_at_every_byte_boundary() {
    let stems = ["meta", "data0", "data_last", "end"];
    let msgs: Vec<Vec<u8>> = stems.iter().map(|s| hex(&format!("{s}.hex"))).collect();
    for (framing, ext) in [(Framing::Dttk, "dttk"), (Framing::Cobs, "cobs")] {
        let stream: Vec<u8> = stems
            .iter()
            .flat_map(|s| hex(&format!("{s}.{ext}.hex")))
            .collect();
        // One cut at every position.
        for cut in 0..=stream.len() {
            assert_eq!(
                parse_all(&stream, framing, &[cut]),
                msgs,
                "{ext} cut at {cut}"
            );
        }
        // Byte by byte.
        let every: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(
            parse_all(&stream, framing, &every),
            msgs,
            "{ext} byte by byte"
        );
    }
}

#[test]
fn receiver_understands_the_vectors() {
    let mut rx: Receiver<_, 128> =
        Receiver::new(0, MemorySink::new(vec![0u8; 40_000]), Framing::Dttk);
    let ev = rx.on_message(&hex("meta.hex"), 0);
    assert_eq!(
        ev,
        Event::Meta {
            blocks: 695,
            size: 34710
        }
    );
    let m = rx.meta().unwrap();
    assert_eq!(m.name, b"test35k.jpg");
    let mut events = Vec::new();
    rx.on_bytes(&hex("data0.dttk.hex"), 1, &mut |e| events.push(e));
    rx.on_bytes(&hex("end.dttk.hex"), 2, &mut |e| events.push(e));
    assert_eq!(
        events,
        [
            Event::Block {
                blockno: 0,
                len: 50
            },
            Event::End { missing: 694 }
        ]
    );
    let r = Repr::parse(&Packet::new_checked(&hex("data_last.hex")[..]).unwrap()).unwrap();
    assert_eq!(
        (r.seqno, r.chn, r.blockno, r.payload_len),
        (0x2A, 5, 694, 10)
    );
    // The test35k.jpg vectors' seqno jumped 0 -> 8 -> 0xff: two gaps.
    assert_eq!(rx.counters().link.seq_gaps, 2);
}
