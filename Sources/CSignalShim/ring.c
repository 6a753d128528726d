// The record ring: a bounded lock-free multi-producer queue of full records, with one consumer at a time.
//
// Producers: the role holder (wait thread or borrower) and the fallback handler on any number of threads at
// once. A producer is never re-entered on its own thread: the role holder blocks every signal it waits for
// (the watched set and the internal signal), and the handlers block every signal while they run (sa_mask is
// full). Consumer: one at a time (the Swift engine holds its lock around csignal_ring_pop).
//
// The ring is Vyukov's bounded queue with a sequence word per slot: a slot whose sequence equals the producer's
// position is free; the producer claims the position with a CAS, fills the slot, then publishes it by storing
// position + 1. A producer never waits for another: if the slot at its position still holds an unconsumed
// record, the ring is full and the record is refused (the recorder counts it as dropped).
//
// Atomic orderings (each one is used exactly as described here):
// - slot.seq load (producer, consumer): acquire — pairs with the release store that last handed the slot
//   over, so the record bytes written before it are visible.
// - slot.seq store: release — publishes the record (producer) or the freed slot (consumer).
// - enqueue_pos CAS: relaxed — the position only arbitrates which producer owns a slot; the data hand-over
//   is carried by slot.seq.
// - dequeue_pos: relaxed — written by the single consumer; others read it only for approximate counts.
#include "internal.h"

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

/// A CAS fails only when another producer claimed the position first, so each retry means progress for
/// someone else; the bound keeps even a pathological storm finite (a record that loses 64 races is dropped).
enum { PUSH_ATTEMPTS = 64 };

/// ASYNC-SIGNAL-SAFE.
bool csignal_ring_push(csignal_record *record) {
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
uint64_t csignal_ring_free(void) {
    uint64_t capacity = atomic_load_explicit(&ring_mask, memory_order_relaxed) + 1;
    uint64_t pending = csignal_ring_pending();
    return pending >= capacity ? 0 : capacity - pending;
}

/// NOT SAFE: setup only. Called by start before any handler of ours is installed and before the wait thread
/// exists, so no producer can be inside csignal_ring_push.
void csignal_ring_reset(uint32_t capacity) {
    for (uint64_t i = 0; i < capacity; i++) {
        atomic_store_explicit(&ring[i].seq, i, memory_order_relaxed);
    }
    atomic_store_explicit(&enqueue_pos, 0, memory_order_relaxed);
    atomic_store_explicit(&dequeue_pos, 0, memory_order_relaxed);
    atomic_store_explicit(&ring_mask, (uint64_t)capacity - 1, memory_order_release);
}
