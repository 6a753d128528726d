// Naming threads, for the thread dump and /proc/self/task/*/comm. Swift cannot see pthread_setname_np
// (glibc declares it only under _GNU_SOURCE, which the Swift importer does not define).
#include "internal.h"

#include <pthread.h>
#include <string.h>

/// Names the calling thread (the kernel keeps 15 bytes). Returns 0 or errno. NOT SAFE: any thread.
int csignal_set_thread_name(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = 0;
    return pthread_setname_np(pthread_self(), truncated);
}
