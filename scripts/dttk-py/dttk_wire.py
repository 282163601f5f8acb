"""The dttk wire profile (spec: docs/specs/dttk-wire.md), written from
the specification alone as an independent second implementation.

Shared by dttk_send.py and dttk_recv.py: the CRC, link messages, META/END
control messages and the 0xFF/0xFE byte-stuffing framing. Standard library
only. Run `python3 dttk_wire.py` for the self-checks.
"""

import argparse
import binascii
import hashlib
import struct

# --- limits (spec section 1 and 5) ---------------------------------------
OVERHEAD = 7  # len, seqno, chn, blockno(2), crc(2)
MAX_LEN = 255  # the len byte
MAX_PAYLOAD = MAX_LEN - 6  # 249
TX_BUFFER = 512  # reference transmit frame buffer
RX_BUFFER = 544  # reference receive frame buffer (512 + 32-byte FIFO)
META_MIN = 37  # 1 + 2 + 1 + 1 + 32

CONTROL = 0x80
T_META = 0x01
T_END = 0xFF

FLAG = 0xFF
ESC = 0xFE

# --- CRC-16/SPI-FUJITSU (spec section 1, "CRC") ---------------------------
CRC_INIT_AUGMENTED = 0xFFFF  # register start for the augmented (bitwise) form
CRC_INIT = 0x1D0F  # the equivalent non-augmented init (catalogue form)
CRC_POLY = 0x1021


def _make_table():
    table = []
    for i in range(256):
        r = i << 8
        for _ in range(8):
            r = ((r << 1) ^ CRC_POLY) if r & 0x8000 else (r << 1)
        table.append(r & 0xFFFF)
    return tuple(table)


CRC_TABLE = _make_table()


def crc16_table(data, crc=CRC_INIT):
    """Table-driven CRC-16/SPI-FUJITSU (256-entry table, MSB first)."""
    t = CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ t[(crc >> 8) ^ b]
    return crc


def crc16_augmented(data):
    """The spec's definition, bit by bit: register 0xFFFF, poly 0x1021,
    MSB first, message then 16 zero bits pushed through, no final xor."""
    reg = CRC_INIT_AUGMENTED
    for b in bytes(data) + b"\x00\x00":
        for i in range(7, -1, -1):
            top = reg & 0x8000
            reg = ((reg << 1) & 0xFFFF) | ((b >> i) & 1)
            if top:
                reg ^= CRC_POLY
    return reg


def crc16(data):
    """CRC-16/SPI-FUJITSU. binascii.crc_hqx is the same non-reflected 0x1021
    register update done in C; started at 0x1D0F it gives this CRC."""
    return binascii.crc_hqx(data, CRC_INIT)


# --- link messages --------------------------------------------------------
class WireError(Exception):
    pass


def message(seqno, chn, blockno, payload):
    """One link message: len | seqno | chn | blockno | payload | crc."""
    n = len(payload)
    if n + 6 > MAX_LEN:
        raise WireError("message len %d exceeds %d" % (n + 6, MAX_LEN))
    head = struct.pack(">BBBH", n + 6, seqno & 0xFF, chn & 0xFF, blockno & 0xFFFF)
    body = head + bytes(payload)
    return body + struct.pack(">H", crc16(body))


def meta_payload(size, blocksz, sha256, name):
    nblocks, last = divmod(size, blocksz)
    if nblocks > 0xFFFF:
        raise WireError("%d blocks do not fit the u16 nblocks field" % nblocks)
    return struct.pack(">BHBB", T_META, nblocks, blocksz, last) + sha256 + name + b"\x00"


END_PAYLOAD = bytes([T_END])


class Meta:
    """A decoded META payload."""

    __slots__ = ("raw", "nblocks", "blocksz", "lastblock", "sha256", "name", "count")

    def __init__(self, payload):
        self.raw = bytes(payload)
        _, self.nblocks, self.blocksz, self.lastblock = struct.unpack_from(">BHBB", payload)
        self.sha256 = self.raw[5:37]
        name = self.raw[37:]
        z = name.find(b"\x00")
        self.name = name if z < 0 else name[:z]
        self.count = self.nblocks + (1 if self.lastblock else 0)

    def valid(self):
        return self.blocksz >= 1 and self.lastblock < self.blocksz and self.count <= 0x10000

    def block_len(self, blockno):
        if blockno < self.nblocks:
            return self.blocksz
        if blockno == self.nblocks and self.lastblock:
            return self.lastblock
        return -1


# --- byte-stream framing (spec section 5) ---------------------------------
_ESCAPE = {FLAG: b"\xfe\xfd", ESC: b"\xfe\xfe"}


def frame(msg):
    """0xFF | escaped message | 0xFF."""
    if FLAG in msg or ESC in msg:
        # 0xFE first, so the 0xFE of an escaped 0xFF is not escaped again.
        msg = msg.replace(b"\xfe", b"\xfe\xfe").replace(b"\xff", b"\xfe\xfd")
    if len(msg) + 2 > TX_BUFFER:
        raise WireError("framed message exceeds the %d-byte transmit buffer" % TX_BUFFER)
    return b"\xff" + msg + b"\xff"


# Deframer states
_SKIP, _START, _COLLECT = 0, 1, 2


class Deframer:
    """Receiver side of the framing, fed arbitrary chunks.

    Skip bytes until a 0xFF (junk), skip the run of 0xFF, collect until the
    next 0xFF, which closes the frame and is consumed: the next frame needs
    its own opening 0xFF (the spec's section 5.1 lets the closing 0xFF open
    the next frame; both read a conforming sender's stream alike). `0xFE 0xFF`
    drops the partial frame and the 0xFF opens a new one. A frame growing past
    RX_BUFFER un-escaped bytes is dropped and the rest up to the next 0xFF
    skipped as junk. Un-escaped frames whose len byte does not match are
    counted and dropped; good ones are returned in order by feed().
    """

    def __init__(self, limit=RX_BUFFER):
        self.limit = limit
        self.state = _SKIP
        self.raw = bytearray()
        self.junk = 0
        self.violations = 0  # 0xFE 0xFF
        self.bad_escapes = 0  # 0xFE followed by anything but 0xFD/0xFE/0xFF
        self.overflows = 0
        self.bad_length = 0
        self.frames = 0  # frames with a matching len byte

    def _unescape(self, raw):
        """Returns (message, overflow_at) where overflow_at is the raw index
        at which the message grew past the limit (or -1), or (None, -2) for a
        bad escape. A trailing 0xFE is handled by the caller."""
        if ESC not in raw:
            if len(raw) > self.limit:
                return None, self.limit
            return bytes(raw), -1
        out = bytearray()
        pos = 0
        n = len(raw)
        limit = self.limit
        while True:
            i = raw.find(b"\xfe", pos)
            if i < 0:
                out += raw[pos:]
                break
            out += raw[pos:i]
            if len(out) > limit:
                return None, i - (len(out) - limit)
            c = raw[i + 1] if i + 1 < n else -1
            if c == 0xFD:
                out.append(0xFF)
            elif c == 0xFE:
                out.append(0xFE)
            else:
                return None, -2
            if len(out) > limit:
                return None, i
            pos = i + 2
        if len(out) > limit:
            # position of the first byte past the limit in the tail copy
            return None, n - (len(out) - limit)
        return bytes(out), -1

    def _finish(self, out, closed_by_flag):
        """A raw frame ended (by a 0xFF, or forced by overflow)."""
        raw = self.raw
        self.raw = bytearray()
        # A trailing odd 0xFE is the 0xFE 0xFF violation.
        if raw.endswith(b"\xfe"):
            k = len(raw) - len(raw.rstrip(b"\xfe"))
            if k % 2 == 1:
                self.violations += 1
                self.state = _START  # resynchronise on that 0xFF
                return
        msg, at = self._unescape(raw)
        if msg is None:
            if at == -2:
                self.bad_escapes += 1
                self.state = _SKIP
                return
            self.overflows += 1
            self.junk += max(0, len(raw) - at)
            # The 0xFF that ended the raw bytes is the one the skip finds.
            self.state = _START if closed_by_flag else _SKIP
            return
        self.state = _SKIP
        if len(msg) < OVERHEAD or msg[0] + 1 != len(msg):
            self.bad_length += 1
            return
        self.frames += 1
        out.append(msg)

    def feed(self, data):
        out = []
        pos = 0
        n = len(data)
        while pos < n:
            st = self.state
            if st == _SKIP:
                i = data.find(b"\xff", pos)
                if i < 0:
                    self.junk += n - pos
                    return out
                self.junk += i - pos
                pos = i + 1
                self.state = _START
            elif st == _START:
                while pos < n and data[pos] == 0xFF:
                    pos += 1
                if pos < n:
                    self.state = _COLLECT
            else:
                j = data.find(b"\xff", pos)
                if j < 0:
                    self.raw += data[pos:n]
                    # Un-escaping at most halves the length: past this it
                    # has certainly overflowed.
                    if len(self.raw) > 2 * self.limit + 1:
                        self.overflows += 1
                        msg, at = self._unescape(self.raw)
                        self.junk += len(self.raw) - (at if at >= 0 else 0)
                        self.raw = bytearray()
                        self.state = _SKIP
                    return out
                self.raw += data[pos:j]
                pos = j + 1
                self._finish(out, True)
        return out

    def pending(self):
        """Bytes of an unfinished frame (for the truncated-stream counter)."""
        return len(self.raw)


def channel_arg(s):
    """argparse type of --channel, shared by the sender and the receiver."""
    v = int(s)
    if not 0 <= v <= 127:
        raise argparse.ArgumentTypeError("channel must be 0..=127")
    return v


def sha256(data):
    return hashlib.sha256(data).digest()


def stats_line(seconds, blocks, nbytes):
    """`T:<whole seconds> blk:<blocks> by:<bytes> PPS:<int> BPS:<int>`."""
    if seconds > 0:
        pps, bps = int(blocks / seconds), int(nbytes / seconds)
    else:
        pps = bps = 0
    return "T:%d blk:%d by:%d PPS:%d BPS:%d" % (int(seconds), blocks, nbytes, pps, bps)


def _self_test():
    check = b"123456789"
    assert crc16(check) == 0xE5CC, hex(crc16(check))
    assert crc16_table(check) == 0xE5CC
    assert crc16_augmented(check) == 0xE5CC
    import random

    rnd = random.Random(1)
    for n in range(0, 300, 7):
        d = bytes(rnd.randrange(256) for _ in range(n))
        assert crc16(d) == crc16_table(d) == crc16_augmented(d)
    # framing round trip, fed one byte at a time and in one piece
    msgs = [message(i, 0, i, bytes([0xFF, 0xFE, 0xFD, i & 0xFF]) * 20) for i in range(300)]
    stream = b"junk" + b"".join(frame(m) for m in msgs)
    d = Deframer()
    got = []
    for b in stream:
        got += d.feed(bytes([b]))
    assert got == msgs and d.junk == 4, (len(got), d.junk)
    d = Deframer()
    assert d.feed(stream) == msgs
    # 0xFE 0xFF resynchronises on that 0xFF
    d = Deframer()
    assert d.feed(b"\xff\x01\x02\xfe" + frame(msgs[0])[0:]) == [msgs[0]] and d.violations == 1
    # overflow
    d = Deframer()
    assert d.feed(b"\xff" + b"\x01" * 600 + frame(msgs[1])) == [msgs[1]] and d.overflows == 1
    d = Deframer()
    assert d.feed(b"\xff" + b"\x01" * 5000) == [] and d.overflows == 1
    print("dttk_wire self-test ok")


if __name__ == "__main__":
    _self_test()
