// The wait thread: the main route from the kernel to the recorder.
//
// It blocks every signal and sleeps in sigwaitinfo() on the watched set plus the engine's internal signal, with
// no timeout: an idle engine causes no wake-ups at all. When a watched signal arrives it records it, takes
// whatever else is already pending without sleeping (sigtimedwait with a zero timeout) up to the batch limit,
// and then calls the notify function once: the Swift engine drains the ring there. That call happens on this
// ordinary thread, never in handler context.
//
// The internal signal, sent to this thread with tgkill, means "look again": the watched set changed, a handler
// on another thread recorded something, or stop was requested.
#include "internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Atomic uint64_t csignal_watched_mask = 0;
_Atomic pid_t csignal_waiter_tid_value = 0;
_Atomic pid_t csignal_own_pid = 0;

static pthread_t waiter_thread;
static _Atomic bool running = false;
static _Atomic bool stop_requested = false;
// A handler sets this before poking, the waiter clears it before it drains (see csignal_fallback_handler).
static _Atomic int poke_pending = 0;
// Watched-set generations: setup bumps `requested`, the waiter publishes what it uses in `applied`.
static _Atomic uint32_t requested_generation = 0;
static _Atomic uint32_t applied_generation = 0;
static _Atomic uint32_t waiter_started = 0;

static csignal_notify_fn notify_fn = NULL;
static void *notify_context = NULL;
static uint32_t batch_limit = 64;

int64_t csignal_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int csignal_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, &ts, NULL, 0);
    return r == 0 ? 0 : errno;
}

void csignal_futex_wake(_Atomic uint32_t *word) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/// ASYNC-SIGNAL-SAFE: an atomic exchange and the raw tgkill system call.
static int poke(void) {
    pid_t tid = atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire);
    if (tid <= 0) return ESRCH;
    pid_t pid = atomic_load_explicit(&csignal_own_pid, memory_order_relaxed);
    if (syscall(SYS_tgkill, pid, tid, csignal_internal_signo()) != 0) return errno;
    return 0;
}

/// NOT SAFE: setup only. poke(), retrying while the kernel refuses with EAGAIN. The internal signal is a
/// real-time signal, and the kernel's queue for those (RLIMIT_SIGPENDING) is shared by every process of the
/// same user: another program that lets signals pile up can fill it, and a single refused poke would then
/// fail start, watch, unwatch or stop (stop would leave the wait thread running). Bounded: 5 s.
static int poke_from_setup(void) {
    int64_t deadline = csignal_now_ns() + 5000000000LL;
    for (;;) {
        int err = poke();
        if (err != EAGAIN || csignal_now_ns() > deadline) return err;
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
}

/// ASYNC-SIGNAL-SAFE.
void csignal_wake_waiter(void) {
    // acq_rel: the acquire half orders this after our record's publication for the waiter that clears the flag
    // (it clears with acq_rel too); the release half publishes the record to it.
    if (atomic_exchange_explicit(&poke_pending, 1, memory_order_acq_rel) == 0) {
        if (poke() != 0) {
            // The kernel refused the poke (its real-time queue is full, RLIMIT_SIGPENDING). Clear the flag so
            // that the next delivery tries again; the wait thread is awake anyway while signals are queued.
            atomic_store_explicit(&poke_pending, 0, memory_order_release);
        }
    }
}

static void build_wait_set(sigset_t *set) {
    sigemptyset(set);
    uint64_t mask = atomic_load_explicit(&csignal_watched_mask, memory_order_acquire);
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        if (mask & csignal_bit(s)) sigaddset(set, s);
    }
    sigaddset(set, csignal_internal_signo());
}

static void *waiter_main(void *unused) {
    (void)unused;
    pthread_setname_np(pthread_self(), "signalcore");
    atomic_store_explicit(&csignal_waiter_tid_value, (pid_t)syscall(SYS_gettid), memory_order_release);
    atomic_store_explicit(&waiter_started, 1, memory_order_release);
    csignal_futex_wake(&waiter_started);

    const int internal = csignal_internal_signo();
    const pid_t pid = atomic_load_explicit(&csignal_own_pid, memory_order_relaxed);
    const struct timespec zero = {0, 0};
    uint32_t have_generation = UINT32_MAX;
    sigset_t set;
    siginfo_t info;

    for (;;) {
        uint32_t generation = atomic_load_explicit(&requested_generation, memory_order_acquire);
        if (generation != have_generation) {
            build_wait_set(&set);
            have_generation = generation;
            atomic_store_explicit(&applied_generation, generation, memory_order_release);
            csignal_futex_wake(&applied_generation);
        }

        int signo = sigwaitinfo(&set, &info);
        if (signo < 0) {
            if (errno == EINTR) continue;
            CSIGNAL_FATAL("sigwaitinfo failed in the wait thread");
        }

        bool notify = false;
        uint32_t taken = 0;
        for (;;) {
            if (signo == internal) {
                if (info.si_pid == pid) {
                    // Clear before draining: see csignal_fallback_handler for the race this ordering closes.
                    atomic_exchange_explicit(&poke_pending, 0, memory_order_acq_rel);
                    notify = true;
                }
            } else {
                csignal_record_delivery(signo, &info, CSIGNAL_ROUTE_WAITER);
                notify = true;
                taken++;
            }
            if (taken >= batch_limit) break;
            if (atomic_load_explicit(&requested_generation, memory_order_acquire) != have_generation) break;
            signo = sigtimedwait(&set, &info, &zero);
            if (signo < 0) break;  // EAGAIN: nothing else pending
        }
        if (notify && notify_fn != NULL) notify_fn(notify_context);
        if (atomic_load_explicit(&stop_requested, memory_order_acquire)) break;
    }
    atomic_store_explicit(&csignal_waiter_tid_value, 0, memory_order_release);
    return NULL;
}

int csignal_waiter_apply_watched(void) {
    uint32_t generation = atomic_fetch_add_explicit(&requested_generation, 1, memory_order_acq_rel) + 1;
    int err = poke_from_setup();
    if (err != 0) return err;
    int64_t deadline = csignal_now_ns() + 5000000000LL;
    for (;;) {
        uint32_t applied = atomic_load_explicit(&applied_generation, memory_order_acquire);
        if ((int32_t)(applied - generation) >= 0) return 0;
        int64_t left = deadline - csignal_now_ns();
        if (left <= 0) return ETIMEDOUT;
        csignal_futex_wait(&applied_generation, applied, left);
    }
}

extern int csignal_install_internal(void);
extern int csignal_restore_internal(void);

int csignal_engine_start(const csignal_start_options *options, const char **failed_call) {
    *failed_call = "csignal_engine_start";
    if (atomic_load_explicit(&running, memory_order_acquire)) return EALREADY;
    uint32_t capacity = options->ring_capacity;
    if (capacity < 2 || capacity > CSIGNAL_RING_MAX_CAPACITY || (capacity & (capacity - 1)) != 0) return EINVAL;

    csignal_ring_reset(capacity);
    notify_fn = options->notify;
    notify_context = options->notify_context;
    batch_limit = options->batch_limit == 0 ? 1 : options->batch_limit;
    atomic_store(&csignal_own_pid, getpid());
    atomic_store(&stop_requested, false);
    atomic_store(&poke_pending, 0);
    atomic_store(&csignal_watched_mask, 0);
    atomic_store(&waiter_started, 0);

    int err = csignal_install_internal();
    if (err != 0) {
        *failed_call = "sigaction";
        return err;
    }

    // The wait thread inherits a full mask: it must never run a handler, ours or anyone's.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&waiter_thread, NULL, waiter_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        csignal_restore_internal();
        *failed_call = "pthread_create";
        return err;
    }
    while (atomic_load_explicit(&waiter_started, memory_order_acquire) == 0) {
        csignal_futex_wait(&waiter_started, 0, 1000000000);
    }
    atomic_store_explicit(&running, true, memory_order_release);
    return 0;
}

int csignal_engine_stop(const char **failed_call) {
    *failed_call = "csignal_engine_stop";
    if (!atomic_load_explicit(&running, memory_order_acquire)) return ESRCH;
    uint64_t watched = atomic_load(&csignal_watched_mask);
    int err = csignal_engine_unwatch(watched, failed_call);
    if (err != 0) return err;

    atomic_store_explicit(&stop_requested, true, memory_order_release);
    err = poke_from_setup();
    if (err != 0) {
        *failed_call = "tgkill";
        return err;
    }
    pthread_join(waiter_thread, NULL);
    csignal_wait_handlers_idle();
    csignal_restore_internal();
    atomic_store_explicit(&running, false, memory_order_release);
    return 0;
}

void csignal_waiter_forget_after_fork(void) {
    atomic_store_explicit(&csignal_watched_mask, 0, memory_order_relaxed);
    atomic_store_explicit(&csignal_waiter_tid_value, 0, memory_order_relaxed);
    atomic_store_explicit(&poke_pending, 0, memory_order_relaxed);
    atomic_store_explicit(&running, false, memory_order_release);
}

bool csignal_engine_running(void) { return atomic_load_explicit(&running, memory_order_acquire); }
uint64_t csignal_engine_watched(void) { return atomic_load_explicit(&csignal_watched_mask, memory_order_acquire); }
pid_t csignal_engine_waiter_tid(void) {
    return atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire);
}

void csignal_wait_handlers_idle(void) {
    int64_t deadline = csignal_now_ns() + 2000000000LL;
    while (atomic_load_explicit(&csignal_handlers_active, memory_order_acquire) != 0) {
        if (csignal_now_ns() > deadline) return;
        sched_yield();
    }
}
