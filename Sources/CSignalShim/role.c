// THE WAIT ROLE: which thread takes watched signals from the kernel.
//
// Exactly one thread at a time sleeps in sigwaitinfo for the watched set; it is said to hold the role. Normally
// that is the wait thread ("signalcore"). A thread blocked in SignalSubscription.next(timeout:) may borrow the
// role, so that the kernel wakes it directly: one wake-up from send to caller instead of two. After handing an
// event over, the borrower keeps the role for a short lease (LAZY), so that a caller looping on next() takes it
// again without waking the wait thread twice per signal.
//
// The whole state is one 64-bit atomic word, changed only by csignal_role_move, which refuses illegal moves:
//
//   bits 0-31   generation: +1 on every move (what waiters sleep on with futex; it also defeats ABA)
//   bits 32-33  phase: HOME, ASKED, LENT, LAZY
//   bit  34     reclaim: setup wants the role home and keeps new borrows out
//   bits 35-63  the borrower's kernel thread id (0 at HOME)
//
//   from           to            who           condition        what happens next
//   ------------   -----------   -----------   --------------   ------------------------------------------
//   HOME           ASKED(b)      borrower b    no reclaim       b rings the wait thread, sleeps on the word
//   ASKED(b)       LENT(b)       wait thread   no reclaim       wait thread waits for its doorbell only
//   ASKED(b)       HOME          b             -                b gave up (timeout)
//   ASKED(b)       HOME          wait thread   reclaim          refused: setup is running
//   LENT(b)        HOME          b             -                b rings the wait thread, which takes over
//   LENT(b)        LAZY(b)       b             no reclaim       b arms the lease timer AFTER this move
//   LAZY(b)        LENT(b)       b             no reclaim       b is back within the lease; disarms the timer
//   LAZY(b)        HOME          wait thread   -                lease over, a doorbell (setup, or b found a
//                                                               signal in the wait thread's own queue)
//   any            same+reclaim  setup         flag clear       setup rings the holder, waits for HOME
//   any            same-reclaim  setup         flag set         setup is done
//
// One dequeuer at a time: the wait thread waits for watched signals only at HOME and ASKED; a borrower only at
// LENT; at LAZY nobody does (deliveries wait in the kernel for at most the lease). A signal sent to the wait
// thread itself can be taken only there, at HOME: a borrower back within its lease looks every 10 ms whether one
// waits and, if so, rings the wait thread instead of resuming (borrow.c). Every move out of a phase is
// made by the thread that dequeues in it, after its last sigwaitinfo returned, so two threads never take
// watched signals at once and records enter the ring in the order the kernel handed them out.
//
// THE DRAIN FLAG. A record made by the fallback handler on another thread must reach Swift: the handler sets
// `drain_pending` and, if it was clear, rings the holder (csignal_role_ring). Every thread that becomes the
// holder, and the holder after every doorbell, clears the flag before it pumps the ring
// (csignal_role_acquired). Because the handler publishes its record before it sets the flag, and reads the role
// after (all seq_cst), either the holder it reads is still the holder when its doorbell arrives and pumps
// after clearing, or the role moved after the read, and the new holder clears and pumps after the flag was
// set. A doorbell that reaches a thread that no longer holds the role does nothing harmful: the internal
// handler only re-reads shared state.
//
// The model of this protocol is Sources/CSignalShim/model/role.pml; scripts/model-check runs spin on it.
#include "internal.h"

#include <sys/syscall.h>
#include <unistd.h>

_Atomic pid_t csignal_waiter_tid_value = 0;
_Thread_local pid_t csignal_role_tid = 0;

static _Atomic uint64_t role_word = 0;
static _Atomic int drain_pending = 0;

enum {
    PHASE_SHIFT = 32,
    RECLAIM_BIT = 34,
    TID_SHIFT = 35,
};

static uint64_t make_word(uint32_t generation, uint32_t phase, bool reclaim, pid_t borrower) {
    return (uint64_t)generation | ((uint64_t)phase << PHASE_SHIFT) | ((uint64_t)reclaim << RECLAIM_BIT) |
           ((uint64_t)(uint32_t)borrower << TID_SHIFT);
}

/// ASYNC-SIGNAL-SAFE.
uint64_t csignal_role_load(void) { return atomic_load_explicit(&role_word, memory_order_seq_cst); }

/// The transition table above, as code. ASYNC-SIGNAL-SAFE.
static bool legal(uint32_t from, uint32_t to, bool reclaim) {
    switch (from) {
    case CSIGNAL_ROLE_HOME: return to == CSIGNAL_ROLE_ASKED && !reclaim;
    case CSIGNAL_ROLE_ASKED: return to == CSIGNAL_ROLE_HOME || (to == CSIGNAL_ROLE_LENT && !reclaim);
    case CSIGNAL_ROLE_LENT: return to == CSIGNAL_ROLE_HOME || (to == CSIGNAL_ROLE_LAZY && !reclaim);
    case CSIGNAL_ROLE_LAZY: return to == CSIGNAL_ROLE_HOME || (to == CSIGNAL_ROLE_LENT && !reclaim);
    default: return false;
    }
}

/// ASYNC-SIGNAL-SAFE (never called from a handler today, but nothing here would forbid it).
bool csignal_role_move(uint64_t expected, uint32_t phase, pid_t borrower) {
    uint32_t from = csignal_role_phase(expected);
    bool reclaim = csignal_role_reclaiming(expected);
    if (!legal(from, phase, reclaim)) CSIGNAL_FATAL("illegal move of the wait role");
    if ((phase == CSIGNAL_ROLE_HOME) != (borrower == 0)) CSIGNAL_FATAL("the wait role at HOME has no borrower");
    uint64_t desired = make_word(csignal_role_generation(expected) + 1, phase, reclaim, borrower);
    if (!atomic_compare_exchange_strong_explicit(&role_word, &expected, desired, memory_order_seq_cst,
                                                 memory_order_seq_cst)) {
        return false;
    }
    // Someone may sleep on the word: a borrower waiting to be lent the role (LENT, or refused: HOME) and setup
    // waiting for HOME. Moves into LAZY or back out of it to the same borrower wake nobody: skip the call.
    if (phase == CSIGNAL_ROLE_HOME || from == CSIGNAL_ROLE_ASKED) csignal_futex_wake((_Atomic uint32_t *)&role_word);
    return true;
}

/// Sets or clears the reclaim flag, keeping phase and borrower. Setup only.
static void set_reclaim(bool on) {
    uint64_t word = csignal_role_load();
    for (;;) {
        if (csignal_role_reclaiming(word) == on) CSIGNAL_FATAL("wait role reclaim nested or unbalanced");
        uint64_t desired = make_word(csignal_role_generation(word) + 1, csignal_role_phase(word), on,
                                     csignal_role_borrower(word));
        if (atomic_compare_exchange_strong_explicit(&role_word, &word, desired, memory_order_seq_cst,
                                                    memory_order_seq_cst)) {
            csignal_futex_wake((_Atomic uint32_t *)&role_word);
            return;
        }
    }
}

/// NOT SAFE: ordinary threads.
int csignal_role_wait_change(uint64_t seen, int64_t timeout_ns) {
    // The futex compares the low 32 bits, the generation, which every change increments.
    return csignal_futex_wait((_Atomic uint32_t *)&role_word, (uint32_t)seen, timeout_ns);
}

/// ASYNC-SIGNAL-SAFE.
pid_t csignal_role_holder_tid(uint64_t word) {
    if (csignal_role_phase(word) == CSIGNAL_ROLE_LENT) return csignal_role_borrower(word);
    return atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire);
}

/// ASYNC-SIGNAL-SAFE.
void csignal_role_ring(void) {
    // seq_cst exchange, then seq_cst load of the role: see THE DRAIN FLAG above.
    if (atomic_exchange_explicit(&drain_pending, 1, memory_order_seq_cst) != 0) return;  // one is on its way
    CSIGNAL_INJECT("ring.before-read-role");
    if (csignal_doorbell(csignal_role_holder_tid(csignal_role_load())) != 0) {
        // ESRCH: no wait thread (stopping). Clear the flag so that the next record rings again.
        atomic_store_explicit(&drain_pending, 0, memory_order_seq_cst);
    }
}

/// ASYNC-SIGNAL-SAFE.
void csignal_role_acquired(void) { atomic_store_explicit(&drain_pending, 0, memory_order_seq_cst); }

/// ASYNC-SIGNAL-SAFE.
void csignal_engine_wake_holder(void) { csignal_role_ring(); }

/// NOT SAFE: setup only.
int csignal_role_reclaim(int64_t timeout_ns) {
    int64_t deadline = csignal_now_ns() + timeout_ns;
    set_reclaim(true);
    pid_t rung = 0;
    uint32_t rung_generation = 0;
    for (;;) {
        uint64_t word = csignal_role_load();
        if (csignal_role_phase(word) == CSIGNAL_ROLE_HOME) return 0;
        // ASKED: the wait thread refuses. LENT: the borrower's wait returns ECANCELED and it ends the borrow.
        // LAZY: the wait thread takes the role back. Ring whoever must act, once per change of the word.
        pid_t target = csignal_role_holder_tid(word);
        if (target != rung || csignal_role_generation(word) != rung_generation) {
            csignal_doorbell(target);
            rung = target;
            rung_generation = csignal_role_generation(word);
        }
        int64_t left = deadline - csignal_now_ns();
        if (left <= 0) {
            set_reclaim(false);
            return ETIMEDOUT;
        }
        csignal_role_wait_change(word, left);
    }
}

/// NOT SAFE: setup only.
void csignal_role_end_reclaim(void) { set_reclaim(false); }

/// Start, stop, and a forked child (one thread).
void csignal_role_reset(void) {
    atomic_store_explicit(&role_word, make_word(0, CSIGNAL_ROLE_HOME, false, 0), memory_order_seq_cst);
    atomic_store_explicit(&drain_pending, 0, memory_order_seq_cst);
}

bool csignal_holds_role(void) { return csignal_role_tid != 0; }
bool csignal_on_wait_thread(void) {
    return csignal_role_tid != 0 && csignal_role_tid == atomic_load(&csignal_waiter_tid_value);
}
pid_t csignal_engine_waiter_tid(void) { return atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire); }
