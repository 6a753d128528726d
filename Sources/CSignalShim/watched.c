// The watched set, the signals held back by full subscriptions, and the set the role holder waits for.
//
// A signal is HELD while at least one lossless subscription for it is full (csignal_hold/csignal_unhold count
// per signal). The role holder then leaves it out of its sigwaitinfo set, so it stays in the kernel: real-time
// signals queue there (sigqueue tells a sender EAGAIN when the queue is full) and standard ones coalesce, as
// the kernel always does. Other signals are not held up: a full SIGRTMIN+1 subscription never delays a SIGTERM.
//
// Atomic orderings: the watched set is written by setup (release) and read with acquire; its change reaches the
// wait thread through csignal_waiter_apply, which waits for the acknowledgement. The hold counts change under
// a mutex (ordinary threads only: the pump and consumers), which also publishes `held` (release; the holder
// reads it with acquire when it builds its wait set). A hold that ends rings the holder after the store.
#include "internal.h"

#include <pthread.h>

static _Atomic uint64_t watched = 0;
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t hold_count[CSIGNAL_SLOTS];
static _Atomic uint64_t held = 0;

/// SIGPIPE and SIGXFSZ: raised by the kernel in the thread that wrote.
static const uint64_t thread_directed = ((uint64_t)1 << (SIGPIPE - 1)) | ((uint64_t)1 << (SIGXFSZ - 1));

uint64_t csignal_thread_directed_class(void) { return thread_directed; }

/// ASYNC-SIGNAL-SAFE.
uint64_t csignal_watched(void) { return atomic_load_explicit(&watched, memory_order_acquire); }

/// ASYNC-SIGNAL-SAFE.
uint64_t csignal_watched_blockable(void) { return csignal_watched() & ~thread_directed; }

/// NOT SAFE: setup only.
void csignal_set_watched(uint64_t mask) { atomic_store_explicit(&watched, mask, memory_order_release); }

uint64_t csignal_engine_watched(void) { return csignal_watched(); }

/// ASYNC-SIGNAL-SAFE.
void csignal_sigset_from_mask(sigset_t *set, uint64_t mask) {
    sigemptyset(set);
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++)
        if (mask & csignal_bit(s)) sigaddset(set, s);
}

/// ASYNC-SIGNAL-SAFE.
uint64_t csignal_mask_from_sigset(const sigset_t *set) {
    uint64_t mask = 0;
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++)
        if (sigismember(set, s) == 1) mask |= csignal_bit(s);
    return mask;
}

/// ASYNC-SIGNAL-SAFE.
void csignal_wait_set(sigset_t *set, uint32_t batch_limit) {
    uint64_t mask = csignal_watched_blockable() & ~atomic_load_explicit(&held, memory_order_acquire);
    // Without room for a batch in the ring (records are drained by hand, and nobody drained), take nothing more
    // from the kernel: csignal_ring_pop's caller rings the holder when it made room.
    if (csignal_ring_free() < batch_limit) mask = 0;
    csignal_sigset_from_mask(set, mask);
    int internal = csignal_internal_signo();
    if (internal > 0) sigaddset(set, internal);
}

/// NOT SAFE: any thread (a mutex).
void csignal_hold(uint64_t mask) {
    pthread_mutex_lock(&hold_lock);
    uint64_t now = atomic_load_explicit(&held, memory_order_relaxed);
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        if (!(mask & csignal_bit(s))) continue;
        hold_count[s]++;
        now |= csignal_bit(s);
    }
    atomic_store_explicit(&held, now, memory_order_release);
    pthread_mutex_unlock(&hold_lock);
}

/// NOT SAFE: any thread (a mutex).
void csignal_unhold(uint64_t mask) {
    pthread_mutex_lock(&hold_lock);
    uint64_t before = atomic_load_explicit(&held, memory_order_relaxed), now = before;
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        if (!(mask & csignal_bit(s))) continue;
        if (hold_count[s] == 0) CSIGNAL_FATAL("csignal_unhold without a matching csignal_hold");
        if (--hold_count[s] == 0) now &= ~csignal_bit(s);
    }
    atomic_store_explicit(&held, now, memory_order_release);
    pthread_mutex_unlock(&hold_lock);
    // The holder may sleep in sigwaitinfo without these signals in its set: wake it to wait with them again.
    if (now != before) csignal_role_ring();
}

uint64_t csignal_held(void) { return atomic_load_explicit(&held, memory_order_acquire); }

/// NOT SAFE: setup only (start), or a forked child (one thread).
void csignal_reset_holds(void) {
    for (int s = 0; s < CSIGNAL_SLOTS; s++) hold_count[s] = 0;
    atomic_store_explicit(&held, 0, memory_order_release);
}
