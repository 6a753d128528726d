// EXPECT-VIOLATION: calls (fputs|fwrite)\b
// The unsafe call is the handler's last action, which -O2 turns into a jump (a tail call), not a call.
#include <signal.h>
#include <string.h>
#include <stdio.h>

void csignal_fixture_tail_handler(int signo) {
    if (signo == SIGUSR1) fputs("tail\n", stderr);
}

int csignal_fixture_tail_handler_install(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = csignal_fixture_tail_handler;
    return sigaction(signo, &sa, NULL);
}
