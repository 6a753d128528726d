// A small harness for C-level tests of CSignalShim, compiled with the shim's own sources and -DCSIGNAL_TESTING.
//
// Every test runs in a forked child process: signal state is process-wide, so tests never share it. The child
// arms alarm() with the test's deadline, so a hang fails fast with SIGALRM. Injection points (the shim's
// CSIGNAL_INJECT) let a test pause a thread exactly where a race needs it.
#ifndef CSHIM_HARNESS_H
#define CSHIM_HARNESS_H

#define _GNU_SOURCE 1
#include "../../Sources/CSignalShim/internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

typedef void (*test_body)(void);

typedef struct test_case {
    const char *name;
    test_body body;
    int timeout_s;
    bool portable;
} test_case;

/// Registers a test (runs before main).
#define TEST(fn, seconds)                                                                                   \
    static void fn(void);                                                                                   \
    __attribute__((constructor)) static void register_##fn(void) { harness_register(#fn, fn, seconds, false); } \
    static void fn(void)

/// A test of one piece (the ring, the recorder, the role word, the mask arithmetic) that needs no wait thread,
/// timer or signal delivery: it also runs under qemu-user, which emulates those poorly (scripts/ctest
/// --aarch64 runs only these).
#define UNIT_TEST(fn, seconds)                                                                             \
    static void fn(void);                                                                                  \
    __attribute__((constructor)) static void register_##fn(void) { harness_register(#fn, fn, seconds, true); } \
    static void fn(void)

void harness_register(const char *name, test_body body, int timeout_s, bool portable);

/// Fails the running test with a message naming the expectation.
#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) harness_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                 \
    } while (0)
__attribute__((noreturn, format(printf, 4, 5))) void harness_fail(const char *file, int line, const char *cond,
                                                                     const char *fmt, ...);
/// Prints a note under the test's name (shown with -v, and on failure).
__attribute__((format(printf, 1, 2))) void note(const char *fmt, ...);

// --- the engine, the way the Swift side drives it ---------------------------------------------------------------

/// Starts the engine with a pump that copies records into the test's log, and the default sizes.
void engine_start(uint64_t avoid);
void engine_watch(uint64_t mask);       // fails the test on error
csignal_status engine_try_watch(uint64_t mask);
csignal_status engine_try_unwatch(uint64_t mask);
void engine_stop(void);
/// Records pumped so far (the log), and a wait for a count.
uint32_t log_count(void);
csignal_record log_at(uint32_t index);
/// Waits until the log holds `count` records of `signo` or `timeout_ms` passed; returns how many it holds.
uint32_t log_wait(int signo, uint32_t count, int timeout_ms);
uint32_t log_count_of(int signo);
/// Makes the pump block at its next call until pump_release (the wait thread then stays busy).
void pump_hold(void);
void pump_release(void);

/// A borrower's next(timeout:): borrows the role when it can, waits for a record of `signo` in the log, gives
/// the role back lazily when it got one. Returns whether one arrived within `timeout_ms`.
bool borrower_next(int signo, uint32_t *cursor, int timeout_ms, bool lazily);

// --- injection points ----------------------------------------------------------------------------------------

/// At `point`, the next `times` threads that reach it (any thread, or only `tid` if non-zero) pause until
/// inject_release.
void inject_pause(const char *point, int times, pid_t tid);
/// At `point`, the next `times` threads sleep `ms` milliseconds.
void inject_sleep(const char *point, int times, int ms);
/// Waits until a thread is paused at `point` (or `timeout_ms` passed). Returns the paused thread's tid or 0.
pid_t inject_wait_paused(const char *point, int timeout_ms);
void inject_release(const char *point);
/// How often `point` was reached.
int inject_hits(const char *point);

// --- threads, masks, small helpers ------------------------------------------------------------------------------

pthread_t spawn(void *(*body)(void *), void *arg);
void join(pthread_t thread);
uint64_t thread_blocked(pid_t tid);     // SigBlk from /proc
uint64_t thread_pending(pid_t tid);     // SigPnd from /proc
uint64_t own_blocked(void);
void block_signals(uint64_t mask);
void unblock_signals(uint64_t mask);
int64_t now_ms(void);
void sleep_ms(int ms);
/// Waits until `*flag` is non-zero or `timeout_ms` passed; returns its value.
int wait_flag(_Atomic int *flag, int timeout_ms);
pid_t gettid_raw(void);
void send_rt(int signo, int value);     // sigqueue to this process
/// When set, the fallback handler overwrites errno before it returns (its errno guard must undo that).
extern _Atomic int csignal_test_clobber_errno;
/// Shortens the deadline of setup's waits (5 s in the product), for tests that make them time out.
void csignal_test_set_setup_timeout(int64_t ns);
static inline uint64_t bit(int signo) { return (uint64_t)1 << (signo - 1); }

#endif
