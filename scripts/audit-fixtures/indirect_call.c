// EXPECT-VIOLATION: ^indirect call in handler context: csignal_fixture_indirect_handler
// A handler that calls through a function pointer: the audit cannot know the target, so it must refuse it.
#include <signal.h>
#include <string.h>

void (*volatile csignal_fixture_hook)(int) = 0;

void csignal_fixture_indirect_handler(int signo, siginfo_t *info, void *ucontext) {
    (void)info; (void)ucontext;
    csignal_fixture_hook(signo);
}

int csignal_fixture_indirect_handler_install(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = csignal_fixture_indirect_handler;
    sa.sa_flags = SA_SIGINFO;
    return sigaction(signo, &sa, NULL);
}
