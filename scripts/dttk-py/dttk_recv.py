#!/usr/bin/env python3
"""dttk receiver: reads a framed dttk transfer on stdin and writes OUT once
every block is present and the SHA-256 from META matches.

Independent implementation of the dttk wire profile, written from the
specification (docs in README.md next to this file). Standard library only.

OUT is written atomically (a temporary file in the same folder, renamed) and
only when the file is complete and verified; nothing partial or corrupted is
ever left there. The stats line (unique blocks and bytes stored) and the
counters go to stderr. Exit 0 when verified, 3 otherwise.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dttk_wire as w  # noqa: E402


class Receiver:
    """Link-message handling on top of the deframer (spec sections 1-3)."""

    def __init__(self, chn):
        self.data_chn = chn
        self.ctrl_chn = w.CONTROL | chn
        self.deframer = w.Deframer()
        self.meta = None
        self.blocks = {}
        self.stored_bytes = 0
        self.expect_seq = None
        self.c = dict(
            crc=0,
            seq_gaps=0,
            other_channel=0,
            meta=0,
            meta_short=0,
            meta_invalid=0,
            meta_conflict=0,
            control_unknown=0,
            dup_blocks=0,
            bad_blocks=0,
            end=0,
        )
        self.state = None  # None running, "complete", "end", "failed"
        self.why = ""
        self.data_bytes = None

    # -- messages ---------------------------------------------------------
    def message(self, msg):
        c = self.c
        body = msg[:-2]
        if w.crc16(body) != (msg[-2] << 8 | msg[-1]):
            c["crc"] += 1
            return
        seq = msg[1]
        if self.expect_seq is not None and seq != self.expect_seq:
            c["seq_gaps"] += 1
        self.expect_seq = (seq + 1) & 0xFF
        chn = msg[2]
        if chn == self.data_chn:
            self.data(msg[3] << 8 | msg[4], body[5:])
        elif chn == self.ctrl_chn:
            self.control(body[5:])
        else:
            c["other_channel"] += 1

    def control(self, payload):
        c = self.c
        if not payload:
            c["control_unknown"] += 1
            return
        kind = payload[0]
        if kind == w.T_META:
            c["meta"] += 1
            if len(payload) < w.META_MIN:
                c["meta_short"] += 1
                return
            if self.meta is None:
                m = w.Meta(payload)
                if not m.valid():
                    c["meta_invalid"] += 1
                    return
                self.meta = m
                # Blocks that came before META: keep only those that fit it.
                for bn in list(self.blocks):
                    if m.block_len(bn) != len(self.blocks[bn]):
                        self.stored_bytes -= len(self.blocks.pop(bn))
                        c["bad_blocks"] += 1
                self.check_complete()
            elif payload != self.meta.raw:
                c["meta_conflict"] += 1
                self.fail("a different META arrived (a different file)")
        elif kind == w.T_END and len(payload) == 1:
            c["end"] += 1
            if self.state is None:
                self.state = "end"
                self.why = "END arrived with %s block(s) missing" % self.missing_text()
        else:
            c["control_unknown"] += 1

    def data(self, blockno, payload):
        if blockno in self.blocks:
            self.c["dup_blocks"] += 1
            return
        m = self.meta
        if m is not None and m.block_len(blockno) != len(payload):
            self.c["bad_blocks"] += 1
            return
        if m is None and not payload:
            self.c["bad_blocks"] += 1
            return
        self.blocks[blockno] = bytes(payload)
        self.stored_bytes += len(payload)
        if m is not None:
            self.check_complete()

    # -- completion -------------------------------------------------------
    def missing(self):
        if self.meta is None:
            return None
        return [i for i in range(self.meta.count) if i not in self.blocks]

    def missing_text(self):
        m = self.missing()
        return "all (no META)" if m is None else str(len(m))

    def check_complete(self):
        m = self.meta
        if self.state is not None or len(self.blocks) != m.count:
            return
        data = b"".join(self.blocks[i] for i in range(m.count))
        if w.sha256(data) != m.sha256:
            self.fail("SHA-256 of the received bytes does not match META")
            return
        self.data_bytes = data
        self.state = "complete"

    def fail(self, why):
        if self.state in (None, "end"):
            self.state = "failed"
            self.why = why

    def feed(self, chunk):
        for msg in self.deframer.feed(chunk):
            self.message(msg)
            if self.state is not None:
                return


def write_atomic(path, data):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".dttk-recv-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main(argv):
    p = argparse.ArgumentParser(description="Receive a framed dttk transfer on stdin into OUT.")
    p.add_argument("out")
    p.add_argument("--channel", type=w.channel_arg, default=0, help="data channel 0..=127")
    p.add_argument("--chunk", type=int, default=65536, help="largest read, bytes")
    p.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    a = p.parse_args(argv)

    rx = Receiver(a.channel)
    fd = sys.stdin.buffer.fileno()
    chunk = max(1, a.chunk)
    wire = 0
    t0 = None
    t_done = None
    eof = False
    try:
        while rx.state is None:
            buf = os.read(fd, chunk)
            if not buf:
                eof = True
                break
            if t0 is None:
                t0 = time.perf_counter()
            wire += len(buf)
            rx.feed(buf)
        t_done = time.perf_counter()
        # Complete: let the sender finish (the rest is repeats and END).
        if rx.state == "complete":
            while True:
                buf = os.read(fd, chunk)
                if not buf:
                    break
                wire += len(buf)
    except KeyboardInterrupt:
        rx.fail("interrupted")
    except OSError as e:
        rx.fail("read error: %s" % e)
    if t_done is None:
        t_done = time.perf_counter()
    secs = (t_done - t0) if t0 is not None else 0.0

    ok = rx.state == "complete"
    if ok:
        try:
            write_atomic(a.out, rx.data_bytes)
        except OSError as e:
            print("dttk_recv: error: cannot write %s: %s" % (a.out, e), file=sys.stderr)
            ok = False
    elif rx.state is None:
        rx.why = "the stream ended before the transfer completed (%s block(s) missing)" % rx.missing_text()

    d = rx.deframer
    counters = dict(
        wire_bytes=wire,
        frames=d.frames,
        junk=d.junk,
        violations=d.violations,
        bad_escapes=d.bad_escapes,
        overflows=d.overflows,
        bad_length=d.bad_length,
        truncated=1 if (eof and d.pending()) else 0,
    )
    counters.update(rx.c)
    if not a.quiet:
        print("rx transfer: " + w.stats_line(secs, len(rx.blocks), rx.stored_bytes), file=sys.stderr)
        print("rx counters: " + " ".join("%s:%d" % kv for kv in counters.items()), file=sys.stderr)
    if ok:
        if not a.quiet:
            print(
                "dttk_recv: %s complete, sha256 %s verified" % (a.out, rx.meta.sha256.hex()[:16]),
                file=sys.stderr,
            )
        return 0
    print("dttk_recv: error: %s; %s not written" % (rx.why or "transfer failed", a.out), file=sys.stderr)
    return 3


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SystemExit:
        raise
    except BaseException as e:  # never a traceback on odd input: a clean failure
        print("dttk_recv: error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(3)
