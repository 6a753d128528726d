// Child processes: the two calls a child supervisor needs that Swift cannot make.
//
// prctl is variadic, and Swift imports no variadic C function. posix_spawn_file_actions_addtcsetpgrp_np
// (glibc 2.35) is declared only under _GNU_SOURCE, which the Swift importer does not define. Everything else
// the supervisor does (posix_spawn, waitpid, kill) Swift calls directly.
//
// Everything here is NOT SAFE: any thread (ordinary thread context, never a handler).
#include "internal.h"

#include <spawn.h>
#include <sys/prctl.h>

int csignal_set_child_subreaper(bool on) {
    return prctl(PR_SET_CHILD_SUBREAPER, on ? 1UL : 0UL, 0UL, 0UL, 0UL) == 0 ? 0 : errno;
}

int csignal_is_child_subreaper(bool *on) {
    int value = 0;
    if (prctl(PR_GET_CHILD_SUBREAPER, (unsigned long)&value, 0UL, 0UL, 0UL) != 0) return errno;
    *on = value != 0;
    return 0;
}

int csignal_spawn_add_tcsetpgrp(posix_spawn_file_actions_t *actions, int terminal_fd) {
    return posix_spawn_file_actions_addtcsetpgrp_np(actions, terminal_fd);
}
