// Borrowing the wait role: a thread blocked in SignalSubscription.next(timeout:) becomes the thread the kernel
// wakes (role.c explains the protocol; this file is the borrower's side of it).
//
// While a thread holds the role (LENT) it keeps the internal signal blocked, so that a doorbell meant for the
// holder is dequeued by its own sigtimedwait, never eaten by the internal handler on its way past: the mask is
// changed before the move into LENT and restored after the move out of it. A doorbell still pending on it
// afterwards runs the internal handler once, which only re-reads shared state.
#include "internal.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { LEASE_NS = 1000000, STREAK_NS = 10000000 };

static _Thread_local pid_t cached_tid = 0;
static _Thread_local sigset_t saved_mask;
/// When this thread's streak of leases began (the wait thread lent it the role), or when it last found the wait
/// thread's own queue empty.
static _Thread_local int64_t streak_start = 0;
/// The engine run for which this thread has a doorbell timer (0: none).
static _Thread_local uint32_t bell_run = 0;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static pid_t self_tid(void) {
    if (cached_tid == 0) cached_tid = (pid_t)syscall(SYS_gettid);
    return cached_tid;
}

/// A borrower thread exits: its doorbell timer goes with it.
static void borrower_exits(void *tid) { csignal_bell_retire((pid_t)(intptr_t)tid); }
static void make_exit_key(void) { pthread_key_create(&exit_key, borrower_exits); }

/// A holder must be reachable by a doorbell that never fails: a timer of its own (send.c).
static bool has_bell(pid_t self) {
    uint32_t run = atomic_load_explicit(&csignal_run_id, memory_order_acquire);
    if (bell_run == run) return true;
    if (csignal_bell_register(self) != 0) return false;
    pthread_once(&exit_key_once, make_exit_key);
    pthread_setspecific(exit_key, (void *)(intptr_t)self);
    bell_run = run;
    return true;
}

static void block_internal(void) {
    sigset_t internal;
    sigemptyset(&internal);
    sigaddset(&internal, csignal_internal_signo());
    pthread_sigmask(SIG_BLOCK, &internal, &saved_mask);
}

static void restore_mask(void) { pthread_sigmask(SIG_SETMASK, &saved_mask, NULL); }

/// The calling thread just became the holder.
static int became_holder(pid_t self) {
    csignal_role_tid = self;
    csignal_role_acquired();
    return 0;
}

/// Whether a watched signal waits in the wait thread's own queue (its SigPnd in /proc). Unknown counts as yes.
static bool waiter_has_own_pending(void) {
    csignal_thread_report report;
    if (csignal_read_thread(atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire), &report) != 0) {
        return true;
    }
    return (report.pending & csignal_watched()) != 0;
}

/// NOT SAFE: any thread but the wait thread.
int csignal_borrow_begin(int64_t timeout_ns) {
    if (!csignal_engine_running()) return ESRCH;
    if (csignal_role_tid != 0) return EDEADLK;  // this thread holds the role already
    pid_t self = self_tid();
    if (!has_bell(self)) return EBUSY;
    int64_t deadline = csignal_now_ns() + timeout_ns;
    block_internal();
    uint64_t word = csignal_role_load();
    CSIGNAL_INJECT("borrow.before-resume");
    // Back within our own lease: the role is still ours and the wait thread never stirred. A watched signal sent
    // to the wait thread itself waits until the wait thread holds the role again (only it can take it), so every
    // 10 ms of one streak of leases the caller looks whether one waits there; if so, it rings the wait thread,
    // which takes the role back at once (as when the lease runs out), and it waits the ordinary way this time.
    if (csignal_role_phase(word) == CSIGNAL_ROLE_LAZY && csignal_role_borrower(word) == self &&
        !csignal_role_reclaiming(word)) {
        if (csignal_now_ns() - streak_start >= STREAK_NS) {
            if (waiter_has_own_pending()) {
                CSIGNAL_INJECT("borrow.streak-over");
                csignal_doorbell(atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire));
                restore_mask();
                return EBUSY;
            }
            streak_start = csignal_now_ns();
        }
        if (csignal_role_move(word, CSIGNAL_ROLE_LENT, self)) {
            csignal_lease_arm(0);  // or it rings the wait thread for nothing while we wait longer than the lease
            return became_holder(self);
        }
    }
    if (csignal_role_phase(word) != CSIGNAL_ROLE_HOME || csignal_role_reclaiming(word) ||
        !csignal_role_move(word, CSIGNAL_ROLE_ASKED, self)) {
        // Someone else borrows it, a lease is running, or setup is reclaiming: wait the ordinary way. (A lease of
        // another thread ends by itself within a millisecond; ringing the wait thread would not be faster.)
        restore_mask();
        return EBUSY;
    }
    CSIGNAL_INJECT("borrow.asked");
    csignal_doorbell(atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire));
    for (;;) {
        word = csignal_role_load();
        if (csignal_role_phase(word) == CSIGNAL_ROLE_LENT && csignal_role_borrower(word) == self) {
            streak_start = csignal_now_ns();
            return became_holder(self);
        }
        if (csignal_role_phase(word) != CSIGNAL_ROLE_ASKED) {  // refused: setup is reclaiming
            restore_mask();
            return EBUSY;
        }
        int64_t left = deadline - csignal_now_ns();
        if (left <= 0 && csignal_role_move(word, CSIGNAL_ROLE_HOME, 0)) {
            restore_mask();
            return ETIMEDOUT;
        }
        if (left > 0) csignal_role_wait_change(word, left);
    }
}

/// NOT SAFE: the borrower.
int csignal_borrow_wait(int64_t timeout_ns, bool *pump) {
    *pump = false;
    if (csignal_role_reclaiming(csignal_role_load())) return ECANCELED;
    sigset_t set;
    csignal_wait_set(&set, csignal_batch_limit());
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    static const struct timespec zero = {0, 0};
    // What is pending already comes first, in a batch; only then sleep, for one delivery handed over alone.
    int err = csignal_take_batch(&set, &zero, csignal_batch_limit(), pump);
    if (err == 0 || timeout_ns <= 0) return err == EAGAIN ? ETIMEDOUT : 0;
    CSIGNAL_INJECT("borrow.before-wait");
    err = csignal_take_batch(&set, &ts, csignal_batch_limit(), pump);
    if (csignal_role_reclaiming(csignal_role_load())) return ECANCELED;
    if (err == EAGAIN) return ETIMEDOUT;
    return 0;  // EINTR counts as a wake-up without news
}

/// NOT SAFE: the borrower.
void csignal_borrow_end(void) {
    pid_t self = csignal_role_tid;
    if (self == 0 || self == atomic_load(&csignal_waiter_tid_value)) return;
    for (;;) {
        uint64_t word = csignal_role_load();
        if (csignal_role_phase(word) != CSIGNAL_ROLE_LENT || csignal_role_borrower(word) != self) {
            CSIGNAL_FATAL("csignal_borrow_end by a thread that does not hold the role");
        }
        if (csignal_role_move(word, CSIGNAL_ROLE_HOME, 0)) break;  // only the reclaim flag can have changed
    }
    csignal_role_tid = 0;
    CSIGNAL_INJECT("borrow.ended");
    csignal_doorbell(atomic_load_explicit(&csignal_waiter_tid_value, memory_order_acquire));
    restore_mask();
}

/// NOT SAFE: the borrower.
void csignal_borrow_end_lazily(void) {
    pid_t self = csignal_role_tid;
    if (self == 0 || self == atomic_load(&csignal_waiter_tid_value)) return;
    if (!csignal_lease_available()) {
        csignal_borrow_end();
        return;
    }
    uint64_t word = csignal_role_load();
    if (csignal_role_reclaiming(word) || !csignal_role_move(word, CSIGNAL_ROLE_LAZY, self)) {
        csignal_borrow_end();  // setup is reclaiming (the move fails or is refused): give it back at once
        return;
    }
    csignal_role_tid = 0;
    // The lease runs from the moment the role reads LAZY: the timer is armed after the move, never before. (Armed
    // first, it could fire while the role still read LENT, and the wait thread would go back to sleep with
    // nobody left to end the lease.) If we are preempted here, deliveries wait in the kernel until we arm it.
    CSIGNAL_INJECT("lease.before-arm");
    csignal_lease_arm(LEASE_NS);
    restore_mask();
}
