// Sending signals: the engine's doorbell, and the thread-directed sends SignalSender offers Swift.
//
// THE DOORBELL. The engine's internal signal carries no request. Whoever receives it (the wait thread, a
// borrower, or any other thread through csignal_internal_handler) looks at shared state: the role word, the
// ring, the mask request, a dump slot. So a doorbell that arrives late, twice, without its siginfo, or from a
// foreign sender does no harm, and a lost one cannot exist: the kernel keeps a blocked signal pending until the
// thread takes it.
//
// It is sent with rt_tgsigqueueinfo and si_code SI_USER, which the kernel accepts only from our own process.
// For a real-time signal sent that way, the kernel still delivers when RLIMIT_SIGPENDING is used up (it drops
// only the siginfo: "silent loss of information" in kernel/signal.c), where tgkill or sigqueue would fail with
// EAGAIN. The limit counts every queued signal of the user, other processes' too, so a doorbell must not depend
// on it.
#include "internal.h"

#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

_Atomic pid_t csignal_own_pid = 0;

/// ASYNC-SIGNAL-SAFE: memset (on POSIX's list since 2016), atomics, the raw system call.
int csignal_doorbell(pid_t tid) {
    if (tid <= 0) return ESRCH;
    int signo = csignal_internal_signo();
    if (signo == 0) return ESRCH;
    pid_t pid = atomic_load_explicit(&csignal_own_pid, memory_order_relaxed);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = signo;
    info.si_code = SI_USER;
    info.si_pid = pid;
    if (syscall(SYS_rt_tgsigqueueinfo, pid, tid, signo, &info) != 0) return errno;
    return 0;
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
