// Sending signals: the engine's doorbells, and the thread-directed sends SignalSender offers Swift.
//
// THE DOORBELL. The engine's internal signal carries no request. Whoever receives it (the wait thread, a
// borrower, or any other thread through csignal_internal_handler) looks at shared state: the role word, the
// ring, the mask request, a dump slot. So a doorbell that arrives late, twice, without its siginfo, or from a
// foreign sender does no harm, and none is ever lost: the kernel keeps a blocked signal pending until the
// thread takes it.
//
// A doorbell for a thread that can hold the wait role (the wait thread, and every thread that ever borrowed the
// role) never fails: such a thread owns a POSIX timer that sends it the internal signal (SIGEV_THREAD_ID), and
// ringing it arms that timer to expire at once. The kernel preallocates a timer's signal when the timer is
// created, so firing it never meets RLIMIT_SIGPENDING; and a timer that fires again while its signal is still
// pending counts an overrun instead of queueing a second copy. tgkill and sigqueue of a real-time signal, by
// contrast, fail with EAGAIN once the user's queued signals reach the limit (the limit counts every process of
// the user), and a doorbell that announces a record or a request must not depend on that.
//
// Other threads (asked to change their mask, to dump their stack) are rung with tgkill from setup, which may
// wait: csignal_ring_patiently retries while the kernel answers EAGAIN, until the caller's deadline.
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Atomic pid_t csignal_own_pid = 0;

/// Threads with a doorbell timer: the wait thread and the threads that borrowed the role.
enum { BELLS = 256 };
typedef struct bell {
    _Atomic pid_t tid;   // 0: free
    _Atomic int timer;   // the kernel's timer id
} bell;
static bell bells[BELLS];
/// Timers of threads that exited, deleted once no handler can still be arming them.
static int retired[BELLS];
static _Atomic int retired_count = 0;
static pthread_mutex_t bells_lock = PTHREAD_MUTEX_INITIALIZER;

/// ASYNC-SIGNAL-SAFE: the raw timer_settime system call on a timer created earlier.
static int arm_now(int timer) {
    struct itimerspec when = {.it_interval = {0, 0}, .it_value = {0, 1}};
    return syscall(SYS_timer_settime, timer, 0, &when, NULL) == 0 ? 0 : errno;
}

/// ASYNC-SIGNAL-SAFE: a bounded scan of the table.
int csignal_doorbell(pid_t tid) {
    if (tid <= 0) return ESRCH;
    for (int i = 0; i < BELLS; i++) {
        if (atomic_load_explicit(&bells[i].tid, memory_order_acquire) == tid) {
            return arm_now(atomic_load_explicit(&bells[i].timer, memory_order_relaxed));
        }
    }
    int signo = csignal_internal_signo();
    if (signo == 0) return ESRCH;
    pid_t pid = atomic_load_explicit(&csignal_own_pid, memory_order_relaxed);
    if (syscall(SYS_tgkill, pid, tid, signo) != 0) return errno;
    return 0;
}

/// NOT SAFE: ordinary threads (it sleeps between tries).
int csignal_ring_patiently(pid_t tid, int64_t deadline_ns) {
    for (;;) {
        int err = csignal_doorbell(tid);
        if (err != EAGAIN || csignal_now_ns() >= deadline_ns) return err;
        struct timespec pause = {0, 200000};
        nanosleep(&pause, NULL);
    }
}

/// Deletes retired timers when no handler is running: a handler that read a table entry before it was
/// retired has returned by then (handlers count themselves in csignal_handlers_active). Under bells_lock.
static void collect_retired(void) {
    if (atomic_load_explicit(&retired_count, memory_order_acquire) == 0) return;
    if (atomic_load_explicit(&csignal_handlers_active, memory_order_acquire) != 0) return;
    int count = atomic_load_explicit(&retired_count, memory_order_relaxed);
    for (int i = 0; i < count; i++) syscall(SYS_timer_delete, retired[i]);
    atomic_store_explicit(&retired_count, 0, memory_order_release);
}

/// NOT SAFE: ordinary threads. Returns 0, or errno (EAGAIN: the kernel refused a timer; ENOSPC: table full).
int csignal_bell_register(pid_t tid) {
    pthread_mutex_lock(&bells_lock);
    collect_retired();
    int err = ENOSPC;
    for (int i = 0; i < BELLS; i++) {
        if (atomic_load_explicit(&bells[i].tid, memory_order_relaxed) != 0) continue;
        struct sigevent event;
        memset(&event, 0, sizeof event);
        event.sigev_notify = SIGEV_THREAD_ID;
        event.sigev_signo = csignal_internal_signo();
        event._sigev_un._tid = tid;
        int timer = 0;
        if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &event, &timer) != 0) {
            err = errno;
            break;
        }
        atomic_store_explicit(&bells[i].timer, timer, memory_order_relaxed);
        atomic_store_explicit(&bells[i].tid, tid, memory_order_release);
        err = 0;
        break;
    }
    pthread_mutex_unlock(&bells_lock);
    return err;
}

/// NOT SAFE: ordinary threads. The thread `tid` is going away: its timer is deleted later (collect_retired).
void csignal_bell_retire(pid_t tid) {
    pthread_mutex_lock(&bells_lock);
    for (int i = 0; i < BELLS; i++) {
        if (atomic_load_explicit(&bells[i].tid, memory_order_relaxed) != tid) continue;
        atomic_store_explicit(&bells[i].tid, 0, memory_order_release);
        int count = atomic_load_explicit(&retired_count, memory_order_relaxed);
        retired[count] = atomic_load_explicit(&bells[i].timer, memory_order_relaxed);
        atomic_store_explicit(&retired_count, count + 1, memory_order_release);
    }
    collect_retired();
    pthread_mutex_unlock(&bells_lock);
}

/// NOT SAFE: setup only (stop, after the wait thread exited and no handler runs). Deletes every timer.
void csignal_bells_clear(void) {
    pthread_mutex_lock(&bells_lock);
    for (int i = 0; i < BELLS; i++) {
        if (atomic_load_explicit(&bells[i].tid, memory_order_relaxed) == 0) continue;
        atomic_store_explicit(&bells[i].tid, 0, memory_order_release);
        syscall(SYS_timer_delete, atomic_load_explicit(&bells[i].timer, memory_order_relaxed));
    }
    int count = atomic_load_explicit(&retired_count, memory_order_relaxed);
    for (int i = 0; i < count; i++) syscall(SYS_timer_delete, retired[i]);
    atomic_store_explicit(&retired_count, 0, memory_order_release);
    pthread_mutex_unlock(&bells_lock);
}

/// In a forked child: the timers belong to the parent (timers are not inherited). ASYNC-SIGNAL-SAFE.
void csignal_bells_forget(void) {
    for (int i = 0; i < BELLS; i++) atomic_store_explicit(&bells[i].tid, 0, memory_order_relaxed);
    atomic_store_explicit(&retired_count, 0, memory_order_relaxed);
}

/// ASYNC-SIGNAL-SAFE.
pid_t csignal_gettid(void) { return (pid_t)syscall(SYS_gettid); }

/// NOT SAFE: any thread.
int csignal_tgkill(pid_t tid, int signo) {
    return syscall(SYS_tgkill, getpid(), tid, signo) == 0 ? 0 : errno;
}

/// NOT SAFE: any thread.
int csignal_tg_sigqueue(pid_t tid, int signo, int value) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = signo;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    info.si_value.sival_int = value;
    return syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, signo, &info) == 0 ? 0 : errno;
}

static _Atomic int internal_signo = 0;

/// ASYNC-SIGNAL-SAFE: one relaxed load. The value is set at start, before any handler of ours is installed, and
/// sigaction orders it for the handlers; the wait thread and borrowers see it through pthread_create and the
/// role word.
int csignal_internal_signo(void) { return atomic_load_explicit(&internal_signo, memory_order_relaxed); }

/// NOT SAFE: setup only.
void csignal_set_internal_signo(int signo) { atomic_store_explicit(&internal_signo, signo, memory_order_relaxed); }

int csignal_rtmin(void) { return SIGRTMIN; }
int csignal_rtmax(void) { return SIGRTMAX; }
