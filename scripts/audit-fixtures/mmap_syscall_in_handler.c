// EXPECT-VIOLATION: system call 9 is not on the handler-context list
// A raw mmap from a handler: the system call itself would return, but nothing in handler context has any
// business mapping memory, and the allowlist of raw system calls is short on purpose.
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static void csignal_fixture_mmap_handler(int signo) {
    (void)signo;
    syscall(SYS_mmap, NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int csignal_fixture_mmap_install(int signo) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = csignal_fixture_mmap_handler;
    return sigaction(signo, &sa, NULL);
}
