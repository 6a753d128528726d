// The recorder: exact per-signal counters, and one record per delivery appended to the ring (ring.c).
//
// Every route ends here: the role holder after sigwaitinfo, and the fallback handler on any other thread.
// Counters are exact whatever happens to the record: a record the full ring refuses is counted as dropped.
//
// Atomic orderings: `delivered` is incremented with release after the record is published, and read with
// acquire by pollers (csignal_delivered), so a poller that sees N deliveries finds their records in the ring
// (or counted as dropped). The other counters are statistics: relaxed.
#include "internal.h"

#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

csignal_counter_line csignal_counter_table[128] __attribute__((aligned(64)));
static _Alignas(64) _Atomic uint64_t dropped_total = 0;

/// ASYNC-SIGNAL-SAFE: clock_gettime, the raw gettid system call, lock-free atomics, a bounded ring push.
void csignal_record_delivery(int signo, const siginfo_t *info, int route) {
    if (signo < 1 || signo > CSIGNAL_MAX_SIGNO) return;
    csignal_counter_line *line = &csignal_counter_table[signo];

    csignal_record record;
    record.sequence = 0;
    record.time_ns = csignal_now_ns();
    record.value_ptr = (uint64_t)(uintptr_t)info->si_value.sival_ptr;
    record.signo = signo;
    record.code = info->si_code;
    record.pid = info->si_pid;
    record.uid = info->si_uid;
    record.value_int = info->si_value.sival_int;
    record.route = route;
    record.reserved = 0;
    // The role holder knows its id; another thread asks the kernel (no lock, errno only on failure).
    record.tid = route == CSIGNAL_ROUTE_WAITER && csignal_role_tid != 0 ? csignal_role_tid
                                                                        : (int32_t)syscall(SYS_gettid);

    if (!csignal_ring_push(&record)) {
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

/// ASYNC-SIGNAL-SAFE.
uint64_t csignal_ring_dropped_total(void) {
    return atomic_load_explicit(&dropped_total, memory_order_relaxed);
}
