// The recorder: exact per-signal counters and a bounded lock-free ring of full records.
//
// Producers: the wait thread and the fallback handler on any number of threads at once, including a handler
// that interrupts... nothing of ours: the wait thread blocks every signal, and handlers block every signal
// while they run (sa_mask is full), so a producer is never re-entered on its own thread.
// Consumer: one at a time (the Swift engine holds its lock around csignal_ring_pop).
//
// The ring is a bounded multi-producer queue with a sequence word per slot (Vyukov's design): a slot whose
// sequence equals the producer's position is free; the producer claims the position with a CAS, fills the
// slot, then publishes it by storing position + 1. A producer never waits for another: if the slot at its
// position still holds an unconsumed record, the ring is full and the record is counted as dropped.
//
// Atomic orderings (each one is used exactly as described here):
// - slot.seq load (producer, consumer): acquire — pairs with the release store that last handed the slot
//   over, so the record bytes written before it are visible.
// - slot.seq store: release — publishes the record (producer) or the freed slot (consumer).
// - enqueue_pos CAS: relaxed — the position only arbitrates which producer owns a slot; the data hand-over
//   is carried by slot.seq.
// - counters: delivered is incremented with release after the record is published, and read with acquire by
//   pollers, so a poller that sees N deliveries finds their records in the ring (or counted as dropped). The
//   other counters are statistics: relaxed.
#include "internal.h"

#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

csignal_counter_line csignal_counter_table[128] __attribute__((aligned(64)));

typedef struct ring_slot {
    _Atomic uint64_t seq;
    csignal_record record;
} ring_slot;
_Static_assert(sizeof(ring_slot) == 64, "one ring slot per cache line");

// 4 MiB of zero pages: untouched slots cost no memory.
static ring_slot ring[CSIGNAL_RING_MAX_CAPACITY] __attribute__((aligned(64)));
static _Atomic uint64_t ring_mask = 0;
static _Alignas(64) _Atomic uint64_t enqueue_pos = 0;
static _Alignas(64) _Atomic uint64_t dequeue_pos = 0;
static _Alignas(64) _Atomic uint64_t dropped_total = 0;

/// A CAS fails only when another producer claimed the position first, so each retry means progress for
/// someone else; the bound keeps even a pathological storm finite (a record that loses 64 races is dropped).
enum { PUSH_ATTEMPTS = 64 };

/// ASYNC-SIGNAL-SAFE.
static bool ring_push(csignal_record *record) {
    uint64_t mask = atomic_load_explicit(&ring_mask, memory_order_relaxed);
    uint64_t pos = atomic_load_explicit(&enqueue_pos, memory_order_relaxed);
    for (int attempt = 0; attempt < PUSH_ATTEMPTS; attempt++) {
        ring_slot *slot = &ring[pos & mask];
        uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
        int64_t diff = (int64_t)(seq - pos);
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&enqueue_pos, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                record->sequence = pos + 1;
                slot->record = *record;
                atomic_store_explicit(&slot->seq, pos + 1, memory_order_release);
                return true;
            }
            // pos now holds the current position: try again there.
        } else if (diff < 0) {
            return false;  // the slot still holds a record from one lap ago: full
        } else {
            pos = atomic_load_explicit(&enqueue_pos, memory_order_relaxed);
        }
    }
    return false;
}

/// ASYNC-SIGNAL-SAFE.
void csignal_record_delivery(int signo, const siginfo_t *info, int route, csignal_record *copy) {
    if (signo < 1 || signo > CSIGNAL_MAX_SIGNO) return;
    csignal_counter_line *line = &csignal_counter_table[signo];

    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);

    csignal_record record;
    record.sequence = 0;
    record.time_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    record.value_ptr = (uint64_t)(uintptr_t)info->si_value.sival_ptr;
    record.signo = signo;
    record.code = info->si_code;
    record.pid = info->si_pid;
    record.uid = info->si_uid;
    record.value_int = info->si_value.sival_int;
    record.route = route;
    record.reserved = 0;
    if (route == CSIGNAL_ROUTE_WAITER) {
        record.tid = csignal_role_tid;  // the wait thread, or the thread that borrows its role
    } else {
        record.tid = (int32_t)syscall(SYS_gettid);  // the raw system call: no lock, no errno unless it fails
    }

    bool kept = ring_push(&record);
    if (copy != NULL) *copy = record;  // sequence is set when the ring kept it, 0 when it was dropped
    if (!kept) {
        __atomic_fetch_add(&line->dropped, 1, __ATOMIC_RELAXED);
        atomic_fetch_add_explicit(&dropped_total, 1, memory_order_relaxed);
    }
    if (route == CSIGNAL_ROUTE_WAITER) {
        __atomic_fetch_add(&line->via_waiter, 1, __ATOMIC_RELAXED);
    } else {
        __atomic_fetch_add(&line->via_handler, 1, __ATOMIC_RELAXED);
    }
    __atomic_fetch_add(&line->delivered, 1, __ATOMIC_RELEASE);
}

/// NOT SAFE: any thread, one consumer at a time.
uint32_t csignal_ring_pop(csignal_record *out, uint32_t max) {
    uint64_t mask = atomic_load_explicit(&ring_mask, memory_order_relaxed);
    uint64_t pos = atomic_load_explicit(&dequeue_pos, memory_order_relaxed);
    uint32_t n = 0;
    while (n < max) {
        ring_slot *slot = &ring[pos & mask];
        uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
        if ((int64_t)(seq - (pos + 1)) < 0) break;  // not published yet: empty from here on
        out[n++] = slot->record;
        atomic_store_explicit(&slot->seq, pos + mask + 1, memory_order_release);
        pos++;
    }
    atomic_store_explicit(&dequeue_pos, pos, memory_order_relaxed);
    return n;
}

/// ASYNC-SIGNAL-SAFE.
uint64_t csignal_ring_pending(void) {
    uint64_t in = atomic_load_explicit(&enqueue_pos, memory_order_relaxed);
    uint64_t out = atomic_load_explicit(&dequeue_pos, memory_order_relaxed);
    return in - out;
}

/// ASYNC-SIGNAL-SAFE.
uint64_t csignal_ring_dropped_total(void) {
    return atomic_load_explicit(&dropped_total, memory_order_relaxed);
}

/// NOT SAFE: setup only. Called by start before any handler of ours is installed and after stop waited for
/// running handlers, so no producer can be inside ring_push.
void csignal_ring_reset(uint32_t capacity) {
    for (uint64_t i = 0; i < capacity; i++) {
        atomic_store_explicit(&ring[i].seq, i, memory_order_relaxed);
    }
    atomic_store_explicit(&enqueue_pos, 0, memory_order_relaxed);
    atomic_store_explicit(&dequeue_pos, 0, memory_order_relaxed);
    atomic_store_explicit(&ring_mask, (uint64_t)capacity - 1, memory_order_release);
}
