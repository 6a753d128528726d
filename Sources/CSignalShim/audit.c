// The thread audit: every thread of the process with its mask, its thread-directed pending signals, the
// system call it waits in, and its part in the engine. NOT SAFE: ordinary threads.
#include "internal.h"

#include <stdlib.h>

int csignal_audit(csignal_thread_report *out, int max) {
    csignal_tid_list threads = {0};
    int err = csignal_list_threads(&threads);
    if (err != 0) {
        csignal_tid_list_free(&threads);
        return -err;
    }
    pid_t waiter = csignal_engine_waiter_tid();
    pid_t parker = csignal_parker_tid();
    int found = 0;
    for (size_t i = 0; i < threads.count; i++) {
        csignal_thread_report report;
        if (csignal_read_thread(threads.tids[i], &report) != 0) continue;
        report.is_waiter = report.tid == waiter;
        report.is_parker = report.tid == parker && parker != 0;
        if (found < max) out[found] = report;
        found++;
    }
    csignal_tid_list_free(&threads);
    return found;
}
