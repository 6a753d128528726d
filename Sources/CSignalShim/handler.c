// ┌──────────────────────────────────────────────────────────────────────────────────────────────────────────┐
// │ SIGNALS AND THREADS IN A SIGNALCORE PROCESS                                                                │
// │                                                                                                            │
// │ While the engine runs, every watched signal is blocked in every thread, and one thread of ours (the one    │
// │ that holds the wait role: the wait thread "signalcore", or a borrower) takes them off the kernel's queue   │
// │ with sigwaitinfo. Blocked signals are not lost: the kernel keeps standard signals as one pending bit each  │
// │ and queues real-time signals with their values.                                                            │
// │                                                                                                            │
// │ Some deliveries still reach another thread: SIGPIPE and SIGXFSZ, which the kernel raises in the thread     │
// │ that wrote (the engine never blocks them); a thread that unblocked a watched signal itself; a thread that  │
// │ waits with a temporary mask (sigsuspend, ppoll). For them the watched signals carry                        │
// │ csignal_fallback_handler below, which feeds the same recorder and rings the role holder to tell Swift.     │
// │ Without it, such a delivery would run the default action: for SIGTERM, SIGINT, SIGHUP, SIGUSR1/2 and      │
// │ every real-time signal, that kills the process.                                                            │
// │                                                                                                            │
// │ The internal signal is a doorbell (send.c): its handler re-reads shared state and acts on what concerns   │
// │ this thread: a mask change (masks.c), libdispatch's parked main thread (parker.c), a stack capture         │
// │ (dump.c).                                                                                                  │
// │                                                                                                            │
// │ HANDLER CONTEXT: the code in this file runs between two arbitrary instructions of the interrupted thread.  │
// │ It MAY: use lock-free atomics, read/write errno (saved and restored), call clock_gettime, getpid,          │
// │   memcpy/memset, sigaddset/sigdelset/sigismember/sigemptyset, write, abort, and the raw gettid, tgkill,   │
// │   timer_settime, futex(FUTEX_WAKE) and process_vm_readv system calls (syscall).                            │
// │ It MUST NEVER: allocate (malloc, Swift objects), take a lock (pthread_mutex, Swift Mutex, stdio's locks),   │
// │   call printf or any stdio, call into Swift, wait for another thread, or loop without a bound.            │
// │ scripts/audit-handler checks the compiled code against this list.                                          │
// └──────────────────────────────────────────────────────────────────────────────────────────────────────────┘
#include "internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

_Atomic int csignal_handlers_active = 0;

/// Saves errno on entry and puts it back on every exit path (the cleanup attribute runs on any return).
/// ASYNC-SIGNAL-SAFE.
static inline void restore_errno(const int *saved) { errno = *saved; }
#define CSIGNAL_ERRNO_GUARD __attribute__((cleanup(restore_errno))) const int csignal_saved_errno = errno

/// Counts the handler as running so that setup can wait for it before it tears anything down.
/// ASYNC-SIGNAL-SAFE.
static inline void handler_enter(void) {
    // acq_rel: pairs with the acquire load in csignal_wait_handlers_idle, so setup sees our exit only after
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

/// The fallback route for a watched signal delivered to a thread that does not hold the wait role.
/// ASYNC-SIGNAL-SAFE.
void csignal_fallback_handler(int signo, siginfo_t *info, void *ucontext) {
    CSIGNAL_ERRNO_GUARD;
    CSIGNAL_HANDLER_SCOPE;

    // Order matters: record first (counter and ring slot published with release stores), then ring the holder.
    // The holder clears the drain flag before it pumps, so a record published after its pump began finds the
    // flag clear and rings again: no record can sit unnoticed in the ring (role.c, THE DRAIN FLAG).
    csignal_record_delivery(signo, info, CSIGNAL_ROUTE_HANDLER);
    CSIGNAL_INJECT("fallback.after-record");
    csignal_parker_hint(csignal_gettid(), ucontext);  // before the ring: the wait thread looks when it wakes for it
    csignal_role_ring();

#ifdef CSIGNAL_AUDIT_BROKEN_HANDLER
    // Deliberately unsafe, for the audit's self-test only (scripts/audit-handler --self-test builds with it).
    extern int printf(const char *, ...);
    printf("unsafe\n");
#endif
#ifdef CSIGNAL_TESTING
    extern _Atomic int csignal_test_clobber_errno;
    if (atomic_load_explicit(&csignal_test_clobber_errno, memory_order_relaxed)) errno = EDOM;  // the guard undoes it
#endif
}

/// The internal signal's handler: a doorbell reached a thread that does not wait for it with sigwaitinfo.
/// Everything it does depends on shared state, never on who rang or why (send.c, THE DOORBELL).
/// ASYNC-SIGNAL-SAFE.
void csignal_internal_handler(int signo, siginfo_t *info, void *ucontext) {
    (void)signo;
    (void)info;
    CSIGNAL_ERRNO_GUARD;
    CSIGNAL_HANDLER_SCOPE;
    if (ucontext == NULL) return;
    pid_t self = csignal_gettid();
    csignal_dump_maybe_capture(ucontext, self);
    // The adopted parker keeps its own mask in its loop (parker.c); everyone else applies the mask request.
    csignal_parker_maybe_take(ucontext, self);
    if (self == csignal_parker_tid()) return;
    csignal_masks_apply(&((ucontext_t *)ucontext)->uc_sigmask, self);
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

/// NOT SAFE: setup only.
void csignal_wait_handlers_idle(void) {
    int64_t deadline = csignal_now_ns() + 2000000000LL;
    while (atomic_load_explicit(&csignal_handlers_active, memory_order_acquire) != 0) {
        if (csignal_now_ns() > deadline) return;
        sched_yield();
    }
}
