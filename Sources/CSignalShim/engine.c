// Start, watch, unwatch, stop: the engine's setup, each one a transaction.
//
// Each call first takes the wait role home (role.c: reclaim), so that the wait set, the wait thread's mask and
// the threads' masks change with one owner, and no borrow can begin meanwhile. Each step that can fail is undone
// when a later one fails, in reverse order, so that on error everything is as before and a retry does the
// whole job again.
//
//   watch:   handler installed (no delivery can meet the default action from here on)
//            -> wait thread waits for the new set and blocks it itself (acknowledged)
//            -> libdispatch's parked main thread taken over, if there is one (parker.c)
//            -> every other thread blocks it, recording its own previous state (masks.c)
//   unwatch: every thread gets its own previous state back (a delivery pending on a thread then runs the
//            still-installed fallback handler and is recorded, never a default action)
//            -> wait thread stops waiting for it (acknowledged)
//            -> running handlers finish -> previous dispositions back (unless someone replaced ours)
//   stop:    unwatch everything -> wait thread exits (joined) -> pending doorbells discarded, the internal
//            signal's disposition back
//
// NOT SAFE: setup only. The Swift engine serialises these calls with its lock.
#include "internal.h"

#include <unistd.h>

static int64_t setup_timeout_ns = 5000000000LL;

static void fail(csignal_status *status, int32_t code) { *status = (csignal_status){.code = code}; }

static void system_fail(csignal_status *status, const char *call, int err) {
    *status = (csignal_status){.code = CSIGNAL_E_SYSTEM, .err = err, .call = call};
}

/// The checks every running-engine setup call makes first. Returns false with *status set.
static bool may_change(csignal_status *status) {
    status->code = CSIGNAL_OK;
    if (!csignal_engine_running()) {
        fail(status, CSIGNAL_E_NOT_RUNNING);
        return false;
    }
    // A borrower is inside next(timeout:) and cannot be here. The wait thread can (an executor job): it applies
    // its own part of the change itself (csignal_waiter_apply).
    if (csignal_role_tid != 0 && !csignal_on_wait_thread()) {
        fail(status, CSIGNAL_E_ON_WAIT_THREAD);
        return false;
    }
    if (!csignal_internal_is_ours()) {
        *status = (csignal_status){.code = CSIGNAL_E_INTERNAL_TAKEN, .signo = csignal_internal_signo()};
        return false;
    }
    return true;
}

static bool reclaim(csignal_status *status) {
    if (csignal_role_reclaim(setup_timeout_ns) != 0) {
        fail(status, CSIGNAL_E_WAIT_THREAD_BUSY);
        return false;
    }
    return true;
}

void csignal_engine_start(const csignal_start_options *options, csignal_status *status) {
    status->code = CSIGNAL_OK;
    if (csignal_engine_running() || atomic_load(&csignal_waiter_tid_value) != 0) {
        fail(status, CSIGNAL_E_ALREADY_RUNNING);
        return;
    }
    uint32_t capacity = options->ring_capacity;
    if (capacity < 2 || capacity > CSIGNAL_RING_MAX_CAPACITY || (capacity & (capacity - 1)) != 0 ||
        options->batch_limit < 1 || options->batch_limit > 4096) {
        fail(status, CSIGNAL_E_INVALID);
        return;
    }
    atomic_store(&csignal_own_pid, getpid());
    csignal_ring_reset(capacity);
    csignal_role_reset();
    csignal_masks_reset();
    csignal_set_watched(0);
    csignal_internal_install(options->avoid, status);
    if (status->code != CSIGNAL_OK) return;
    const char *call = NULL;
    int err = csignal_waiter_start(options, &call);
    if (err != 0) {
        csignal_internal_restore();
        system_fail(status, call, err);
        return;
    }
    csignal_masks_last_result()->adopted_parker = 0;
    atomic_store_explicit(&csignal_running, true, memory_order_release);
}

/// Makes the wait thread use `watched` (setting it first). Returns false with *status set when it did not
/// answer in time; the set is then left as asked (the caller rolls back).
static bool apply_watched(uint64_t watched, csignal_status *status) {
    csignal_set_watched(watched);
    if (csignal_waiter_apply(setup_timeout_ns) != 0) {
        fail(status, CSIGNAL_E_WAIT_THREAD_BUSY);
        return false;
    }
    return true;
}

static void watch_reclaimed(uint64_t mask, csignal_status *status) {
    const uint64_t before = csignal_watched();
    const uint64_t after = before | mask;
    const uint64_t directed = csignal_thread_directed_class();
    csignal_dispositions_install(mask, status);
    if (status->code != CSIGNAL_OK) return;
    if (!apply_watched(after, status)) {
        csignal_set_watched(before);
        csignal_dispositions_restore(mask);
        return;
    }
    // Under an async @main the main thread sits in libdispatch's sigsuspend with an empty mask: take it over
    // before the spread, so that it blocks the new set like everyone else.
    csignal_spread_result *result = csignal_masks_last_result();
    pid_t parker = csignal_parker_adopt(100000000LL);
    csignal_masks_spread(after & ~directed, 0, setup_timeout_ns, status);
    result->adopted_parker = parker;
    if (status->code == CSIGNAL_OK) return;
    csignal_status ignored;
    csignal_masks_spread(before & ~directed, mask & ~directed, setup_timeout_ns, &ignored);
    csignal_set_watched(before);
    csignal_waiter_apply(setup_timeout_ns);
    csignal_wait_handlers_idle();
    csignal_dispositions_restore(mask);
    result->adopted_parker = parker;
}

void csignal_engine_watch(uint64_t mask, csignal_status *status) {
    if (!may_change(status)) return;
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        if ((mask & csignal_bit(s)) && csignal_watch_refusal(s) != 0) {
            *status = (csignal_status){.code = CSIGNAL_E_INVALID, .signo = s};
            return;
        }
    }
    mask &= ~csignal_watched();
    if (mask == 0) return;
    if (!reclaim(status)) return;
    watch_reclaimed(mask, status);
    csignal_role_end_reclaim();
}

static void unwatch_reclaimed(uint64_t mask, csignal_status *status) {
    const uint64_t before = csignal_watched();
    const uint64_t after = before & ~mask;
    const uint64_t directed = csignal_thread_directed_class();
    csignal_spread_result *result = csignal_masks_last_result();
    pid_t parker = result->adopted_parker;
    csignal_masks_spread(after & ~directed, mask & ~directed, setup_timeout_ns, status);
    result->adopted_parker = parker;
    if (status->code != CSIGNAL_OK) {
        csignal_status ignored;
        csignal_masks_spread(before & ~directed, 0, setup_timeout_ns, &ignored);
        result->adopted_parker = parker;
        return;
    }
    CSIGNAL_INJECT("unwatch.before-apply");
    if (!apply_watched(after, status)) {
        csignal_status ignored;
        csignal_set_watched(before);
        csignal_masks_spread(before & ~directed, 0, setup_timeout_ns, &ignored);
        result->adopted_parker = parker;
        return;
    }
    csignal_wait_handlers_idle();
    csignal_dispositions_restore(mask);
}

void csignal_engine_unwatch(uint64_t mask, csignal_status *status) {
    if (!may_change(status)) return;
    mask &= csignal_watched();
    if (mask == 0) return;
    if (!reclaim(status)) return;
    unwatch_reclaimed(mask, status);
    csignal_role_end_reclaim();
}

void csignal_engine_stop(csignal_status *status) {
    status->code = CSIGNAL_OK;
    if (!csignal_engine_running()) {
        fail(status, CSIGNAL_E_NOT_RUNNING);
        return;
    }
    if (csignal_role_tid != 0) {  // the wait thread cannot wait for itself to exit
        fail(status, CSIGNAL_E_ON_WAIT_THREAD);
        return;
    }
    if (!reclaim(status)) return;
    uint64_t watched = csignal_watched();
    if (watched != 0) {
        if (!csignal_internal_is_ours()) {
            *status = (csignal_status){.code = CSIGNAL_E_INTERNAL_TAKEN, .signo = csignal_internal_signo()};
            // Without our doorbell handler no thread can be asked to change its mask; stop still must not
            // leave the engine half torn down, so it refuses before touching anything.
            csignal_role_end_reclaim();
            return;
        }
        unwatch_reclaimed(watched, status);
        if (status->code != CSIGNAL_OK) {
            csignal_role_end_reclaim();
            return;
        }
    }
    CSIGNAL_INJECT("stop.before-waiter-exit");
    if (csignal_waiter_stop(setup_timeout_ns) != 0) {
        // Stuck in an executor job: the engine keeps running, watching nothing; stop can be called again.
        fail(status, CSIGNAL_E_WAIT_THREAD_BUSY);
        csignal_role_end_reclaim();
        return;
    }
    atomic_store_explicit(&csignal_running, false, memory_order_release);
    csignal_wait_handlers_idle();
    csignal_internal_restore();
    csignal_masks_reset();
    csignal_role_reset();
}

#ifdef CSIGNAL_TESTING
void csignal_test_set_setup_timeout(int64_t ns) { setup_timeout_ns = ns; }
#endif
