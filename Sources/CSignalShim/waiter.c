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
/// Set on the thread that holds the wait role (the wait thread, or a borrower): its kernel thread id.
_Thread_local pid_t csignal_role_tid = 0;

static pthread_t waiter_thread;
static _Atomic bool running = false;
static _Atomic bool stop_requested = false;
// A handler sets this before poking, the role holder clears it before it drains (see csignal_fallback_handler).
static _Atomic int poke_pending = 0;
// Watched-set generations: setup bumps `requested`, the waiter publishes what it uses in `applied`.
static _Atomic uint32_t requested_generation = 0;
static _Atomic uint32_t applied_generation = 0;
static _Atomic uint32_t waiter_started = 0;
static _Atomic uint32_t waiter_exited = 0;

// THE WAIT ROLE
// Exactly one thread at a time sleeps in sigwaitinfo for the watched set: normally the wait thread. A thread
// that blocks in SignalSubscription.next(timeout:) may borrow the role, so that the kernel wakes *it*: one
// wake-up from send to caller instead of two (wait thread, then the caller). Meanwhile the wait thread waits for
// the internal signal only. After handing over an event the borrower keeps the role for a lease (LAZY); the
// lease timer, or a poke, lets the wait thread take it back. Setup (watch, unwatch, stop) always takes the role
// back first, so the wait set and the wait thread's acknowledgements keep one owner.
//
//   WAITER --borrow_begin (CAS)--> REQUESTED --wait thread lends--> LENT --borrow_end--> WAITER
//                                                                   LENT --borrow_end_lazily--> LAZY
//   LAZY --same borrower is back (CAS)--> LENT        LAZY --lease timer, poke or setup (CAS)--> WAITER
//
// Orderings: role, borrower_tid and lazy_owner are seq_cst, so that a handler that pokes "the role holder"
// after its poke_pending exchange reads the role no earlier than the holder that cleared poke_pending (see
// poke_role), and so that a lease is never re-entered after the wait thread took it back.
enum { ROLE_WAITER = 0, ROLE_REQUESTED = 1, ROLE_LENT = 2, ROLE_LAZY = 3 };
static _Atomic uint32_t role = ROLE_WAITER;
// LAZY: the borrower returned an event and may be back for the next one within the lease. It keeps the role
// without anyone waiting in sigwaitinfo; the lease timer (a POSIX timer that sends the internal signal to the
// wait thread: its signal is preallocated by the kernel, so it never meets RLIMIT_SIGPENDING) wakes the wait
// thread, which takes the role back unless the borrower returned first.
static _Atomic pid_t lazy_owner = 0;
static timer_t lease_timer;
static bool lease_timer_created = false;
enum { LEASE_NS = 1000000 };
static _Atomic pid_t borrower_tid = 0;
static _Atomic uint32_t reclaim_requested = 0;
static _Thread_local sigset_t borrower_saved_mask;

static csignal_notify_fn notify_fn = NULL;
static void *notify_context = NULL;
static uint32_t batch_limit = 64;

bool csignal_on_wait_thread(void) { return csignal_role_tid != 0; }

int64_t csignal_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int csignal_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, timeout_ns < 0 ? NULL : &ts,
                     NULL, 0);
    return r == 0 ? 0 : errno;
}

void csignal_futex_wake(_Atomic uint32_t *word) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/// Sends the internal signal to one thread of ours. ASYNC-SIGNAL-SAFE: the raw tgkill system call.
static int poke_thread(pid_t tid) {
    if (tid <= 0) return ESRCH;
    pid_t pid = atomic_load_explicit(&csignal_own_pid, memory_order_relaxed);
    if (syscall(SYS_tgkill, pid, tid, csignal_internal_signo()) != 0) return errno;
    return 0;
}

/// For setup and borrowers, which may wait: retries while the kernel's real-time queue is full (EAGAIN:
/// RLIMIT_SIGPENDING counts every pending queued signal of this user, other processes' included), up to 5 s.
/// NOT SAFE: ordinary threads only.
int csignal_poke_thread_patiently(pid_t tid) {
    int64_t deadline = csignal_now_ns() + 5000000000LL;
    for (;;) {
        int err = poke_thread(tid);
        if (err != EAGAIN || csignal_now_ns() > deadline) return err;
        struct timespec pause = {0, 100000};
        nanosleep(&pause, NULL);
    }
}

/// Whether what a setup step waits for has happened.
typedef bool (*wait_done_fn)(const void *context);

/// Pokes `tid` once and waits on the futex `word` until `done` holds. While the kernel refuses the poke (EAGAIN:
/// the per-user real-time queue is full) it tries again every millisecond — but stops as soon as `done` holds,
/// since the target, awake anyway while signals are queued, may get there without the poke. Returns 0, the
/// poke's errno, or ETIMEDOUT. NOT SAFE: ordinary threads only.
static int poke_until(pid_t tid, _Atomic uint32_t *word, wait_done_fn done, const void *context, int64_t timeout_ns) {
    int64_t deadline = csignal_now_ns() + timeout_ns;
    bool poked = false;
    for (;;) {
        uint32_t seen = atomic_load_explicit(word, memory_order_seq_cst);
        if (done(context)) return 0;
        if (!poked) {
            int err = poke_thread(tid);
            if (err == 0) {
                poked = true;
            } else if (err != EAGAIN) {
                return err;
            }
        }
        int64_t left = deadline - csignal_now_ns();
        if (left <= 0) return ETIMEDOUT;
        csignal_futex_wait(word, seen, poked || left < 1000000 ? left : 1000000);
    }
}

/// Pokes whichever thread holds the wait role now. ASYNC-SIGNAL-SAFE.
static int poke_role(void) {
    if (atomic_load_explicit(&role, memory_order_seq_cst) == ROLE_LENT) {
        pid_t borrower = atomic_load_explicit(&borrower_tid, memory_order_seq_cst);
        if (borrower > 0) return poke_thread(borrower);
    }
    return poke_thread(atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire));
}

/// ASYNC-SIGNAL-SAFE.
void csignal_wake_waiter(void) {
    // seq_cst exchange: publishes our record (published before it) to the role holder that clears the flag,
    // and orders our read of the role after that holder's (see THE WAIT ROLE).
    if (atomic_exchange_explicit(&poke_pending, 1, memory_order_seq_cst) == 0) {
        if (poke_role() != 0) {
            // The kernel refused the poke (its real-time queue is full, RLIMIT_SIGPENDING). Clear the flag so
            // that the next delivery tries again; the role holder is awake anyway while signals are queued.
            atomic_store_explicit(&poke_pending, 0, memory_order_release);
        }
    }
}

/// ASYNC-SIGNAL-SAFE.
void csignal_engine_poke(void) { csignal_wake_waiter(); }

static void build_wait_set(sigset_t *set) {
    sigemptyset(set);
    uint64_t mask = atomic_load_explicit(&csignal_watched_mask, memory_order_acquire);
    for (int s = 1; s <= CSIGNAL_MAX_SIGNO; s++) {
        if (mask & csignal_bit(s)) sigaddset(set, s);
    }
    sigaddset(set, csignal_internal_signo());
}

/// What a borrower wants handed back directly: the first delivery of a signal in `mask`.
typedef struct direct_request {
    uint64_t mask;
    csignal_record *record;
    bool matched;
} direct_request;

/// One batch, for whichever thread holds the wait role: waits for the first delivery (forever when `timeout` is
/// NULL), records it, then takes what is already pending without sleeping, until `limit` deliveries are
/// recorded. Sets *notify when something was recorded or a poke arrived. With a `direct` request, the batch ends
/// at the first delivery the borrower waits for, and a copy of its record goes straight back to it. Returns 0, or
/// the errno of the first wait (EAGAIN: timed out or nothing pending, EINTR: interrupted).
static int take_batch(const sigset_t *set, const struct timespec *timeout, uint32_t have_generation, uint32_t limit,
                      bool *notify, direct_request *direct) {
    static const struct timespec zero = {0, 0};
    const int internal = csignal_internal_signo();
    const pid_t pid = atomic_load_explicit(&csignal_own_pid, memory_order_relaxed);
    siginfo_t info;
    int signo = timeout == NULL ? sigwaitinfo(set, &info) : sigtimedwait(set, &info, timeout);
    if (signo < 0) return errno;
    uint32_t taken = 0;
    for (;;) {
        if (signo == internal) {
            if (info.si_pid == pid) {
                // Clear before draining: see csignal_fallback_handler for the race this ordering closes.
                atomic_exchange_explicit(&poke_pending, 0, memory_order_seq_cst);
                *notify = true;
            }
        } else if (direct != NULL && (direct->mask & csignal_bit(signo))) {
            csignal_record_delivery(signo, &info, CSIGNAL_ROUTE_WAITER, direct->record);
            direct->matched = true;
            // No *notify for it: the caller has it, and the ring copy is handed to the others by whoever
            // drains next (the wait thread always drains when it takes its role back).
            return 0;  // straight back to the waiting caller; the ring keeps the rest for the next hand-over
        } else {
            csignal_record_delivery(signo, &info, CSIGNAL_ROUTE_WAITER, NULL);
            *notify = true;
            taken++;
        }
        if (taken >= limit) break;
        if (atomic_load_explicit(&requested_generation, memory_order_acquire) != have_generation) break;
        signo = sigtimedwait(set, &info, &zero);
        if (signo < 0) break;  // EAGAIN: nothing else pending
    }
    return 0;
}

/// Arms the lease timer to fire in `ns` nanoseconds (0 disarms it). NOT SAFE: ordinary threads.
static void arm_lease_timer(long ns) {
    if (!lease_timer_created) return;
    struct itimerspec when = {.it_interval = {0, 0}, .it_value = {ns / 1000000000, ns % 1000000000}};
    timer_settime(lease_timer, 0, &when, NULL);
}

/// Wakes the wait thread while it lends its role; never refused (the timer's signal is preallocated).
static void wake_lender(void) {
    if (lease_timer_created) {
        arm_lease_timer(1);
    } else {
        poke_thread(atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire));
    }
}

/// The wait thread lends its role: it waits for the internal signal only (a poke, or the lease timer) until the
/// role comes back, or takes it back itself from a borrower whose lease ran out. Idle cost: none.
static void lend_role(void) {
    uint32_t expected = ROLE_REQUESTED;
    if (!atomic_compare_exchange_strong_explicit(&role, &expected, ROLE_LENT, memory_order_seq_cst,
                                                 memory_order_seq_cst)) {
        return;  // the borrower gave up waiting
    }
    csignal_futex_wake(&role);
    sigset_t internal_only;
    sigemptyset(&internal_only);
    sigaddset(&internal_only, csignal_internal_signo());
    for (;;) {
        uint32_t current = atomic_load_explicit(&role, memory_order_seq_cst);
        if (current == ROLE_LAZY) {
            if (atomic_compare_exchange_strong_explicit(&role, &current, ROLE_WAITER, memory_order_seq_cst,
                                                        memory_order_seq_cst)) {
                atomic_store_explicit(&lazy_owner, 0, memory_order_seq_cst);
                atomic_store_explicit(&borrower_tid, 0, memory_order_seq_cst);
                csignal_futex_wake(&role);
                break;
            }
            continue;  // the borrower came back first
        }
        if (current != ROLE_LENT) break;  // given back (or already requested again: the main loop handles it)
        siginfo_t info;
        sigwaitinfo(&internal_only, &info);
    }
    // Back in the role: whatever a handler recorded while pokes went to the borrower is drained now.
    atomic_exchange_explicit(&poke_pending, 0, memory_order_seq_cst);
    if (notify_fn != NULL) notify_fn(notify_context);
}

static void *waiter_main(void *unused) {
    (void)unused;
    pthread_setname_np(pthread_self(), "signalcore");
    csignal_role_tid = (pid_t)syscall(SYS_gettid);
    atomic_store_explicit(&csignal_waiter_tid_value, csignal_role_tid, memory_order_release);
    atomic_store_explicit(&waiter_started, 1, memory_order_release);
    csignal_futex_wake(&waiter_started);

    uint32_t have_generation = UINT32_MAX;
    sigset_t set;

    for (;;) {
        uint32_t generation = atomic_load_explicit(&requested_generation, memory_order_acquire);
        if (generation != have_generation) {
            build_wait_set(&set);
            have_generation = generation;
            atomic_store_explicit(&applied_generation, generation, memory_order_release);
            csignal_futex_wake(&applied_generation);
        }

        // Sleep for the first delivery and hand it over alone: nothing stands between the kernel's wake-up and
        // Swift but recording it. Then take what queued up meanwhile, in batches, without sleeping.
        static const struct timespec zero = {0, 0};
        bool notify = false;
        int err = take_batch(&set, NULL, have_generation, 1, &notify, NULL);
        if (err != 0 && err != EINTR) CSIGNAL_FATAL("sigwaitinfo failed in the wait thread");
        if (notify && notify_fn != NULL) notify_fn(notify_context);
        while (err == 0 && !atomic_load_explicit(&stop_requested, memory_order_acquire) &&
               atomic_load_explicit(&requested_generation, memory_order_acquire) == have_generation &&
               atomic_load_explicit(&role, memory_order_seq_cst) == ROLE_WAITER) {
            notify = false;
            err = take_batch(&set, &zero, have_generation, batch_limit, &notify, NULL);
            if (notify && notify_fn != NULL) notify_fn(notify_context);
        }
        if (atomic_load_explicit(&stop_requested, memory_order_acquire)) break;
        if (atomic_load_explicit(&role, memory_order_seq_cst) == ROLE_REQUESTED) lend_role();
    }
    atomic_store_explicit(&csignal_waiter_tid_value, 0, memory_order_release);
    atomic_store_explicit(&waiter_exited, 1, memory_order_release);
    csignal_futex_wake(&waiter_exited);
    return NULL;
}

static bool waiter_has_exited(const void *unused) {
    (void)unused;
    return atomic_load_explicit(&waiter_exited, memory_order_acquire) != 0;
}

// --- borrowing the wait role (NOT SAFE: any thread but the wait thread) --------------------------------------

static bool role_not_requested(const void *unused) {
    (void)unused;
    return atomic_load_explicit(&role, memory_order_seq_cst) != ROLE_REQUESTED;
}

/// Blocks the internal signal in the calling borrower: while it holds the role, pokes must be dequeued by its
/// sigtimedwait, never run the internal handler here.
static void block_internal_for_borrow(void) {
    sigset_t internal;
    sigemptyset(&internal);
    sigaddset(&internal, csignal_internal_signo());
    pthread_sigmask(SIG_BLOCK, &internal, &borrower_saved_mask);
}

int csignal_borrow_begin(int64_t timeout_ns) {
    if (!atomic_load_explicit(&running, memory_order_acquire)) return ESRCH;
    if (csignal_role_tid != 0) return EDEADLK;  // this thread holds the role already
    if (atomic_load_explicit(&reclaim_requested, memory_order_seq_cst)) return EBUSY;
    static _Thread_local pid_t cached_tid = 0;
    if (cached_tid == 0) cached_tid = (pid_t)syscall(SYS_gettid);
    pid_t self = cached_tid;
    uint32_t expected = ROLE_LAZY;
    if (atomic_load_explicit(&lazy_owner, memory_order_seq_cst) == self &&
        atomic_compare_exchange_strong_explicit(&role, &expected, ROLE_LENT, memory_order_seq_cst,
                                                memory_order_seq_cst)) {
        // Back within the lease: the role is still ours, the wait thread never stirred. Disarm the lease, or
        // it would wake the wait thread for nothing while we wait longer than the lease.
        atomic_store_explicit(&lazy_owner, 0, memory_order_seq_cst);
        arm_lease_timer(0);
        block_internal_for_borrow();
        csignal_role_tid = self;
        return 0;
    }
    expected = ROLE_LAZY;
    if (atomic_compare_exchange_strong_explicit(&role, &expected, ROLE_WAITER, memory_order_seq_cst,
                                                memory_order_seq_cst)) {
        wake_lender();  // another thread's lease: end it, then borrow the ordinary way
    }
    expected = ROLE_WAITER;
    if (!atomic_compare_exchange_strong_explicit(&role, &expected, ROLE_REQUESTED, memory_order_seq_cst,
                                                 memory_order_seq_cst)) {
        return EBUSY;  // another thread borrows it
    }
    atomic_store_explicit(&borrower_tid, self, memory_order_seq_cst);
    block_internal_for_borrow();

    pid_t waiter = atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire);
    int err = poke_until(waiter, &role, role_not_requested, NULL, timeout_ns);
    if (err != 0) {
        expected = ROLE_REQUESTED;
        if (atomic_compare_exchange_strong_explicit(&role, &expected, ROLE_WAITER, memory_order_seq_cst,
                                                    memory_order_seq_cst)) {
            atomic_store_explicit(&borrower_tid, 0, memory_order_seq_cst);
            csignal_futex_wake(&role);
            pthread_sigmask(SIG_SETMASK, &borrower_saved_mask, NULL);
            return err;
        }
        // The wait thread parked just now: the role is ours after all.
    }
    csignal_role_tid = self;
    return 0;
}

int csignal_borrow_wait(int64_t timeout_ns, uint64_t direct_mask, csignal_record *direct_record, bool *matched,
                        bool *notify) {
    *notify = false;
    *matched = false;
    if (atomic_load_explicit(&reclaim_requested, memory_order_seq_cst)) return ECANCELED;
    uint32_t generation = atomic_load_explicit(&requested_generation, memory_order_acquire);
    sigset_t set;
    build_wait_set(&set);
    static const struct timespec zero = {0, 0};
    direct_request direct = {.mask = direct_mask, .record = direct_record, .matched = false};
    // First what is already queued, without sleeping. Under load this finds the caller's next delivery and
    // drains the backlog behind it into the ring in the same batch, so that the following calls find their
    // events handed over without any system call. When paced, it costs one call that finds nothing, before the
    // next signal is even sent.
    int err = take_batch(&set, &zero, generation, batch_limit, notify, &direct);
    if (direct.matched) {
        take_batch(&set, &zero, generation, batch_limit, notify, NULL);
        *matched = true;
        return 0;
    }
    if (*notify || err != EAGAIN) return err == EINTR || err == EAGAIN ? 0 : err;
    // Then sleep. A delivery of the caller's goes straight back to it: nothing between the kernel's wake-up
    // and the caller but recording it.
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    err = take_batch(&set, &ts, generation, batch_limit, notify, &direct);
    *matched = direct.matched;
    if (direct.matched) return 0;
    if (atomic_load_explicit(&reclaim_requested, memory_order_seq_cst)) return ECANCELED;
    if (err == EAGAIN) return ETIMEDOUT;
    return err == EINTR ? 0 : err;
}

void csignal_borrow_end(void) {
    if (csignal_role_tid == 0 || csignal_role_tid == atomic_load(&csignal_waiter_tid_value)) return;
    csignal_role_tid = 0;
    atomic_store_explicit(&borrower_tid, 0, memory_order_seq_cst);
    atomic_store_explicit(&role, ROLE_WAITER, memory_order_seq_cst);
    if (atomic_load_explicit(&reclaim_requested, memory_order_seq_cst)) csignal_futex_wake(&role);  // setup waits
    wake_lender();
    // A poke still pending here runs the internal handler once, which ignores it; the wait thread drains the
    // ring when it takes the role back, so nothing it announced is missed.
    pthread_sigmask(SIG_SETMASK, &borrower_saved_mask, NULL);
}

void csignal_borrow_end_lazily(void) {
    if (csignal_role_tid == 0 || csignal_role_tid == atomic_load(&csignal_waiter_tid_value)) return;
    if (!lease_timer_created) {
        csignal_borrow_end();
        return;
    }
    pid_t self = csignal_role_tid;
    csignal_role_tid = 0;
    // Timer first: once the role reads LAZY, the lease must already be running.
    arm_lease_timer(LEASE_NS);
    atomic_store_explicit(&lazy_owner, self, memory_order_seq_cst);
    atomic_store_explicit(&role, ROLE_LAZY, memory_order_seq_cst);
    if (atomic_load_explicit(&reclaim_requested, memory_order_seq_cst)) csignal_futex_wake(&role);  // setup waits
    pthread_sigmask(SIG_SETMASK, &borrower_saved_mask, NULL);
}

/// Takes the role back for setup and keeps new borrowers out until csignal_role_release. Setup only.
int csignal_role_reclaim(void) {
    atomic_fetch_add_explicit(&reclaim_requested, 1, memory_order_seq_cst);  // nests: stop -> unwatch
    int64_t deadline = csignal_now_ns() + 5000000000LL;
    pid_t poked = 0;
    for (;;) {
        uint32_t current = atomic_load_explicit(&role, memory_order_seq_cst);
        if (current == ROLE_WAITER) return 0;
        if (current == ROLE_LAZY) {
            if (atomic_compare_exchange_strong_explicit(&role, &current, ROLE_WAITER, memory_order_seq_cst,
                                                        memory_order_seq_cst)) {
                wake_lender();
                return 0;
            }
            continue;
        }
        // REQUESTED: the borrower sees the reclaim on its first wait. LENT: wake the borrower (once; every
        // millisecond while the kernel refuses the poke).
        pid_t borrower = atomic_load_explicit(&borrower_tid, memory_order_seq_cst);
        if (current == ROLE_LENT && borrower > 0 && borrower != poked && poke_thread(borrower) == 0) poked = borrower;
        int64_t left = deadline - csignal_now_ns();
        if (left <= 0) return ETIMEDOUT;
        csignal_futex_wait(&role, current, left < 1000000 ? left : 1000000);
    }
}

void csignal_role_release(void) { atomic_fetch_sub_explicit(&reclaim_requested, 1, memory_order_seq_cst); }

typedef struct generation_wait {
    uint32_t generation;
} generation_wait;

static bool generation_applied(const void *context) {
    const generation_wait *wait = context;
    uint32_t applied = atomic_load_explicit(&applied_generation, memory_order_acquire);
    return (int32_t)(applied - wait->generation) >= 0;
}

int csignal_waiter_apply_watched(void) {
    generation_wait wait = {atomic_fetch_add_explicit(&requested_generation, 1, memory_order_acq_rel) + 1};
    pid_t waiter = atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire);
    return poke_until(waiter, &applied_generation, generation_applied, &wait, 5000000000LL);
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
    atomic_store(&waiter_exited, 0);

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
    // The lease timer signals the wait thread itself (glibc 2.36 names the field _sigev_un._tid; newer ones
    // also sigev_notify_thread_id). Without it (timer_create failed) borrowers simply give
    // the role back at once.
    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = csignal_internal_signo();
    event._sigev_un._tid = atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire);
    lease_timer_created = timer_create(CLOCK_MONOTONIC, &event, &lease_timer) == 0;
    atomic_store_explicit(&running, true, memory_order_release);
    return 0;
}

int csignal_engine_stop(const char **failed_call) {
    *failed_call = "csignal_engine_stop";
    if (!atomic_load_explicit(&running, memory_order_acquire)) return ESRCH;
    int err = csignal_role_reclaim();
    if (err != 0) {
        csignal_role_release();
        *failed_call = "csignal_role_reclaim";
        return err;
    }
    uint64_t watched = atomic_load(&csignal_watched_mask);
    err = csignal_engine_unwatch(watched, failed_call);
    if (err != 0) {
        csignal_role_release();
        return err;
    }

    atomic_store_explicit(&stop_requested, true, memory_order_release);
    err = poke_until(atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire), &waiter_exited,
                     waiter_has_exited, NULL, 5000000000LL);
    if (err != 0) {
        *failed_call = "tgkill";
        return err;
    }
    pthread_join(waiter_thread, NULL);
    if (lease_timer_created) {
        timer_delete(lease_timer);
        lease_timer_created = false;
    }
    atomic_store_explicit(&lazy_owner, 0, memory_order_seq_cst);
    atomic_store_explicit(&role, ROLE_WAITER, memory_order_seq_cst);
    csignal_wait_handlers_idle();
    csignal_restore_internal();
    atomic_store_explicit(&running, false, memory_order_release);
    csignal_role_release();
    return 0;
}

void csignal_waiter_forget_after_fork(void) {
    atomic_store_explicit(&csignal_watched_mask, 0, memory_order_relaxed);
    atomic_store_explicit(&csignal_waiter_tid_value, 0, memory_order_relaxed);
    atomic_store_explicit(&poke_pending, 0, memory_order_relaxed);
    // A borrower of the wait role exists only in the parent as well.
    atomic_store_explicit(&borrower_tid, 0, memory_order_relaxed);
    atomic_store_explicit(&reclaim_requested, 0, memory_order_relaxed);
    atomic_store_explicit(&role, ROLE_WAITER, memory_order_relaxed);
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
