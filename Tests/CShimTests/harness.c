// The harness behind harness.h: a test runner that forks one process per test, the engine driven as the Swift
// side drives it, and the injection points.
#include "harness.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// --- registry and runner -------------------------------------------------------------------------------------

enum { MAX_TESTS = 256 };
static test_case tests[MAX_TESTS];
static int test_count = 0;
static const char *current_test = "";
static bool verbose = false;

void harness_register(const char *name, test_body body, int timeout_s, bool portable) {
    if (test_count < MAX_TESTS) tests[test_count++] = (test_case){name, body, timeout_s, portable};
}

void harness_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
    char message[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    fprintf(stderr, "    %s:%d: expected %s: %s\n", file, line, cond, message);
    fflush(stderr);
    _exit(1);
}

void note(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "    note: ");
    vfprintf(stderr, fmt, args);
    fprintf(stderr, "\n");
    va_end(args);
}

static int run_one(const test_case *test) {
    fflush(stdout);
    fflush(stderr);
    int out[2];
    if (pipe(out) != 0) return 1;
    pid_t child = fork();
    if (child == 0) {
        dup2(out[1], 2);
        close(out[0]);
        current_test = test->name;
        alarm((unsigned)test->timeout_s);
        test->body();
        _exit(0);
    }
    close(out[1]);
    char captured[65536];
    size_t used = 0;
    ssize_t n;
    while ((n = read(out[0], captured + used, sizeof captured - 1 - used)) > 0) used += (size_t)n;
    captured[used] = 0;
    close(out[0]);
    int status = 0;
    waitpid(child, &status, 0);
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) {
        printf("PASS %s\n", test->name);
        if (verbose && used > 0) fputs(captured, stdout);
    } else {
        if (WIFSIGNALED(status)) {
            printf("FAIL %s (%s%s)\n", test->name, WTERMSIG(status) == SIGALRM ? "timed out: " : "killed by signal ",
                   WTERMSIG(status) == SIGALRM ? "" : strsignal(WTERMSIG(status)));
        } else {
            printf("FAIL %s\n", test->name);
        }
        fputs(captured, stdout);
    }
    fflush(stdout);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *only = NULL;
    bool units_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) verbose = true;
        else if (strcmp(argv[i], "--units") == 0) units_only = true;
        else if (strcmp(argv[i], "--list") == 0) {
            for (int t = 0; t < test_count; t++) printf("%s\n", tests[t].name);
            return 0;
        } else only = argv[i];
    }
    int failed = 0, ran = 0;
    for (int t = 0; t < test_count; t++) {
        if (only != NULL && strstr(tests[t].name, only) == NULL) continue;
        if (units_only && !tests[t].portable) continue;
        ran++;
        failed += run_one(&tests[t]);
    }
    printf("%d of %d passed\n", ran - failed, ran);
    return failed == 0 && ran > 0 ? 0 : 1;
}

// --- time, threads, masks ------------------------------------------------------------------------------------

int64_t now_ms(void) { return csignal_now_ns() / 1000000; }

void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {}
}

int wait_flag(_Atomic int *flag, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    while (atomic_load(flag) == 0 && now_ms() < deadline) sleep_ms(1);
    return atomic_load(flag);
}

pid_t gettid_raw(void) { return (pid_t)syscall(SYS_gettid); }

pthread_t spawn(void *(*body)(void *), void *arg) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, body, arg) != 0) harness_fail(__FILE__, __LINE__, "pthread_create", "failed");
    return thread;
}

void join(pthread_t thread) { pthread_join(thread, NULL); }

static uint64_t status_hex(pid_t tid, const char *field) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *at = strstr(buf, field);
    return at ? strtoull(at + strlen(field) + 1, NULL, 16) : 0;
}

uint64_t thread_blocked(pid_t tid) { return status_hex(tid, "SigBlk"); }
uint64_t thread_pending(pid_t tid) { return status_hex(tid, "SigPnd"); }

uint64_t own_blocked(void) {
    sigset_t set;
    pthread_sigmask(SIG_BLOCK, NULL, &set);
    return csignal_mask_from_sigset(&set);
}

void block_signals(uint64_t mask) {
    sigset_t set;
    csignal_sigset_from_mask(&set, mask);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void unblock_signals(uint64_t mask) {
    sigset_t set;
    csignal_sigset_from_mask(&set, mask);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void send_rt(int signo, int value) {
    union sigval sv = {.sival_int = value};
    while (sigqueue(getpid(), signo, sv) != 0) {
        if (errno != EAGAIN) harness_fail(__FILE__, __LINE__, "sigqueue", "errno %d", errno);
        sleep_ms(1);
    }
}

// --- the record log and the pump -----------------------------------------------------------------------------

enum { LOG_MAX = 1 << 20 };
static csignal_record *log_records = NULL;
static _Atomic uint32_t log_used = 0;  // futex word
static pthread_mutex_t pump_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int pump_held = 0;
static _Atomic uint32_t pump_gate = 0;

static void test_pump(void *context) {
    (void)context;
    if (atomic_load(&pump_held)) {
        while (atomic_load(&pump_held)) csignal_futex_wait(&pump_gate, 0, 1000000000);
    }
    pthread_mutex_lock(&pump_lock);
    csignal_record batch[256];
    uint32_t n;
    while ((n = csignal_ring_pop(batch, 256)) > 0) {
        uint32_t used = atomic_load(&log_used);
        for (uint32_t i = 0; i < n && used < LOG_MAX; i++) log_records[used++] = batch[i];
        atomic_store(&log_used, used);
    }
    pthread_mutex_unlock(&pump_lock);
    csignal_futex_wake(&log_used);
}

void pump_hold(void) { atomic_store(&pump_held, 1); }
void pump_release(void) {
    atomic_store(&pump_held, 0);
    atomic_store(&pump_gate, 1);
    csignal_futex_wake(&pump_gate);
}

uint32_t log_count(void) { return atomic_load(&log_used); }
csignal_record log_at(uint32_t index) { return log_records[index]; }

uint32_t log_count_of(int signo) {
    uint32_t n = 0, used = log_count();
    for (uint32_t i = 0; i < used; i++)
        if (log_records[i].signo == signo) n++;
    return n;
}

uint32_t log_wait(int signo, uint32_t count, int timeout_ms) {
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        uint32_t seen = atomic_load(&log_used);
        uint32_t have = log_count_of(signo);
        if (have >= count || now_ms() >= deadline) return have;
        csignal_futex_wait(&log_used, seen, 2000000);
    }
}

void engine_start(uint64_t avoid) {
    if (log_records == NULL) log_records = calloc(LOG_MAX, sizeof *log_records);
    csignal_start_options options = {.avoid = avoid, .ring_capacity = 8192, .batch_limit = 64, .pump = test_pump,
                                      .run_jobs = NULL, .context = NULL};
    csignal_status status;
    csignal_engine_start(&options, &status);
    CHECK(status.code == CSIGNAL_OK, "start: code %d err %d", status.code, status.err);
}

csignal_status engine_try_watch(uint64_t mask) {
    csignal_status status;
    csignal_engine_watch(mask, &status);
    return status;
}

csignal_status engine_try_unwatch(uint64_t mask) {
    csignal_status status;
    csignal_engine_unwatch(mask, &status);
    return status;
}

void engine_watch(uint64_t mask) {
    csignal_status status = engine_try_watch(mask);
    CHECK(status.code == CSIGNAL_OK, "watch: code %d err %d call %s tid %d signo %d", status.code, status.err,
          status.call ? status.call : "-", status.tid, status.signo);
}

void engine_stop(void) {
    csignal_status status;
    csignal_engine_stop(&status);
    CHECK(status.code == CSIGNAL_OK, "stop: code %d err %d", status.code, status.err);
}

bool borrower_next(int signo, uint32_t *cursor, int timeout_ms, bool lazily) {
    int64_t deadline = now_ms() + timeout_ms;
    // What the subscription already has.
    for (uint32_t i = *cursor; i < log_count(); i++) {
        if (log_records[i].signo == signo) {
            *cursor = i + 1;
            return true;
        }
    }
    int begun = csignal_borrow_begin((int64_t)timeout_ms * 1000000);
    bool found = false;
    if (begun == 0) {
        test_pump(NULL);
        for (;;) {
            for (uint32_t i = *cursor; i < log_count(); i++) {
                if (log_records[i].signo == signo) {
                    *cursor = i + 1;
                    found = true;
                    break;
                }
            }
            if (found) break;
            int64_t left = deadline - now_ms();
            if (left <= 0) break;
            bool pump = false;
            int result = csignal_borrow_wait(left * 1000000, &pump);
            if (pump || csignal_ring_pending() > 0) test_pump(NULL);
            if (result == ECANCELED) break;
        }
        if (found && lazily) csignal_borrow_end_lazily();
        else csignal_borrow_end();
        if (found) return true;
    }
    // Not the holder: wait for the pump like any subscriber.
    while (now_ms() < deadline) {
        for (uint32_t i = *cursor; i < log_count(); i++) {
            if (log_records[i].signo == signo) {
                *cursor = i + 1;
                return true;
            }
        }
        uint32_t seen = atomic_load(&log_used);
        csignal_futex_wait(&log_used, seen, 1000000);
    }
    return false;
}

// --- injection points ----------------------------------------------------------------------------------------

enum { MAX_POINTS = 32, ACT_PAUSE = 1, ACT_SLEEP = 2 };
typedef struct point {
    char name[64];
    int action;
    _Atomic int remaining;
    pid_t tid;
    int ms;
    _Atomic int hits;
    _Atomic int paused_tid;
    _Atomic uint32_t released;  // futex word
} point;
static point points[MAX_POINTS];
static _Atomic int point_count = 0;

static point *find_point(const char *name, bool create) {
    int count = atomic_load(&point_count);
    for (int i = 0; i < count; i++)
        if (strcmp(points[i].name, name) == 0) return &points[i];
    if (!create || count == MAX_POINTS) return NULL;
    point *p = &points[count];
    snprintf(p->name, sizeof p->name, "%s", name);
    atomic_store(&point_count, count + 1);
    return p;
}

void csignal_inject(const char *name) {
    point *p = find_point(name, false);
    if (p == NULL) return;
    atomic_fetch_add(&p->hits, 1);
    if (p->action == 0) return;
    if (p->tid != 0 && p->tid != (pid_t)syscall(SYS_gettid)) return;
    int left = atomic_load(&p->remaining);
    do {
        if (left <= 0) return;
    } while (!atomic_compare_exchange_weak(&p->remaining, &left, left - 1));
    if (p->action == ACT_SLEEP) {
        struct timespec ts = {p->ms / 1000, (long)(p->ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0) {}
        return;
    }
    atomic_store(&p->paused_tid, (int)syscall(SYS_gettid));
    syscall(SYS_futex, &p->paused_tid, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    while (atomic_load(&p->released) == 0) {
        syscall(SYS_futex, &p->released, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    }
}

void inject_pause(const char *name, int times, pid_t tid) {
    point *p = find_point(name, true);
    p->tid = tid;
    atomic_store(&p->released, 0);
    atomic_store(&p->paused_tid, 0);
    atomic_store(&p->remaining, times);
    p->action = ACT_PAUSE;
}

void inject_sleep(const char *name, int times, int ms) {
    point *p = find_point(name, true);
    p->ms = ms;
    p->tid = 0;
    atomic_store(&p->remaining, times);
    p->action = ACT_SLEEP;
}

pid_t inject_wait_paused(const char *name, int timeout_ms) {
    point *p = find_point(name, true);
    int64_t deadline = now_ms() + timeout_ms;
    while (atomic_load(&p->paused_tid) == 0 && now_ms() < deadline) sleep_ms(1);
    return atomic_load(&p->paused_tid);
}

void inject_release(const char *name) {
    point *p = find_point(name, true);
    atomic_store(&p->remaining, 0);
    atomic_store(&p->released, 1);
    syscall(SYS_futex, &p->released, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

int inject_hits(const char *name) {
    point *p = find_point(name, false);
    return p ? atomic_load(&p->hits) : 0;
}

/// Counting injection points need an entry before the race: tests call this via inject_sleep(..., 0, 0).
_Atomic int csignal_test_clobber_errno = 0;
