#!/usr/bin/env python3
"""spead2 receiver for perfkit's interop tests.

Binds a UDP socket (port 0 picks one), prints {"ready": port}, then one JSON
line per received heap and one for the end of the stream:

  {"descriptor": {"id", "name", "description", "shape", "format", "dtype"}}
  {"heap": cnt, "items": {name: {"len": n, "first": b, "uniform": bool} | int}}
  {"stop": true, "heaps": n, "incomplete": n}

Exits when the stop heap arrives, or after --timeout seconds without one
(then "stop" is false).
"""

import argparse
import json
import os
import socket
import sys
import threading

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--max-packet", type=int, default=9200)
    args = parser.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    sock.bind((args.host, args.port))
    config = spead2.recv.StreamConfig(max_heaps=8)
    ring = spead2.recv.RingStreamConfig(heaps=64)
    stream = spead2.recv.Stream(spead2.ThreadPool(), config, ring)
    stream.add_udp_reader(sock, max_size=args.max_packet)
    emit({"ready": sock.getsockname()[1]})

    timer = threading.Timer(args.timeout, stream.stop)
    timer.daemon = True
    timer.start()

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
