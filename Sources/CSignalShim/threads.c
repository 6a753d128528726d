// Reading the threads of this process from /proc: their ids, masks, pending signals and the system call they
// wait in. Used by mask spreading, by the parker's detection and by the audit. NOT SAFE: ordinary threads.
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool csignal_tid_list_contains(const csignal_tid_list *list, pid_t tid) {
    for (size_t i = 0; i < list->count; i++)
        if (list->tids[i] == tid) return true;
    return false;
}

int csignal_tid_list_add(csignal_tid_list *list, pid_t tid) {
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 64;
        pid_t *grown = realloc(list->tids, capacity * sizeof(pid_t));
        if (grown == NULL) return ENOMEM;
        list->tids = grown;
        list->capacity = capacity;
    }
    list->tids[list->count++] = tid;
    return 0;
}

void csignal_tid_list_free(csignal_tid_list *list) {
    free(list->tids);
    list->tids = NULL;
    list->count = list->capacity = 0;
}

int csignal_list_threads(csignal_tid_list *out) {
    out->count = 0;
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL) return errno;
    struct dirent *entry;
    int err = 0;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        if ((err = csignal_tid_list_add(out, (pid_t)atoi(entry->d_name))) != 0) break;
    }
    closedir(dir);
    return err;
}

/// Reads a small /proc file into `buf` (NUL-terminated). Returns the length or -errno.
static long read_small_file(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = read(fd, buf, size - 1);
    int err = errno;
    close(fd);
    if (n < 0) return -err;
    buf[n] = 0;
    return n;
}

/// The value after "Field:" in a status file, or NULL.
static const char *status_field(const char *status, const char *field) {
    size_t length = strlen(field);
    for (const char *line = status; line != NULL && *line != 0;) {
        if (strncmp(line, field, length) == 0 && line[length] == ':') {
            const char *value = line + length + 1;
            while (*value == ' ' || *value == '\t') value++;
            return value;
        }
        line = strchr(line, '\n');
        if (line != NULL) line++;
    }
    return NULL;
}

long csignal_thread_syscall(pid_t tid, uint64_t *arg0) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    if (read_small_file(path, buf, sizeof buf) <= 0) return -1;
    // "NR arg0 arg1 ... sp pc", or "running", or "-1 sp pc" when blocked outside a system call.
    if (buf[0] < '0' || buf[0] > '9') return -1;
    char *end = NULL;
    long nr = strtol(buf, &end, 10);
    if (arg0 != NULL) *arg0 = (end != NULL && *end == ' ') ? strtoull(end + 1, NULL, 16) : 0;
    return nr;
}

int csignal_read_thread(pid_t tid, csignal_thread_report *out) {
    memset(out, 0, sizeof *out);
    out->tid = tid;
    char path[64], status[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    long n = read_small_file(path, status, sizeof status);
    if (n < 0) return (int)-n;
    const char *value;
    if ((value = status_field(status, "SigBlk")) == NULL) return ENOENT;
    out->blocked = strtoull(value, NULL, 16);
    if ((value = status_field(status, "SigPnd")) != NULL) out->pending = strtoull(value, NULL, 16);
    if ((value = status_field(status, "voluntary_ctxt_switches")) != NULL) {
        out->voluntary_switches = strtoull(value, NULL, 10);
    }
    if ((value = status_field(status, "Name")) != NULL) {
        size_t length = strcspn(value, "\n");
        if (length >= sizeof out->name) length = sizeof out->name - 1;
        memcpy(out->name, value, length);
        out->name[length] = 0;
    }
    out->syscall_nr = (int32_t)csignal_thread_syscall(tid, NULL);
    return 0;
}
