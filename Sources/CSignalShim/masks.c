// Changing the signal mask of every thread, and putting back each thread's own.
//
// A thread can change only its own mask (pthread_sigmask). To change another's, the spreader rings it with the
// internal signal; csignal_internal_handler then calls csignal_masks_apply, which edits the uc_sigmask of the
// interrupted context: the kernel installs that as the thread's mask when the handler returns.
//
// THE REQUEST IS STATE, NOT A MESSAGE. The spreader publishes what every thread must look like (`wanted`: the
// blockable watched set) and a generation, then rings the threads. A thread that applies it records, the first
// time it blocks a signal for us, whether it had that signal blocked itself (its own previous state, in its
// slot of a lock-free table keyed by thread id), and acknowledges the generation in its slot. Because the
// request is the whole desired state, a doorbell that arrives late (a thread that blocked the internal signal
// for a while, a doorbell left pending from an earlier spread) applies the current state, never an old one. A
// signal a thread has applied once is not forced on it again: a thread that lets a watched signal in itself
// keeps that choice.
// When a signal stops being watched, each thread that recorded it gets its own previous state back; a thread
// with no record (created after the watch, so it inherited our block from its creator) gets it unblocked,
// during that unwatch's spread.
//
// Which threads are asked: every thread but the wait thread (which sets its own mask) and the caller (which
// applies the request directly). A thread that blocks the internal signal cannot run the handler; it is rung
// once anyway (the doorbell waits until it unblocks: glibc blocks everything for a moment inside
// pthread_create, raise and posix_spawn) and given a short grace. Past it, such a thread is "unreachable": fine
// if it blocks the watched signals itself (libdispatch's worker threads block everything), an error otherwise,
// because it would take watched signals beside the role holder.
//
// New threads inherit their creator's mask: a pass over /proc/self/task repeats until it finds no thread left
// that has not acknowledged. Every wait is bounded by the caller's deadline. Setup only, except
// csignal_masks_apply (handler context).
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/// Threads whose previous state the table can record. Beyond that, a thread is still changed but counted as
/// untracked (it gets the unknown-thread treatment at unwatch).
enum { SLOTS = 4096 };

typedef struct thread_slot {
    _Atomic int32_t tid;            // 0: free
    _Atomic uint32_t acked;         // last generation this thread applied
    _Atomic uint64_t owed;          // newly watched signals the spreader rang it for, not applied yet
    _Atomic uint64_t known;         // signals we blocked in it and whose previous state is recorded
    _Atomic uint64_t prev_blocked;  // of `known`: those it had blocked itself
} thread_slot;

static thread_slot slots[SLOTS];
static _Atomic uint64_t wanted = 0;     // every thread blocks these (the blockable watched set)
static _Atomic uint64_t release = 0;    // during an unwatch's spread: unknown threads unblock these
static _Atomic uint32_t generation = 0;
static _Atomic uint32_t ack_word = 0;   // futex: bumped by every acknowledgement
static _Atomic uint32_t untracked = 0;  // applications that found the table full
static csignal_spread_result last_result;

enum {
    GRACE_NS = 20000000,  // 20 ms for a thread that blocks the internal signal to show it was only a moment
};

/// ASYNC-SIGNAL-SAFE: bounded linear probing, a CAS to claim a free slot.
static thread_slot *slot_for(pid_t tid, bool claim) {
    uint32_t start = (uint32_t)tid * 2654435761u % SLOTS;
    for (uint32_t i = 0; i < SLOTS; i++) {
        thread_slot *slot = &slots[(start + i) % SLOTS];
        int32_t owner = atomic_load_explicit(&slot->tid, memory_order_acquire);
        if (owner == tid) return slot;
        if (owner == 0) {
            if (!claim) return NULL;
            int32_t expected = 0;
            if (atomic_compare_exchange_strong_explicit(&slot->tid, &expected, tid, memory_order_acq_rel,
                                                        memory_order_acquire)) {
                atomic_store_explicit(&slot->known, 0, memory_order_relaxed);
                atomic_store_explicit(&slot->prev_blocked, 0, memory_order_relaxed);
                atomic_store_explicit(&slot->acked, 0, memory_order_relaxed);
                atomic_store_explicit(&slot->owed, 0, memory_order_relaxed);
                return slot;
            }
            if (expected == tid) return slot;
        }
    }
    return NULL;
}

/// ASYNC-SIGNAL-SAFE.
uint64_t csignal_masks_wanted(void) { return atomic_load_explicit(&wanted, memory_order_acquire); }
uint32_t csignal_masks_generation(void) { return atomic_load_explicit(&generation, memory_order_acquire); }

/// ASYNC-SIGNAL-SAFE.
void csignal_masks_ack(pid_t tid, uint32_t gen) {
    thread_slot *slot = slot_for(tid, true);
    if (slot != NULL) atomic_store_explicit(&slot->acked, gen, memory_order_release);
    atomic_fetch_add_explicit(&ack_word, 1, memory_order_release);
    csignal_futex_wake(&ack_word);
}

/// ASYNC-SIGNAL-SAFE: atomics, sigaddset/sigdelset/sigismember, the raw futex wake.
void csignal_masks_apply(sigset_t *mask, pid_t self) {
    // acquire: pairs with the spreader's release store of the generation after `wanted` and `release`.
    uint32_t gen = atomic_load_explicit(&generation, memory_order_acquire);
    uint64_t block = atomic_load_explicit(&wanted, memory_order_acquire);
    uint64_t unknown_release = atomic_load_explicit(&release, memory_order_acquire);
    thread_slot *slot = slot_for(self, true);
    if (slot == NULL) atomic_fetch_add_explicit(&untracked, 1, memory_order_relaxed);
    uint64_t known = slot ? atomic_load_explicit(&slot->known, memory_order_relaxed) : 0;
    uint64_t prev = slot ? atomic_load_explicit(&slot->prev_blocked, memory_order_relaxed) : 0;
    // Without a slot (the table is full) every watched signal counts as owed.
    uint64_t owed = slot ? atomic_exchange_explicit(&slot->owed, 0, memory_order_acq_rel) : block;
    uint64_t current = csignal_mask_from_sigset(mask);

    // 1. What this thread was rung to block: record its own state the first time, then block. A watched signal
    // it was never rung for (it came into being after that signal's spread, inheriting the block) is left as
    // the thread has it: let in now, that is the thread's own choice.
    uint64_t first = owed & block & ~known;
    prev = (prev & ~first) | (current & first);
    uint64_t known_before = known;
    known |= first;
    // 2. What we blocked and no longer need: the thread's own state back.
    uint64_t done = known & ~block;
    uint64_t unblock = done & ~prev;
    known &= ~done;
    prev &= ~done;
    // 3. Unknown to us (inherited our block after the watch): unblocked, while an unwatch spreads.
    unblock |= unknown_release & ~known_before & ~block;

    // Only what this thread has not applied yet is blocked: a watched signal the thread let in itself since
    // (its own choice) stays as the thread set it.
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        uint64_t bit = csignal_bit(s);
        if (first & bit) sigaddset(mask, s);
        else if (unblock & bit) sigdelset(mask, s);
    }
    if (slot != NULL) {
        atomic_store_explicit(&slot->known, known, memory_order_relaxed);
        atomic_store_explicit(&slot->prev_blocked, prev, memory_order_relaxed);
    }
    // release: the spreader that reads this acknowledgement (acquire) may rely on the mask being set.
    csignal_masks_ack(self, gen);
}

/// Marks the newly watched signals as owed by thread `tid`, before it is rung.
static void owe(pid_t tid, uint64_t newly) {
    if (newly == 0) return;
    thread_slot *slot = slot_for(tid, true);
    if (slot != NULL) atomic_fetch_or_explicit(&slot->owed, newly, memory_order_acq_rel);
}

/// The spreader's own thread: the same change, through pthread_sigmask.
static void apply_to_self(pid_t self) {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    csignal_masks_apply(&mask, self);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
}

static bool acked(pid_t tid, uint32_t gen) {
    thread_slot *slot = slot_for(tid, false);
    return slot != NULL && atomic_load_explicit(&slot->acked, memory_order_acquire) == gen;
}

/// Threads rung and not answered yet, across spreads: a doorbell stays pending on a thread that blocks the
/// internal signal, and one is enough (it applies whatever state is current when it runs).
typedef struct outstanding {
    pid_t tid;
    int64_t rung_at;
} outstanding;
static outstanding *waiting = NULL;
static size_t waiting_count = 0, waiting_capacity = 0;

static outstanding *find_waiting(pid_t tid) {
    for (size_t i = 0; i < waiting_count; i++)
        if (waiting[i].tid == tid) return &waiting[i];
    return NULL;
}

static void forget_waiting(size_t index) { waiting[index] = waiting[--waiting_count]; }

static bool add_waiting(pid_t tid, int64_t now) {
    if (waiting_count == waiting_capacity) {
        size_t capacity = waiting_capacity ? waiting_capacity * 2 : 64;
        outstanding *grown = realloc(waiting, capacity * sizeof *waiting);
        if (grown == NULL) return false;
        waiting = grown;
        waiting_capacity = capacity;
    }
    waiting[waiting_count++] = (outstanding){tid, now};
    return true;
}

/// Frees the slots of threads that are gone (their ids may be reused) and forgets their doorbells.
static void forget_dead(const csignal_tid_list *live) {
    for (uint32_t i = 0; i < SLOTS; i++) {
        int32_t tid = atomic_load_explicit(&slots[i].tid, memory_order_acquire);
        if (tid != 0 && !csignal_tid_list_contains(live, tid)) {
            atomic_compare_exchange_strong_explicit(&slots[i].tid, &tid, 0, memory_order_acq_rel,
                                                    memory_order_relaxed);
        }
    }
    for (size_t i = 0; i < waiting_count;) {
        if (!csignal_tid_list_contains(live, waiting[i].tid)) forget_waiting(i);
        else i++;
    }
}

/// Whether a thread that applied the request still shows some of `block` open: it waits in a system call with
/// a temporary mask (sigsuspend, ppoll, pselect, epoll_pwait) that lets them in.
static bool competes(const csignal_thread_report *report, uint64_t block) {
    return report->syscall_nr >= 0 && (report->blocked & block) != block;
}

/// NOT SAFE: setup only.
void csignal_masks_spread(uint64_t block, uint64_t unknown_release, int64_t timeout_ns, csignal_status *status) {
    csignal_spread_result result;
    memset(&result, 0, sizeof result);
    status->code = CSIGNAL_OK;
    const int64_t deadline = csignal_now_ns() + timeout_ns;
    const pid_t self = (pid_t)syscall(SYS_gettid);
    const uint64_t internal_bit = csignal_bit(csignal_internal_signo());
    atomic_store_explicit(&untracked, 0, memory_order_relaxed);

    const uint64_t newly = block & ~atomic_load_explicit(&wanted, memory_order_acquire);
    atomic_store_explicit(&wanted, block, memory_order_release);
    atomic_store_explicit(&release, unknown_release, memory_order_release);
    uint32_t gen = atomic_fetch_add_explicit(&generation, 1, memory_order_acq_rel) + 1;
    owe(self, newly);
    apply_to_self(self);

    csignal_tid_list threads = {0};
    for (;;) {
        result.passes++;
        int err = csignal_list_threads(&threads);
        if (err != 0) {
            *status = (csignal_status){.code = CSIGNAL_E_SYSTEM, .err = err, .call = "opendir(/proc/self/task)"};
            break;
        }
        forget_dead(&threads);
        pid_t waiter = atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire);
        int64_t now = csignal_now_ns();
        uint32_t unanswered = 0;
        result.unreachable = 0;
        result.competing = 0;
        for (size_t i = 0; i < threads.count && status->code == CSIGNAL_OK; i++) {
            pid_t tid = threads.tids[i];
            if (tid == self || tid == waiter) continue;
            csignal_thread_report report;
            bool readable = csignal_read_thread(tid, &report) == 0;
            if (acked(tid, gen)) {
                if (readable && competes(&report, block)) result.competing++;
                continue;
            }
            if (!readable) continue;  // exited meanwhile
            outstanding *rung = find_waiting(tid);
            owe(tid, newly);  // also for a thread rung earlier that has not answered: its doorbell owes this too
            if (rung == NULL) {
                int ring = csignal_ring_patiently(tid, deadline);
                if (ring == ESRCH) continue;
                if (ring != 0) {
                    *status = (csignal_status){.code = CSIGNAL_E_SYSTEM, .err = ring, .call = "tgkill"};
                    break;
                }
                result.signalled++;
                if (!add_waiting(tid, now)) {
                    *status = (csignal_status){.code = CSIGNAL_E_SYSTEM, .err = ENOMEM, .call = "realloc"};
                    break;
                }
                unanswered++;
                continue;
            }
            if (now - rung->rung_at < GRACE_NS || !(report.blocked & internal_bit)) {
                unanswered++;  // give it time: it either runs the handler soon or shows it blocks the doorbell
                continue;
            }
            // It blocks the internal signal, past the grace: it cannot be changed now. Harmless when it blocks
            // what we need blocked; a second dequeuer otherwise.
            result.unreachable++;
            uint64_t open = block & ~report.blocked;
            if (open != 0) {
                *status = (csignal_status){.code = CSIGNAL_E_UNREACHABLE_THREAD, .tid = tid,
                                           .signo = __builtin_ctzll(open) + 1};
            }
        }
        if (status->code != CSIGNAL_OK || unanswered == 0) break;
        int64_t left = deadline - csignal_now_ns();
        if (left <= 0) {
            for (size_t i = 0; i < threads.count; i++) {
                pid_t tid = threads.tids[i];
                if (tid != self && tid != waiter && !acked(tid, gen) && find_waiting(tid) != NULL) {
                    *status = (csignal_status){.code = CSIGNAL_E_THREAD_TIMEOUT, .tid = tid};
                    break;
                }
            }
            if (status->code == CSIGNAL_OK) continue;  // the unanswered ones exited: one more pass to see
            break;
        }
        uint32_t seen = atomic_load_explicit(&ack_word, memory_order_acquire);
        CSIGNAL_INJECT("spread.wait-acks");
        csignal_futex_wait(&ack_word, seen, left < 1000000 ? left : 1000000);
    }
    // Answered doorbells are no longer outstanding.
    for (size_t i = 0; i < waiting_count;) {
        if (acked(waiting[i].tid, gen)) forget_waiting(i);
        else i++;
    }
    atomic_store_explicit(&release, 0, memory_order_release);
    csignal_tid_list_free(&threads);
    result.untracked = atomic_load_explicit(&untracked, memory_order_relaxed);
    last_result = result;
}

uint64_t csignal_masks_previous_blocked(pid_t tid, uint64_t mask) {
    thread_slot *slot = slot_for(tid, false);
    if (slot == NULL) return 0;
    uint64_t known = atomic_load_explicit(&slot->known, memory_order_relaxed);
    return atomic_load_explicit(&slot->prev_blocked, memory_order_relaxed) & known & mask;
}

/// NOT SAFE: setup only (stop, with no handler running), or a forked child.
void csignal_masks_reset(void) {
    for (uint32_t i = 0; i < SLOTS; i++) {
        atomic_store_explicit(&slots[i].tid, 0, memory_order_relaxed);
        atomic_store_explicit(&slots[i].known, 0, memory_order_relaxed);
        atomic_store_explicit(&slots[i].prev_blocked, 0, memory_order_relaxed);
        atomic_store_explicit(&slots[i].acked, 0, memory_order_relaxed);
        atomic_store_explicit(&slots[i].owed, 0, memory_order_relaxed);
    }
    waiting_count = 0;
    atomic_store_explicit(&wanted, 0, memory_order_release);
    atomic_store_explicit(&release, 0, memory_order_release);
}

csignal_spread_result *csignal_masks_last_result(void) { return &last_result; }
csignal_spread_result csignal_last_spread(void) { return last_result; }

#ifdef CSIGNAL_TESTING
/// Publishes a request the way csignal_masks_spread does, as if it rang `threads` (count of them).
void csignal_test_masks_request(uint64_t block, uint64_t unknown_release, const pid_t *threads, int count) {
    uint64_t newly = block & ~atomic_load_explicit(&wanted, memory_order_acquire);
    for (int i = 0; i < count; i++) owe(threads[i], newly);
    atomic_store_explicit(&wanted, block, memory_order_release);
    atomic_store_explicit(&release, unknown_release, memory_order_release);
    atomic_fetch_add_explicit(&generation, 1, memory_order_acq_rel);
}
#endif
