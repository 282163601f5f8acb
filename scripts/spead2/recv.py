#!/usr/bin/env python3
"""spead2 receiver for perfkit's interop tests and `heaps` scenarios.

Binds a UDP socket (port 0 picks one), prints {"ready": port, "rcvbuf": n},
then one JSON line per received heap and one for the end of the stream:

  {"descriptor": {"id", "name", "description", "shape", "format", "dtype"}}
  {"heap": cnt, "items": {name: {"len": n, "first": b, "uniform": bool} | int}}
  {"stop": true, "heaps": n, "incomplete": n}

With --pattern HEAP_SIZE it is the measured receiver of a `heaps` run
instead: every heap is checked here against perfkit's pattern (timestamp
i * HEAP_SIZE, every sample byte i mod 256) and only the end line is
printed, with "verified", "failures", "payload_bytes", "descriptors",
"seconds" (first to last heap), "cpu_seconds", "voluntary_switches",
"involuntary_switches" and "minor_faults" (the whole process, spead2's
reader thread included, from the wait for the first heap to the stop heap)
and spead2's own stream statistics.

The stream is set up as spead2's documentation advises for speed: a memory
pool sized for the heaps (so no heap is allocated while receiving), a ring
deep enough to absorb the Python loop's jitter, and the socket's receive
buffer as large as perfkit's receiver asks for (SO_RCVBUFFORCE as root).

Exits when the stop heap arrives, or after --timeout seconds without one
(then "stop" is false).
"""

import argparse
import json
import resource
import os
import socket
import sys
import threading
import time

import numpy as np
import spead2
import spead2.recv


def emit(obj):
    print(json.dumps(obj))
    sys.stdout.flush()


def summarise(value):
    arr = np.asarray(value)
    if arr.ndim == 0 and arr.dtype.kind in "uib":
        return int(arr)
    if arr.dtype.kind in "uib":
        flat = arr.reshape(-1).view(np.uint8) if arr.dtype.itemsize == 1 else arr.reshape(-1)
        return {"len": int(flat.size), "first": int(flat[0]) if flat.size else None,
                "uniform": bool(flat.size == 0 or (flat == flat[0]).all())}
    return repr(value)


SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def bind(host, port, rcvbuf):
    """A UDP socket with perfkit's receive buffer: forced past rmem_max
    where permitted (root), else as large as the limit allows."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
    except OSError:
        pass
    sock.bind((host, port))
    return sock


def stream_for(heap_size, max_heaps, ring_heaps):
    """A stream whose heaps come from a memory pool sized for them."""
    # The first heap also carries the two descriptors: a little headroom.
    upper = heap_size + 65536
    pool = spead2.MemoryPool(heap_size, upper, max_heaps + ring_heaps + 4, max_heaps + ring_heaps + 4)
    config = spead2.recv.StreamConfig(max_heaps=max_heaps, memory_allocator=pool)
    ring = spead2.recv.RingStreamConfig(heaps=ring_heaps)
    return spead2.recv.Stream(spead2.ThreadPool(1), config, ring)


def receive_pattern(stream, heap_size, timer):
    """Checks every heap against the pattern; returns the end line."""
    verified = failures = 0
    first = last = None
    names = []
    words = heap_size % 8 == 0
    cpu0 = time.process_time()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)  # all threads, spead2's reader included
    for heap in stream:
        now = time.perf_counter()
        if first is None:
            first = now
        last = now
        if isinstance(heap, spead2.recv.IncompleteHeap):
            continue  # counted from the stream's statistics below
        if len(names) < 2:
            for raw in heap.get_descriptors():
                names.append(spead2.Descriptor.from_raw(raw, heap.flavour).name)
        ts = samples = None
        for item in heap.get_items():
            if item.id == 0x1600:
                ts = item.immediate_value if item.is_immediate else int.from_bytes(bytes(item), "big")
            elif item.id == 0x3300:
                samples = item
        if samples is None:
            continue  # the stop heap, or descriptors only
        want = (ts // heap_size) % 256 if ts is not None else -1
        data = np.frombuffer(samples, np.uint8)
        ok = ts is not None and ts % heap_size == 0 and data.size == heap_size
        if ok and words:
            # Eight bytes per comparison: the check stays a small share of the loop.
            ok = bool((data.view(np.uint64) == want * 0x0101010101010101).all())
        elif ok:
            ok = bool((data == want).all())
        if ok:
            verified += 1
        else:
            failures += 1
    cpu = time.process_time() - cpu0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    stats = stream.stats
    return {"stop": timer.is_alive(), "heaps": verified + failures, "verified": verified,
            "failures": failures,
            # spead2 drops incomplete heaps itself (they never reach the ring).
            "incomplete": stats["incomplete_heaps_evicted"] + stats["incomplete_heaps_flushed"],
            "payload_bytes": verified * heap_size, "descriptors": names,
            "seconds": (last - first) if first is not None else 0.0, "cpu_seconds": cpu,
            "voluntary_switches": ru.ru_nvcsw - ru0.ru_nvcsw,
            "involuntary_switches": ru.ru_nivcsw - ru0.ru_nivcsw,
            "minor_faults": ru.ru_minflt - ru0.ru_minflt,
            "packets": stats["packets"], "incomplete_heaps_evicted": stats["incomplete_heaps_evicted"],
            "worker_blocked": stats["worker_blocked"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--max-packet", type=int, default=9200)
    parser.add_argument("--rcvbuf", type=int, default=32 << 20, help="SO_RCVBUF, bytes")
    parser.add_argument("--pattern", type=int, default=0, metavar="HEAP_SIZE",
                        help="check heaps against perfkit's pattern, print only the end line")
    parser.add_argument("--max-heaps", type=int, default=8, help="heaps under assembly at once")
    parser.add_argument("--ring-heaps", type=int, default=0,
                        help="completed heaps the ring holds (0: 32 MiB of heaps, 16 to 4096)")
    args = parser.parse_args()

    sock = bind(args.host, args.port, args.rcvbuf)
    heap_size = args.pattern if args.pattern > 0 else 1 << 20
    ring_heaps = args.ring_heaps or max(16, min(4096, (32 << 20) // heap_size))
    stream = stream_for(heap_size, args.max_heaps, ring_heaps)
    stream.add_udp_reader(sock, max_size=args.max_packet)
    emit({"ready": sock.getsockname()[1],
          "rcvbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
          "max_heaps": args.max_heaps, "ring_heaps": ring_heaps})

    timer = threading.Timer(args.timeout, stream.stop)
    timer.daemon = True
    timer.start()
    if args.pattern > 0:
        end = receive_pattern(stream, args.pattern, timer)
        timer.cancel()
        stream.stop()
        emit(end)
        os._exit(0)

    ig = spead2.ItemGroup()
    heaps = 0
    incomplete = 0
    seen = set()
    for heap in stream:
        if isinstance(heap, spead2.recv.IncompleteHeap):
            incomplete += 1
            continue
        heaps += 1
        updated = ig.update(heap)
        for raw in heap.get_descriptors():
            d = spead2.Descriptor.from_raw(raw, heap.flavour)
            if d.id in seen:
                continue
            seen.add(d.id)
            emit({"descriptor": {"id": d.id, "name": d.name, "description": d.description,
                                 "shape": list(d.shape), "format": d.format and [list(f) for f in d.format],
                                 "dtype": None if d.dtype is None else str(d.dtype)}})
        emit({"heap": heap.cnt, "items": {name: summarise(item.value) for name, item in updated.items()}})
    stopped = timer.is_alive()
    timer.cancel()
    stream.stop()
    emit({"stop": stopped, "heaps": heaps, "incomplete": incomplete})
    # spead2 4.5 sometimes aborts while the interpreter tears down its stream
    # and thread pool; everything is reported and flushed, so leave directly.
    os._exit(0)


if __name__ == "__main__":
    main()
