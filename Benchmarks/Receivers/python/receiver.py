"""Python's `signal` module in the tutorial pattern: a handler, and the main thread in time.sleep().

    python3 receiver.py SHM

Watches SIGUSR1 (slot 0) and SIGRTMIN+1 (slot 1).
The handler is the moment "user code sees the signal". It writes the same shared page as the other receivers
(layout: Benchmarks/Sources/CBench/include/CBench.h; the C side pins the offsets with _Static_assert).
"""
import mmap
import os
import signal
import struct
import sys
import time

READY = 0
SLOT_BASE = 64
SLOT_SIZE = 64
RECEIVED, RECV_NS = 0, 8

with open(sys.argv[1], "r+b") as f:
    page = mmap.mmap(f.fileno(), 4096)

counts = [0, 0]


def seen(slot):
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    base = SLOT_BASE + slot * SLOT_SIZE
    counts[slot] += 1
    page[base + RECV_NS:base + RECV_NS + 8] = struct.pack("<q", now)
    page[base + RECEIVED:base + RECEIVED + 8] = struct.pack("<Q", counts[slot])


def on_usr1(signum, frame):
    seen(0)


def on_rt(signum, frame):
    seen(1)


signal.signal(signal.SIGUSR1, on_usr1)
signal.signal(signal.SIGRTMIN + 1, on_rt)
page[READY:READY + 8] = struct.pack("<Q", 1)
while True:
    time.sleep(1)
