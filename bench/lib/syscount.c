/*
 * The calling thread's system calls, counted by the kernel: a perf counter
 * on the raw_syscalls:sys_enter tracepoint for this thread only. The
 * benchmarks read it around a phase that runs on the loop thread, so the
 * count is that thread's system calls (not libuv's thread pool). Needs
 * tracefs (/sys/kernel/tracing, mounted by `perf` or by hand) and the
 * right to trace (root, or perf_event_paranoid <= -1); otherwise
 * syscount_open() returns -1 and the benchmark prints nothing for it.
 * Included (as a .c) by the benchmark programs.
 */
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static long syscount_tracepoint_id(void)
{
    static const char *const paths[] = {
        "/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
        "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id"};
    unsigned i;
    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        FILE *f = fopen(paths[i], "r");
        long id = -1;
        if (f == NULL) {
            continue;
        }
        if (fscanf(f, "%ld", &id) != 1) {
            id = -1;
        }
        fclose(f);
        if (id >= 0) {
            return id;
        }
    }
    return -1;
}

/* A counter of this thread's system calls, running; -1 if unavailable. */
static int syscount_open(void)
{
    struct perf_event_attr a;
    long id = syscount_tracepoint_id();
    long fd;
    if (id < 0) {
        return -1;
    }
    memset(&a, 0, sizeof(a));
    a.type = PERF_TYPE_TRACEPOINT;
    a.size = sizeof(a);
    a.config = (uint64_t)id;
    a.exclude_hv = 1;
    fd = syscall(SYS_perf_event_open, &a, 0 /* this thread */, -1, -1, 0);
    return fd < 0 ? -1 : (int)fd;
}

/* System calls counted so far (0 when fd is -1). The read itself is one. */
static uint64_t syscount_read(int fd)
{
    uint64_t v = 0;
    if (fd < 0 || read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
        return 0;
    }
    return v;
}
