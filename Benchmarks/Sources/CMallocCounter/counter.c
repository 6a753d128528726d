// Counts allocations by wrapping glibc's allocator entry points. glibc exports its implementations as
// __libc_malloc & co., so the wrappers call them directly: no dlsym(RTLD_NEXT), which itself allocates and
// would recurse. The count is one relaxed atomic add: it never allocates, locks or calls anything else.
#include "CMallocCounter.h"

#include <errno.h>
#include <execinfo.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static uint64_t total;

// Tracing (for finding out *which* allocations happen): while armed, the first TRACE_MAX allocations keep
// their call stacks in static storage. backtrace() is warmed up before arming (its first call loads the
// unwinder, which allocates), and a per-thread guard keeps it from counting itself.
enum { TRACE_MAX = 64, TRACE_DEPTH = 12 };
static int armed;
static uint64_t traced;
static void *traces[TRACE_MAX][TRACE_DEPTH];
static int depths[TRACE_MAX];
static _Thread_local int inside;

static inline void count(void) {
    __atomic_fetch_add(&total, 1, __ATOMIC_RELAXED);
    if (__atomic_load_n(&armed, __ATOMIC_RELAXED) && !inside) {
        uint64_t i = __atomic_fetch_add(&traced, 1, __ATOMIC_RELAXED);
        if (i < TRACE_MAX) {
            inside = 1;
            depths[i] = backtrace(traces[i], TRACE_DEPTH);
            inside = 0;
        }
    }
}

void cmalloc_counter_trace(int on) {
    if (on) {
        void *warm[2];
        inside = 1;
        backtrace(warm, 2);
        inside = 0;
    }
    __atomic_store_n(&armed, on, __ATOMIC_RELEASE);
}

void cmalloc_counter_dump(int fd) {
    uint64_t n = __atomic_load_n(&traced, __ATOMIC_ACQUIRE);
    for (uint64_t i = 0; i < n && i < TRACE_MAX; i++) {
        char header[64];
        int len = snprintf(header, sizeof header, "--- allocation %llu\n", (unsigned long long)i + 1);
        if (write(fd, header, (size_t)len) < 0) return;
        backtrace_symbols_fd(traces[i], depths[i], fd);
    }
}

uint64_t cmalloc_counter_total(void) { return __atomic_load_n(&total, __ATOMIC_RELAXED); }

void *malloc(size_t size) {
    count();
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
    count();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
    count();
    return __libc_realloc(p, size);
}

void free(void *p) { __libc_free(p); }

void *memalign(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    count();
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}
