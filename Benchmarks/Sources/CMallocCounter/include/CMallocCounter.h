// A malloc-counting interposer for the allocation benchmarks: preload libBenchMallocCounter.so and every
// malloc, calloc, realloc, memalign, posix_memalign and aligned_alloc of the process is counted (then served
// by glibc). A program finds the counter with dlsym(RTLD_DEFAULT, "cmalloc_counter_total"); without the preload
// the symbol is absent and the program reports that instead of a number.
// NOT SAFE in a signal handler (nor is the malloc it wraps): ordinary threads only.
#ifndef CMALLOC_COUNTER_H
#define CMALLOC_COUNTER_H
#include <stdint.h>
/// Allocations made so far by every thread of the process.
uint64_t cmalloc_counter_total(void);
/// While on, the first 64 allocations keep their call stacks (for cmalloc_counter_dump).
void cmalloc_counter_trace(int on);
/// Writes the kept call stacks to `fd` (backtrace_symbols_fd: no allocation).
void cmalloc_counter_dump(int fd);
#endif
