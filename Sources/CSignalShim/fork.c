// After fork(): the child of a process that runs the engine.
//
// The child has a copy of the engine's memory but only the forking thread: no wait thread. It inherited the
// engine's dispositions and the forking thread's mask, so watched signals would stay blocked and pending
// forever. csignal_engine_prepare_child puts back, in the child only, what stop would.
#include "internal.h"

#include <unistd.h>

/// ASYNC-SIGNAL-SAFE: sigaction, sigprocmask, getpid, raw gettid and atomic stores only (allowed between fork
/// and exec).
int csignal_engine_prepare_child(void) {
    if (!csignal_engine_running()) return 0;
    // In the parent this would tear the dispositions away from a running engine.
    if (getpid() == atomic_load_explicit(&csignal_own_pid, memory_order_relaxed)) return EINVAL;
    uint64_t watched = csignal_watched();
    // The forking thread's own previous state for each watched signal it blocks for us; a thread we never
    // recorded (it was created after the watch) gets them unblocked, as at unwatch.
    pid_t self = csignal_gettid();
    uint64_t keep = csignal_masks_previous_blocked(self, watched);
    int err = csignal_dispositions_restore_in_child(watched);
    if (err != 0) return err;
    // Dispositions first, then the mask: the child's pending set starts empty, so nothing can meet the old
    // handler here, and anything that arrives from now on meets the restored disposition.
    sigset_t unblock;
    csignal_sigset_from_mask(&unblock, watched & ~keep);
    if (sigprocmask(SIG_UNBLOCK, &unblock, NULL) != 0) return errno;
    csignal_set_watched(0);
    csignal_role_reset();
    csignal_waiter_forget();
    return 0;
}
