#!/usr/bin/env python3
"""dttk sender: writes FILE to stdout as a framed dttk transfer.

Independent implementation of the dttk wire profile, written from the
specification (docs in README.md next to this file). Standard library only.

Schedule (spec section 4): ticks t = 0, 1, 2, ...; on tick t a META goes out
if t < START_META or t % META_EVERY_N == 0, otherwise the next data message;
every block is sent 1 + NUM_REPEATS times in a row; END follows the last data
message. Every message gets the next seqno (starting at 0, modulo 256).

The stats line `T:.. blk:.. by:.. PPS:.. BPS:..` (data messages and payload
bytes sent) goes to stderr. Exit 0 when sent, 2 on bad input.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dttk_wire as w  # noqa: E402


def positive_block(s):
    v = int(s)
    if not 1 <= v <= w.MAX_PAYLOAD:
        raise argparse.ArgumentTypeError("block size must be 1..=%d" % w.MAX_PAYLOAD)
    return v


def non_negative(s):
    v = int(s)
    if v < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return v


def parse_args(argv):
    p = argparse.ArgumentParser(description="Send FILE as a framed dttk transfer on stdout.")
    p.add_argument("file")
    p.add_argument("--block-size", type=positive_block, default=50, help="payload bytes per data message (1..=249)")
    p.add_argument("--start-meta", type=non_negative, default=8, help="META on the first N ticks")
    p.add_argument("--meta-every", type=non_negative, default=50, help="META on every tick t %% N == 0 (0: none)")
    p.add_argument("--repeats", type=non_negative, default=3, help="extra copies of every block")
    p.add_argument("--throttle-pps", type=float, default=0.0, help="packets per second, 0 = unthrottled")
    p.add_argument("--channel", type=w.channel_arg, default=0, help="data channel 0..=127")
    p.add_argument("--quiet", "-q", action="store_true", help="no stats line")
    return p.parse_args(argv)


def schedule(data, name, blocksz, start_meta, meta_every, repeats, chn):
    """Yields (is_data, framed bytes, payload length) in wire order."""
    size = len(data)
    meta = w.meta_payload(size, blocksz, w.sha256(data), name)
    nblocks, last = divmod(size, blocksz)
    count = nblocks + (1 if last else 0)
    ctrl = w.CONTROL | chn
    seq = 0
    t = 0
    blockno = 0
    copy = 0
    while blockno < count:
        if t < start_meta or (meta_every and t % meta_every == 0):
            yield False, w.frame(w.message(seq, ctrl, 0, meta)), 0
        else:
            off = blockno * blocksz
            payload = data[off : off + blocksz]
            yield True, w.frame(w.message(seq, chn, blockno, payload)), len(payload)
            copy += 1
            if copy > repeats:
                copy = 0
                blockno += 1
        seq = (seq + 1) & 0xFF
        t += 1
    if count == 0:
        # No blocks: META ticks run until the first data tick, which carries END.
        while t < start_meta or (meta_every and t % meta_every == 0):
            yield False, w.frame(w.message(seq, ctrl, 0, meta)), 0
            seq = (seq + 1) & 0xFF
            t += 1
    yield False, w.frame(w.message(seq, ctrl, 0, w.END_PAYLOAD)), 0


def main(argv):
    a = parse_args(argv)
    try:
        with open(a.file, "rb") as f:
            data = f.read()
    except OSError as e:
        print("dttk_send: cannot read %s: %s" % (a.file, e), file=sys.stderr)
        return 2
    if a.meta_every == 1:
        # t % 1 == 0 on every tick: a META every tick and never a data message.
        print("dttk_send: --meta-every 1 would send only META, never data", file=sys.stderr)
        return 2
    name = os.fsencode(os.path.basename(a.file))
    bs = a.block_size
    if len(data) // bs > 0xFFFF:
        print(
            "dttk_send: %s is %d bytes: at most %d fit with %d-byte blocks"
            % (a.file, len(data), 0xFFFF * bs + bs - 1, bs),
            file=sys.stderr,
        )
        return 2
    if w.META_MIN + len(name) + 1 > w.MAX_PAYLOAD:
        print("dttk_send: file name of %d bytes does not fit in META" % len(name), file=sys.stderr)
        return 2

    out = sys.stdout.buffer
    blocks = 0
    nbytes = 0
    sent = 0
    interval = 1.0 / a.throttle_pps if a.throttle_pps > 0 else 0.0
    pending = []
    pending_len = 0
    closed = False
    t0 = time.perf_counter()
    try:
        for is_data, fr, n in schedule(data, name, bs, a.start_meta, a.meta_every, a.repeats, a.channel):
            if interval:
                due = t0 + sent * interval
                now = time.perf_counter()
                if due > now:
                    time.sleep(due - now)
                out.write(fr)
                out.flush()
            else:
                pending.append(fr)
                pending_len += len(fr)
                if pending_len >= 65536:
                    out.write(b"".join(pending))
                    pending = []
                    pending_len = 0
            sent += 1
            if is_data:
                blocks += 1
                nbytes += n
        if pending:
            out.write(b"".join(pending))
        out.flush()
    except BrokenPipeError:
        # The receiver closed its end (done, or gave up): what it got counts.
        closed = True
        try:
            sys.stdout = None
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        except OSError:
            pass
    secs = time.perf_counter() - t0
    if not a.quiet:
        print("tx transfer: " + w.stats_line(secs, blocks, nbytes), file=sys.stderr)
        if closed:
            print("dttk_send: the receiver closed the stream after %d messages" % sent, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
