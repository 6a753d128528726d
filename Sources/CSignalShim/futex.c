// Time and futex primitives: deadlines for every wait, and the futex calls that setup threads sleep on.
#include "internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/// ASYNC-SIGNAL-SAFE: clock_gettime is on POSIX's list.
int64_t csignal_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/// NOT SAFE: ordinary threads (it sleeps).
int csignal_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, timeout_ns < 0 ? NULL : &ts,
                     NULL, 0);
    return r == 0 ? 0 : errno;
}

/// ASYNC-SIGNAL-SAFE: the raw system call; FUTEX_WAKE never waits.
void csignal_futex_wake(_Atomic uint32_t *word) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
