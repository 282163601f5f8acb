#!/usr/bin/env python3
"""spead2 sender for perfkit's `heaps` scenarios and interop tests.

Sends heaps of two items, as spead2's tutorial does: a timestamp (0x1600,
format u40, value i * heap_size) and adc_samples (0x3300, int8[heap_size],
every byte i mod 256), descriptors in the first heap, then the stop heap.

Modes:
  batch  spead2's batched API: two HeapReferenceLists of 512 KiB / heap_size
         heaps each in flight, submitted with async_send_heaps(GroupMode.SERIAL)
         (tutorial section 11). spead2 merges equal-size packets with UDP GSO
         on its own where the kernel allows.
  heap   one async_send_heap per heap, about 1 MiB of heaps in flight
         (tutorial section 10).

Prints one JSON line: {"heaps", "bytes", "seconds", "cpu_seconds",
"voluntary_switches", "involuntary_switches", "minor_faults", "mb_per_s",
"mode"}, where seconds covers the data heaps only (not the stop heap), as
the tutorial measures, and the CPU time, context switches and page faults
are the whole process's (spead2's worker thread included) over the same
stretch.
"""

import argparse
import asyncio
import json
import resource
import os
import sys
import time

import numpy as np
import spead2
import spead2.send
import spead2.send.asyncio


def make_item_group(heap_size):
    ig = spead2.send.ItemGroup()
    ig.add_item(0x1600, "timestamp", "Index of the first sample", shape=(),
                format=[("u", spead2.Flavour().heap_address_bits)])
    ig.add_item(0x3300, "adc_samples", "ADC converter output", shape=(heap_size,), dtype=np.int8)
    return ig


async def run_batch(stream, ig, args, n_heaps, deadline):
    heap_size = args.heap_size
    batch_heaps = max(1, 512 * 1024 // heap_size)
    states = []

    def make_heaps(samples, timestamps, first):
        heaps = []
        for j in range(batch_heaps):
            ig["timestamp"].value = timestamps[j, ...]
            ig["adc_samples"].value = samples[j, ...]
            heap = ig.get_heap(descriptors="all" if (first and j == 0) else "none", data="all")
            heaps.append(spead2.send.HeapReference(heap))
        return spead2.send.HeapReferenceList(heaps)

    for _ in range(2):
        samples = np.zeros((batch_heaps, heap_size), np.int8)
        timestamps = np.zeros(batch_heaps, ">u8")
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(0)
        states.append({"samples": samples, "timestamps": timestamps,
                       "heaps": make_heaps(samples, timestamps, False), "future": fut})
    first_heaps = make_heaps(states[0]["samples"], states[0]["timestamps"], True)

    sent = 0
    start = time.perf_counter()
    for i in range(0, n_heaps, batch_heaps):
        if time.perf_counter() > deadline:
            break
        state = states[(i // batch_heaps) % 2]
        end = min(i + batch_heaps, n_heaps)
        n = end - i
        await state["future"]
        state["samples"][:n] = (np.arange(i, end) % 256).astype(np.uint8).view(np.int8)[:, np.newaxis]
        state["timestamps"][:n] = np.arange(i * heap_size, end * heap_size, heap_size)
        heaps = state["heaps"] if i else first_heaps
        if n < batch_heaps:
            heaps = heaps[:n]
        state["future"] = stream.async_send_heaps(heaps, spead2.send.GroupMode.SERIAL)
        sent = end
    for state in states:
        await state["future"]
    return sent, time.perf_counter() - start


async def run_heap(stream, ig, args, n_heaps, deadline, in_flight):
    heap_size = args.heap_size
    states = []
    for _ in range(in_flight):
        samples = np.zeros(heap_size, np.int8)
        timestamp = np.array(0, ">u8")
        ig["timestamp"].value = timestamp
        ig["adc_samples"].value = samples
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(0)
        states.append({"samples": samples, "timestamp": timestamp,
                       "heap": ig.get_heap(descriptors="none", data="all"), "future": fut})
    ig["timestamp"].value = states[0]["timestamp"]
    ig["adc_samples"].value = states[0]["samples"]
    first_heap = ig.get_heap(descriptors="all", data="all")

    sent = 0
    start = time.perf_counter()
    for i in range(n_heaps):
        if (i & 63) == 0 and time.perf_counter() > deadline:
            break
        state = states[i % in_flight]
        await state["future"]
        state["samples"].fill(np.uint8(i % 256).view(np.int8))
        state["timestamp"][()] = i * heap_size
        state["future"] = stream.async_send_heap(first_heap if i == 0 else state["heap"])
        sent = i + 1
    for state in states:
        await state["future"]
    return sent, time.perf_counter() - start


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["batch", "heap"], default="batch")
    parser.add_argument("-n", "--heaps", type=int, default=1000)
    parser.add_argument("-p", "--packet-size", type=int, default=9000)
    parser.add_argument("-H", "--heap-size", type=int, default=1024 * 1024)
    parser.add_argument("--rate", type=float, default=0.0, help="bytes/s, 0 = unlimited")
    parser.add_argument("--time-cap", type=float, default=0.0, help="seconds, 0 = none")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    args = parser.parse_args()

    thread_pool = spead2.ThreadPool(1)
    batch_heaps = max(1, 512 * 1024 // args.heap_size)
    in_flight = max(2, 1024 * 1024 // args.heap_size)
    max_heaps = 2 * batch_heaps if args.mode == "batch" else in_flight
    config = spead2.send.StreamConfig(rate=args.rate, max_heaps=max_heaps + 1,
                                      max_packet_size=args.packet_size)
    stream = spead2.send.asyncio.UdpStream(thread_pool, [(args.host, args.port)], config)
    ig = make_item_group(args.heap_size)
    deadline = time.perf_counter() + (args.time_cap if args.time_cap > 0 else 1e9)
    cpu0 = time.process_time()  # all threads of this process, spead2's worker included
    ru0 = resource.getrusage(resource.RUSAGE_SELF)  # likewise
    if args.mode == "batch":
        sent, elapsed = await run_batch(stream, ig, args, args.heaps, deadline)
    else:
        sent, elapsed = await run_heap(stream, ig, args, args.heaps, deadline, in_flight)
    cpu = time.process_time() - cpu0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    await stream.async_send_heap(ig.get_end())
    nbytes = sent * args.heap_size
    print(json.dumps({"mode": args.mode, "heaps": sent, "bytes": nbytes, "seconds": elapsed,
                      "cpu_seconds": cpu,
                      "voluntary_switches": ru.ru_nvcsw - ru0.ru_nvcsw,
                      "involuntary_switches": ru.ru_nivcsw - ru0.ru_nivcsw,
                      "minor_faults": ru.ru_minflt - ru0.ru_minflt,
                      "mb_per_s": nbytes / elapsed / 1e6 if elapsed > 0 else 0.0}))
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
    # spead2 4.5 sometimes aborts while the interpreter tears down its
    # streams and thread pool; the report is flushed, so leave directly.
    os._exit(0)
