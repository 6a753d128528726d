// The wait thread ("signalcore"): the normal route from the kernel to the recorder.
//
// It blocks the watched signals and the internal signal (and nothing else: a fault in code that runs here
// still reaches the crash handlers, and profilers can still sample it) and sleeps in sigwaitinfo with no
// timeout, so an idle engine causes no wake-ups at all. What it does each time it wakes depends on the wait
// role (role.c):
//
//   HOME   it holds the role: applies a new watched set if setup asked, clears the drain flag, pumps the ring
//          into Swift (the pump callback), runs executor jobs, then waits for watched signals and its doorbell.
//   ASKED  a borrower asked: it lends the role (or refuses it while setup reclaims).
//   LENT   a borrower holds it: it runs executor jobs and waits for its doorbell only.
//   LAZY   the borrower's lease is over (the lease timer rang), or someone rang: it takes the role back.
//
// Doorbells that reach it: a borrower asking or giving back, setup, the lease timer, a handler-route record
// while it holds the role, executor jobs, the end of a hold. It never relies on why it was rung: each time it
// reads the role word and the flags again.
#include "internal.h"

#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Atomic bool csignal_running = false;
_Atomic uint32_t csignal_run_id = 0;

static pthread_t waiter_thread;
// Stop: setup moves 0 -> 1 (requested); the wait thread, at HOME, moves 1 -> 2 (exiting) and leaves; setup
// may withdraw a request the wait thread has not taken (1 -> 0). One CAS each, so both never disagree.
enum { STOP_NONE = 0, STOP_REQUESTED = 1, STOP_EXITING = 2 };
static _Atomic uint32_t stop_state = STOP_NONE;
static _Atomic int jobs_pending = 0;
// Watched-set generations: setup bumps `requested`, the wait thread publishes what it uses in `applied`.
static _Atomic uint32_t requested_generation = 0;
static _Atomic uint32_t applied_generation = 0;
static _Atomic uint32_t waiter_started = 0;
/// The generation the wait thread uses now. Touched only by the wait thread.
static uint32_t have_generation = UINT32_MAX;
static _Atomic uint32_t waiter_exited = 0;

static timer_t lease_timer;
static bool lease_timer_created = false;

static csignal_callback_fn pump_fn = NULL;
static csignal_callback_fn jobs_fn = NULL;
static void *callback_context = NULL;
static uint32_t batch_limit = 64;

uint32_t csignal_batch_limit(void) { return batch_limit; }

void csignal_call_pump(void) {
    if (pump_fn != NULL) pump_fn(callback_context);
}

/// NOT SAFE: any thread. timer_settime is a system call on a timer created at start.
void csignal_lease_arm(long ns) {
    if (!lease_timer_created) return;
    struct itimerspec when = {.it_interval = {0, 0}, .it_value = {ns / 1000000000, ns % 1000000000}};
    timer_settime(lease_timer, 0, &when, NULL);
}

bool csignal_lease_available(void) { return lease_timer_created; }

/// ASYNC-SIGNAL-SAFE.
void csignal_waiter_wake_for_jobs(void) {
    // On the wait thread itself the flag is enough: it looks at it before it sleeps.
    if (csignal_on_wait_thread()) {
        atomic_store_explicit(&jobs_pending, 1, memory_order_seq_cst);
        return;
    }
    if (atomic_exchange_explicit(&jobs_pending, 1, memory_order_seq_cst) == 0) {
        if (csignal_doorbell(atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire)) != 0) {
            atomic_store_explicit(&jobs_pending, 0, memory_order_seq_cst);
        }
    }
}

/// Runs executor jobs if some were announced. Clears the flag first: a job enqueued while they run rings again.
static void run_jobs(void) {
    if (atomic_exchange_explicit(&jobs_pending, 0, memory_order_seq_cst) != 0 && jobs_fn != NULL) {
        jobs_fn(callback_context);
    }
}

/// Whether setup or executor jobs wait for this thread (it then stops looking for the parker).
static bool has_other_work(void) {
    return atomic_load_explicit(&jobs_pending, memory_order_seq_cst) != 0 ||
           csignal_role_reclaiming(csignal_role_load()) ||
           atomic_load_explicit(&requested_generation, memory_order_acquire) != have_generation ||
           atomic_load_explicit(&stop_state, memory_order_acquire) != 0;
}

/// Blocks the watched set and the internal signal in the wait thread itself, and nothing else.
static void set_own_mask(void) {
    sigset_t mask;
    csignal_sigset_from_mask(&mask, csignal_watched());
    sigaddset(&mask, csignal_internal_signo());
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
}

/// At HOME (or in setup that runs on the wait thread itself): takes a new watched set into use and
/// acknowledges it.
static void apply_generation(void) {
    uint32_t generation = atomic_load_explicit(&requested_generation, memory_order_acquire);
    if (generation == have_generation) return;
    set_own_mask();
    have_generation = generation;
    atomic_store_explicit(&applied_generation, generation, memory_order_release);
    csignal_futex_wake(&applied_generation);
}

static void *waiter_main(void *unused) {
    (void)unused;
    pthread_setname_np(pthread_self(), "signalcore");
    csignal_role_tid = (pid_t)syscall(SYS_gettid);
    set_own_mask();
    // Without a doorbell timer (the kernel refused one) doorbells fall back to tgkill.
    csignal_bell_register(csignal_role_tid);
    atomic_store_explicit(&csignal_waiter_tid_value, csignal_role_tid, memory_order_release);
    atomic_store_explicit(&waiter_started, 1, memory_order_release);
    csignal_futex_wake(&waiter_started);

    sigset_t internal_only;
    sigemptyset(&internal_only);
    sigaddset(&internal_only, csignal_internal_signo());
    have_generation = UINT32_MAX;

    for (;;) {
        uint64_t word = csignal_role_load();
        switch (csignal_role_phase(word)) {
        case CSIGNAL_ROLE_ASKED:
            CSIGNAL_INJECT("waiter.before-lend");
            if (csignal_role_reclaiming(word)) {
                csignal_role_move(word, CSIGNAL_ROLE_HOME, 0);
            } else {
                csignal_role_move(word, CSIGNAL_ROLE_LENT, csignal_role_borrower(word));
            }
            continue;
        case CSIGNAL_ROLE_LAZY:
            CSIGNAL_INJECT("waiter.before-take-back");
            csignal_role_move(word, CSIGNAL_ROLE_HOME, 0);  // if the borrower came back first, look again
            continue;
        case CSIGNAL_ROLE_LENT: {
            if (csignal_parker_take_hint() && csignal_engine_watched() != 0) csignal_parker_adopt_after_hint(50000000LL, has_other_work);
            run_jobs();
            if (atomic_load_explicit(&jobs_pending, memory_order_seq_cst) != 0) continue;
            siginfo_t info;
            CSIGNAL_INJECT("waiter.lent-sleep");
            sigwaitinfo(&internal_only, &info);  // a doorbell, or EINTR: look again either way
            continue;
        }
        default:
            break;
        }
        // HOME: this thread holds the role.
        uint32_t requested = STOP_REQUESTED;
        if (atomic_compare_exchange_strong_explicit(&stop_state, &requested, STOP_EXITING, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            break;
        }
        apply_generation();
        // The main thread took a watched signal: an async program's main thread may have parked in libdispatch
        // after the engine's watch looked for it. Take it over now (parker.c).
        if (csignal_parker_take_hint() && csignal_engine_watched() != 0) csignal_parker_adopt_after_hint(50000000LL, has_other_work);
        csignal_role_acquired();
        csignal_call_pump();
        run_jobs();
        if (atomic_load_explicit(&jobs_pending, memory_order_seq_cst) != 0) continue;
        // What queued up while we pumped, without sleeping; the pump at the top of the loop hands it over.
        sigset_t set;
        csignal_wait_set(&set, batch_limit);
        static const struct timespec zero = {0, 0};
        bool pump = false;
        if (csignal_take_batch(&set, &zero, batch_limit, &pump) == 0) continue;
        // Nothing pending: sleep. Anything that changes what we should do from here on rings us: the doorbell is
        // then pending and sigwaitinfo returns at once.
        CSIGNAL_INJECT("waiter.home-sleep");
        int err = csignal_take_batch(&set, NULL, batch_limit, &pump);
        if (err != 0 && err != EINTR) CSIGNAL_FATAL("sigwaitinfo failed in the wait thread");
    }
    atomic_store_explicit(&csignal_waiter_tid_value, 0, memory_order_release);
    atomic_store_explicit(&waiter_exited, 1, memory_order_release);
    csignal_futex_wake(&waiter_exited);
    return NULL;
}

/// NOT SAFE: setup only.
int csignal_waiter_start(const csignal_start_options *options, const char **call) {
    pump_fn = options->pump;
    jobs_fn = options->run_jobs;
    callback_context = options->context;
    batch_limit = options->batch_limit == 0 ? 1 : options->batch_limit;
    atomic_store(&stop_state, STOP_NONE);
    atomic_store(&jobs_pending, 0);
    atomic_store(&waiter_started, 0);
    atomic_store(&waiter_exited, 0);
    atomic_store(&requested_generation, 0);
    atomic_store(&applied_generation, 0);
    atomic_fetch_add(&csignal_run_id, 1);

    // Created with every signal blocked, so that nothing runs on it before it sets its own mask.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&waiter_thread, NULL, waiter_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        *call = "pthread_create";
        return err;
    }
    while (atomic_load_explicit(&waiter_started, memory_order_acquire) == 0) {
        csignal_futex_wait(&waiter_started, 0, 1000000000);
    }
    // The lease timer rings the wait thread itself (SIGEV_THREAD_ID; glibc 2.36 names the field _sigev_un._tid).
    // A timer's signal is preallocated by the kernel: it never meets RLIMIT_SIGPENDING. Without a timer
    // (timer_create failed) borrowers give the role back at once instead of lazily.
    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = csignal_internal_signo();
    event._sigev_un._tid = atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire);
    lease_timer_created = timer_create(CLOCK_MONOTONIC, &event, &lease_timer) == 0;
    return 0;
}

static bool wait_flag(_Atomic uint32_t *word, uint32_t until, int64_t timeout_ns, bool rings) {
    int64_t deadline = csignal_now_ns() + timeout_ns;
    bool rung = false;
    for (;;) {
        uint32_t seen = atomic_load_explicit(word, memory_order_acquire);
        if ((int32_t)(seen - until) >= 0) return true;
        if (rings && !rung) {
            rung = csignal_doorbell(atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire)) == 0;
        }
        int64_t left = deadline - csignal_now_ns();
        if (left <= 0) return false;
        csignal_futex_wait(word, seen, left);
    }
}

/// NOT SAFE: setup only, with the role HOME under reclaim.
int csignal_waiter_apply(int64_t timeout_ns) {
    uint32_t generation = atomic_fetch_add_explicit(&requested_generation, 1, memory_order_acq_rel) + 1;
    if (csignal_on_wait_thread()) {  // setup from an executor job: the wait thread applies it itself, now
        apply_generation();
        return 0;
    }
    CSIGNAL_INJECT("apply.before-ring");
    return wait_flag(&applied_generation, generation, timeout_ns, true) ? 0 : ETIMEDOUT;
}

/// NOT SAFE: setup only, with the role HOME under reclaim.
int csignal_waiter_stop(int64_t timeout_ns) {
    atomic_store_explicit(&stop_state, STOP_REQUESTED, memory_order_release);
    if (!wait_flag(&waiter_exited, 1, timeout_ns, true)) {
        uint32_t requested = STOP_REQUESTED;
        if (atomic_compare_exchange_strong_explicit(&stop_state, &requested, STOP_NONE, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            return ETIMEDOUT;  // it never took the request: it still runs, as before
        }
        // It took the request just now and is leaving: the join below is short.
    }
    pthread_join(waiter_thread, NULL);
    csignal_bells_clear();
    if (lease_timer_created) {
        timer_delete(lease_timer);
        lease_timer_created = false;
    }
    return 0;
}

/// ASYNC-SIGNAL-SAFE: atomic stores only.
void csignal_waiter_forget(void) {
    csignal_bells_forget();
    atomic_store_explicit(&csignal_waiter_tid_value, 0, memory_order_relaxed);
    atomic_store_explicit(&csignal_running, false, memory_order_release);
}

bool csignal_engine_running(void) { return atomic_load_explicit(&csignal_running, memory_order_acquire); }
