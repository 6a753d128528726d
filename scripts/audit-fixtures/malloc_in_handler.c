// EXPECT-VIOLATION: calls malloc\b
// A handler (found by its name) that allocates: malloc may hold the allocator's lock when the signal arrives.
#include <signal.h>
#include <string.h>
#include <stdlib.h>

void csignal_fixture_malloc_handler(int signo, siginfo_t *info, void *ucontext) {
    (void)info; (void)ucontext;
    void *volatile p = malloc((size_t)signo);
    free(p);
}

int csignal_fixture_malloc_handler_install(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = csignal_fixture_malloc_handler;
    sa.sa_flags = SA_SIGINFO;
    return sigaction(signo, &sa, NULL);
}
