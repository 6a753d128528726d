// Taking signals from the kernel: what the role holder (wait thread or borrower) does after sigwaitinfo.
//
// It records every watched delivery (recorder.c) and treats a dequeued internal signal as a doorbell: the
// holder clears the drain flag, so the pump that follows sees every record whose doorbell it consumed.
//
// A wait that slept hands its first delivery over alone: nothing stands between the kernel's wake-up and the
// pump but recording it. The holder then takes what queued up meanwhile without sleeping
// (csignal_take_pending), after the pump, off the path of the first one.
#include "internal.h"

#include <time.h>

/// NOT SAFE: the role holder only.
int csignal_take_batch(const sigset_t *set, const struct timespec *timeout, uint32_t limit, bool *pump) {
    static const struct timespec zero = {0, 0};
    const int internal = csignal_internal_signo();
    siginfo_t info;
    int signo = timeout == NULL ? sigwaitinfo(set, &info) : sigtimedwait(set, &info, timeout);
    if (signo < 0) return errno;
    uint32_t taken = 0;
    bool slept = timeout == NULL || timeout->tv_sec != 0 || timeout->tv_nsec != 0;
    if (slept) limit = 1;  // the first one goes to Swift at once; the rest is taken after the pump
    for (;;) {
        if (signo == internal) {
            // A doorbell: stop the batch here, so that the holder looks at the role word, the wait set and the
            // ring before it takes anything else.
            csignal_role_acquired();
            *pump = true;
            return 0;
        }
        CSIGNAL_INJECT("take.before-record");
        csignal_record_delivery(signo, &info, CSIGNAL_ROUTE_WAITER);
        *pump = true;
        if (++taken >= limit) return 0;
        signo = sigtimedwait(set, &info, &zero);
        if (signo < 0) return 0;  // EAGAIN: nothing else pending
    }
}
