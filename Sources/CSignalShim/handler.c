// ┌──────────────────────────────────────────────────────────────────────────────────────────────────────────┐
// │ SIGNALS AND THREADS IN A SIGNALCORE PROCESS                                                                │
// │                                                                                                            │
// │ While the engine runs, every watched signal is blocked in every thread, and one thread of ours (the wait   │
// │ thread, "signalcore") takes them off the kernel's queue with sigwaitinfo. Blocked signals are not lost:    │
// │ the kernel keeps standard signals as one pending bit each and queues real-time signals with their values. │
// │                                                                                                            │
// │ Some deliveries still reach another thread: a thread that unblocked a watched signal itself, a thread that │
// │ was created with a mask we never saw, a thread parked in sigsuspend() with an empty mask (libdispatch     │
// │ parks the main thread of an async `@main` that way), or a signal sent to one thread with tgkill. For them │
// │ the watched signals carry csignal_fallback_handler below, which feeds the same recorder as the wait       │
// │ thread and then asks the wait thread to tell Swift. Without it, such a delivery would run the default     │
// │ action: for SIGTERM, SIGINT, SIGHUP, SIGUSR1/2 and every real-time signal, that kills the process.        │
// │                                                                                                            │
// │ HANDLER CONTEXT: the code in this file runs between two arbitrary instructions of the interrupted thread.  │
// │ It MAY: use lock-free atomics, read/write errno (saved and restored), call clock_gettime, getpid,          │
// │   memcpy, sigaddset/sigdelset, sem_post, write, abort, the raw gettid and tgkill system calls              │
// │   (syscall), and read SIGRTMAX (glibc's __libc_current_sigrtmax returns an int set before main).           │
// │ It MUST NEVER: allocate (malloc, Swift objects), take a lock (pthread_mutex, Swift Mutex, stdio's locks),   │
// │   call printf or any stdio, call into Swift, wait for another thread, or loop without a bound.            │
// │ scripts/audit-handler checks the compiled code against this list.                                          │
// └──────────────────────────────────────────────────────────────────────────────────────────────────────────┘
#include "internal.h"

#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

_Atomic int csignal_handlers_active = 0;
_Atomic uint64_t csignal_spread_block = 0;
_Atomic uint64_t csignal_spread_unblock = 0;
_Atomic uint32_t csignal_spread_acks = 0;
_Atomic int csignal_spread_active = 0;

static _Atomic bool clobber_errno_for_test = false;

/// Saves errno on entry and puts it back on every exit path (the cleanup attribute runs on any return).
/// ASYNC-SIGNAL-SAFE.
static inline void restore_errno(const int *saved) { errno = *saved; }
#define CSIGNAL_ERRNO_GUARD __attribute__((cleanup(restore_errno))) const int csignal_saved_errno = errno

/// Counts the handler as running so that stop can wait for it before it tears anything down.
/// ASYNC-SIGNAL-SAFE.
static inline void handler_enter(void) {
    // acq_rel: pairs with the acquire load in csignal_wait_handlers_idle, so stop sees our exit only after
    // every write we made.
    atomic_fetch_add_explicit(&csignal_handlers_active, 1, memory_order_acq_rel);
}
static inline void handler_exit(const int *unused) {
    (void)unused;
    atomic_fetch_sub_explicit(&csignal_handlers_active, 1, memory_order_acq_rel);
}
#define CSIGNAL_HANDLER_SCOPE \
    handler_enter(); \
    __attribute__((cleanup(handler_exit))) const int csignal_scope_marker = 0; \
    (void)csignal_scope_marker

/// The fallback route for a watched signal delivered to a thread other than the wait thread.
/// ASYNC-SIGNAL-SAFE.
void csignal_fallback_handler(int signo, siginfo_t *info, void *ucontext) {
    (void)ucontext;
    CSIGNAL_ERRNO_GUARD;
    CSIGNAL_HANDLER_SCOPE;

    // Order matters: record first (counter and ring slot published with release stores), then wake the wait
    // thread. The wait thread clears its "poked" flag before it drains, so a record published after the drain
    // began always finds the flag clear and sends a new poke: no record can sit unnoticed in the ring.
    csignal_record_delivery(signo, info, CSIGNAL_ROUTE_HANDLER, NULL);
    csignal_wake_waiter();

#ifdef CSIGNAL_AUDIT_BROKEN_HANDLER
    // Deliberately unsafe, for the audit's self-test only (scripts/audit-handler --self-test builds with it).
    extern int printf(const char *, ...);
    printf("unsafe\n");
#endif

    if (atomic_load_explicit(&clobber_errno_for_test, memory_order_relaxed)) {
        errno = EDOM;  // the guard must undo this
    }
}

/// The internal signal's handler. Its operation code comes with the siginfo:
///   - SI_QUEUE from this process with a CSIGNAL_DUMP_TAG value: capture this thread's stack (dump.c);
///   - anything else: the mask spread, below, unchanged: applies the pending mask change to the interrupted
///     thread (the kernel installs uc_sigmask as the thread's mask when the handler returns, which is the only
///     way to change another thread's mask). Spread requests come from tgkill (SI_TKILL, si_value 0), so they
///     never match the capture test.
/// ASYNC-SIGNAL-SAFE.
void csignal_internal_handler(int signo, siginfo_t *info, void *ucontext) {
    (void)signo;
    CSIGNAL_ERRNO_GUARD;
    CSIGNAL_HANDLER_SCOPE;

    if (info != NULL && info->si_code == SI_QUEUE && info->si_pid == getpid() &&
        csignal_dump_is_request(info->si_value.sival_int)) {
        csignal_dump_capture(info->si_value.sival_int, ucontext);
        return;
    }

    // Only our own spreader's requests count: a foreign sender of this signal is ignored.
    if (info == NULL || info->si_code != SI_TKILL || info->si_pid != getpid()) return;
    if (!atomic_load_explicit(&csignal_spread_active, memory_order_acquire)) return;

    // acquire: pairs with the spreader's release store of the masks before it sets spread_active.
    uint64_t block = atomic_load_explicit(&csignal_spread_block, memory_order_acquire);
    uint64_t unblock = atomic_load_explicit(&csignal_spread_unblock, memory_order_acquire);
    ucontext_t *uc = (ucontext_t *)ucontext;
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        if (block & csignal_bit(s)) sigaddset(&uc->uc_sigmask, s);
        else if (unblock & csignal_bit(s)) sigdelset(&uc->uc_sigmask, s);
    }
    // release: the spreader reads the count with acquire and then trusts that this thread is done.
    atomic_fetch_add_explicit(&csignal_spread_acks, 1, memory_order_release);
}

/// ASYNC-SIGNAL-SAFE.
_Noreturn void csignal_fatal(const char *message, unsigned long length) {
    static const char prefix[] = "SignalCore fatal error: ";
    ssize_t ignored = write(2, prefix, sizeof(prefix) - 1);
    ignored = write(2, message, length);
    ignored = write(2, "\n", 1);
    (void)ignored;
    abort();
}

void csignal_test_set_clobber_errno(bool on) {
    atomic_store_explicit(&clobber_errno_for_test, on, memory_order_relaxed);
}
