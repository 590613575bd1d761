/*
 * The test runner of each tier: runs every registered TEST(), then replays
 * every fuzz target's corpus (one test per target), and prints
 * "N passed, N failed" as its last line. Exit status 1 on any failure.
 *
 * Usage: test-unit [-l] [PATTERN...]   (-l lists the tests)
 *
 * Each test runs in a forked child, in a process group of its own, while
 * the runner waits for it with a deadline (its limit: TEST_TIMEOUT() or
 * the default, P2PRAFT_TEST_TIMEOUT seconds, times
 * P2PRAFT_TEST_TIMEOUT_SCALE). A test still running at its deadline is
 * killed with its whole process group, reported as
 *     FAIL suite/name
 *          timed out: ...
 * and the run goes on with the next test. A test whose process dies (a
 * crash, an ASan abort) or exits non-zero after passing (a leak reported
 * by LeakSanitizer or valgrind at its exit) fails by name too, and only
 * that test. The last lines name every failed test, then the summary.
 *
 * The child is a copy of the runner before the test, so tests cannot lean
 * on each other's leftovers. To debug one test in gdb, use
 * "set follow-fork-mode child", or P2PRAFT_TEST_FORK=0.
 *
 * P2PRAFT_TEST_FORK=0 (the default under valgrind, P2PRAFT_VALGRIND=1)
 * runs the tests in the runner's own process instead, under a watchdog: a
 * test still running at its limit is named as failed and the run ends
 * there, with the summary line; a crash ends the run.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lp2p.h"
#include "fuzz.h"
#include "oom.h"
#include "test.h"

static struct test_case *head, **tail = &head;
static struct fuzz_target *fuzz_head, **fuzz_tail = &fuzz_head;
static jmp_buf jump;
static char failure[2048];

void test__register(struct test_case *tc)
{
    tc->next = NULL;
    *tail = tc;
    tail = &tc->next;
}

void test__fuzz_register(struct fuzz_target *t)
{
    t->next = NULL;
    *fuzz_tail = t;
    fuzz_tail = &t->next;
}

void test__fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(failure, sizeof(failure), "%s:%d: ", file, line);
    va_start(ap, fmt);
    vsnprintf(failure + n, sizeof(failure) - (size_t)n, fmt, ap);
    va_end(ap);
    longjmp(jump, 1);
}

void fuzz__check_failed(const char *file, int line, const char *what)
{
    test__fail(file, line, "fuzz invariant failed: %s", what);
}

const char *test__vectors_dir(void)
{
    const char *d = getenv("P2PRAFT_VECTORS");
    return d != NULL && d[0] != 0 ? d : "test/vectors";
}

uint8_t *test__read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL) {
        test__fail(__FILE__, __LINE__, "cannot open %s: %s", path,
                   strerror(errno));
    }
    for (;;) {
        size_t got;
        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 8192;
            p = realloc(p, cap + 1);
            if (p == NULL) {
                fclose(f);
                test__fail(__FILE__, __LINE__, "out of memory");
            }
        }
        got = fread(p + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    fclose(f);
    p[n] = 0;
    *len = n;
    return p;
}

uint8_t *test__read_vector(const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", test__vectors_dir(), name);
    return test__read_file(path, len);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

uint8_t *test__unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex), i;
    uint8_t *p;
    if (n % 2 != 0) {
        test__fail(__FILE__, __LINE__, "odd-length hex string");
    }
    p = malloc(n / 2 + 1);
    if (p == NULL) {
        test__fail(__FILE__, __LINE__, "out of memory");
    }
    for (i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(p);
            test__fail(__FILE__, __LINE__, "bad hex digit in \"%.40s\"", hex);
        }
        p[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return p;
}

void test__hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t guarded_span(size_t len)
{
    size_t ps = page_size();
    return ((len + ps - 1) / ps + 1) * ps;
}

uint8_t *test__guarded(const void *data, size_t len)
{
    size_t ps = page_size(), span = guarded_span(len);
    uint8_t *base = mmap(NULL, span, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *p;
    if (base == MAP_FAILED) {
        test__fail(__FILE__, __LINE__, "mmap: %s", strerror(errno));
    }
    if (mprotect(base + span - ps, ps, PROT_NONE) != 0) {
        test__fail(__FILE__, __LINE__, "mprotect: %s", strerror(errno));
    }
    p = base + span - ps - len;
    if (len > 0) {
        memcpy(p, data, len);
    }
    return p;
}

void test__guarded_free(uint8_t *p, size_t len)
{
    size_t span = guarded_span(len), ps = page_size();
    munmap(p + len + ps - span, span);
}

/* Replays each file of the target's corpus directory, from guarded
 * memory. An empty or missing corpus is a failure: every target ships
 * seeds. */
static void replay_corpus(struct fuzz_target *t, long *files)
{
    const char *root = getenv("P2PRAFT_CORPUS");
    char dir[4096], path[8192];
    DIR *d;
    struct dirent *e;
    snprintf(dir, sizeof(dir), "%s/%s", root ? root : "test/fuzz/corpus",
             t->name);
    d = opendir(dir);
    if (d == NULL) {
        test__fail(__FILE__, __LINE__, "no corpus at %s", dir);
    }
    *files = 0;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        uint8_t *data, *g;
        size_t len;
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        data = test__read_file(path, &len);
        g = test__guarded(data, len);
        free(data);
        t->fn(g, len);
        test__guarded_free(g, len);
        (*files)++;
    }
    closedir(d);
    if (*files == 0) {
        test__fail(__FILE__, __LINE__, "empty corpus at %s", dir);
    }
}

static int matches(const struct test_case *tc, const char *full, int argc,
                   char **argv)
{
    int i;
    if (tc != NULL && tc->hidden) {
        for (i = 0; i < argc; i++) {
            if (strcmp(full, argv[i]) == 0) {
                return 1;
            }
        }
        return 0;
    }
    if (argc == 0) {
        return 1;
    }
    for (i = 0; i < argc; i++) {
        if (strstr(full, argv[i]) != NULL) {
            return 1;
        }
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A non-negative number from the environment, or `dflt`. */
static double env_seconds(const char *name, double dflt)
{
    const char *v = getenv(name);
    char *end;
    double d;
    if (v == NULL || v[0] == 0) {
        return dflt;
    }
    errno = 0;
    d = strtod(v, &end);
    if (errno != 0 || *end != 0 || !(d >= 0)) {
        fprintf(stderr, "%s=%s: not a number of seconds; using %g\n", name,
                v, dflt);
        return dflt;
    }
    return d;
}

struct tally {
    int passed, failed;
    char names[4096]; /* the failed tests, for the closing lines */
    int names_cut;
};

static void record(struct tally *t, const char *full, int ok)
{
    size_t n = strlen(t->names);
    if (ok) {
        t->passed++;
        return;
    }
    t->failed++;
    if (t->names_cut) {
        return;
    }
    if (n + strlen(full) + 1 < sizeof(t->names) - 4) {
        snprintf(t->names + n, sizeof(t->names) - n, " %s", full);
    } else {
        snprintf(t->names + n, sizeof(t->names) - n, " ...");
        t->names_cut = 1;
    }
}

/* ---- one test in a child process ---- */

enum { RESULT_NONE = 0, RESULT_PASSED, RESULT_FAILED };

/* Shared with the children: how the last test ended, as it saw it. */
static volatile int *shared_result;
/* The process group of the running test, for the signal forwarder. */
static volatile sig_atomic_t running_pgid;
static sigset_t saved_mask;

/* Ctrl-C or a kill of the runner takes the running test down with it
 * (it is in its own process group, out of reach of the terminal's). */
static void forward_signal(int sig)
{
    if (running_pgid > 0) {
        kill(-(pid_t)running_pgid, SIGKILL);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void runner_signals_init(void)
{
    sigset_t chld;
    size_t i;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    /* SIGCHLD stays blocked in the runner, so that sigtimedwait() sees it;
     * each child gets the original mask back. */
    sigprocmask(SIG_BLOCK, &chld, &saved_mask);
    for (i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
        signal(forwarded[i], forward_signal);
    }
}

static void child_signals_reset(void)
{
    size_t i;
    for (i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
        signal(forwarded[i], SIG_DFL);
    }
    sigprocmask(SIG_SETMASK, &saved_mask, NULL);
}

static void describe_status(int status, char *out, size_t cap)
{
    if (WIFEXITED(status)) {
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(out, cap, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    } else {
        snprintf(out, cap, "ended with wait status %#x", status);
    }
}

/*
 * Runs body(arg) in a child and waits for it for at most limit_s seconds
 * (0: no limit). body prints the test's "ok"/"FAIL" lines and returns
 * RESULT_PASSED or RESULT_FAILED. Returns 1 if the test passed.
 */
static int run_isolated(const char *full, double limit_s,
                        int (*body)(const char *full, void *arg), void *arg)
{
    sigset_t chld;
    siginfo_t si;
    pid_t pid, runner;
    int status = 0, timed_out = 0, result;
    double deadline = now_ms() + limit_s * 1e3;
    char what[128];

    *shared_result = RESULT_NONE;
    fflush(NULL); /* nothing buffered may be written twice */
    runner = getpid();
    pid = fork();
    if (pid < 0) {
        printf("FAIL %s\n     fork: %s\n", full, strerror(errno));
        return 0;
    }
    if (pid == 0) {
        setpgid(0, 0);
        /* A runner killed where it cannot forward (SIGKILL) takes its
         * test along. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != runner) {
            _exit(1);
        }
        child_signals_reset();
        result = body(full, arg);
        *shared_result = result;
        fflush(NULL);
        /* exit(), not _exit(): LeakSanitizer and valgrind check this
         * test's leaks now. */
        exit(result == RESULT_PASSED ? 0 : 1);
    }
    /* Also from the parent, so that the group exists before any kill. */
    setpgid(pid, pid);
    running_pgid = pid;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        struct timespec ts;
        double left;
        memset(&si, 0, sizeof(si));
        /* WNOWAIT: the child stays a zombie, so its pid (the group's ID)
         * cannot be reused before the group is killed below. */
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            si.si_pid == pid) {
            break;
        }
        if (limit_s <= 0) {
            sigwaitinfo(&chld, NULL);
            continue;
        }
        left = deadline - now_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        ts.tv_sec = (time_t)(left / 1e3);
        ts.tv_nsec = (long)((left - (double)ts.tv_sec * 1e3) * 1e6);
        sigtimedwait(&chld, NULL, &ts);
    }
    /* The test is over (or out of time): nothing it started outlives it. */
    kill(-pid, SIGKILL);
    if (timed_out) {
        kill(pid, SIGKILL);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    running_pgid = 0;
    result = *shared_result;
    if (timed_out) {
        printf("FAIL %s\n     timed out: still running at its limit of %g s;"
               " killed\n", full, limit_s);
        return 0;
    }
    describe_status(status, what, sizeof(what));
    if (result == RESULT_PASSED) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            return 1;
        }
        printf("FAIL %s\n     passed, but its process then %s (a sanitizer or"
               " valgrind report above?)\n", full, what);
        return 0;
    }
    if (result == RESULT_NONE) {
        printf("FAIL %s\n     its process %s before the test ended\n", full,
               what);
    }
    return 0;
}

static int run_test_body(const char *full, void *arg)
{
    struct test_case *tc = arg;
    volatile double t0 = now_ms();
    if (setjmp(jump) == 0) {
        tc->fn();
        test__oom_remove();
        printf("ok   %s (%.0f ms)\n", full, now_ms() - t0);
        return RESULT_PASSED;
    }
    test__oom_remove();
    printf("FAIL %s\n     %s\n", full, failure);
    return RESULT_FAILED;
}

static int run_corpus_body(const char *full, void *arg)
{
    struct fuzz_target *ft = arg;
    if (setjmp(jump) == 0) {
        long n = 0;
        replay_corpus(ft, &n);
        printf("ok   %s (%ld inputs)\n", full, n);
        return RESULT_PASSED;
    }
    printf("FAIL %s\n     %s\n", full, failure);
    return RESULT_FAILED;
}

/* ---- one test in this process (P2PRAFT_TEST_FORK=0) ---- */

/* Written by the watchdog as it ends the run; prepared before each test,
 * since the handler may only write(2) and _exit(2). */
static char watchdog_msg[8192];
static size_t watchdog_len;

static void watchdog_fire(int sig)
{
    ssize_t w;
    (void)sig;
    w = write(1, watchdog_msg, watchdog_len);
    (void)w;
    _exit(1);
}

/*
 * Runs body(arg) here, under a watchdog: at its limit the run ends with the
 * test named as failed and the summary line (the tests after it do not
 * run; a process the test started is not killed). Returns 1 if the test
 * passed.
 */
static int run_in_process(const struct tally *t, const char *full,
                          double limit_s,
                          int (*body)(const char *full, void *arg), void *arg)
{
    struct itimerval it;
    int n, result;
    n = snprintf(watchdog_msg, sizeof(watchdog_msg),
                 "FAIL %s\n     timed out: still running at its limit of %g s;"
                 " the run ends here\nfailed:%s %s\n%d passed, %d failed\n",
                 full, limit_s, t->names, full, t->passed, t->failed + 1);
    watchdog_len = n < 0 ? 0 : (size_t)n < sizeof(watchdog_msg)
                                   ? (size_t)n
                                   : sizeof(watchdog_msg) - 1;
    memset(&it, 0, sizeof(it));
    it.it_value.tv_sec = (time_t)limit_s;
    it.it_value.tv_usec =
        (suseconds_t)((limit_s - (double)it.it_value.tv_sec) * 1e6);
    if (limit_s > 0) {
        signal(SIGALRM, watchdog_fire);
        setitimer(ITIMER_REAL, &it, NULL);
    }
    result = body(full, arg);
    memset(&it, 0, sizeof(it));
    setitimer(ITIMER_REAL, &it, NULL);
    return result == RESULT_PASSED;
}

/* Whether tests run in child processes (the default) or in the runner. */
static int isolate = 1;

static int run_one(const struct tally *t, const char *full, double limit_s,
                   int (*body)(const char *full, void *arg), void *arg)
{
    if (isolate) {
        return run_isolated(full, limit_s, body, arg);
    }
    return run_in_process(t, full, limit_s, body, arg);
}

int main(int argc, char **argv)
{
    struct test_case *tc;
    struct fuzz_target *ft;
    struct tally t;
    int list = 0;
    char full[512];
    double dflt, scale;

    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Test peers and the raft stream bridge write with libuv: a peer
     * that went away must fail a test, not kill the runner. (lp2p itself
     * needs nothing: it sends with MSG_NOSIGNAL; a test checks that with
     * the default disposition.) */
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "-l") == 0) {
        list = 1;
        argc--;
        argv++;
    }
    argc--;
    argv++;
    if (list) {
        for (tc = head; tc != NULL; tc = tc->next) {
            snprintf(full, sizeof(full), "%s/%s", tc->suite, tc->name);
            if (!tc->hidden && matches(tc, full, argc, argv)) {
                printf("%s\n", full);
            }
        }
        for (ft = fuzz_head; ft != NULL; ft = ft->next) {
            snprintf(full, sizeof(full), "fuzz-corpus/%s", ft->name);
            if (matches(NULL, full, argc, argv)) {
                printf("%s\n", full);
            }
        }
        return 0;
    }

    dflt = env_seconds("P2PRAFT_TEST_TIMEOUT", TEST_DEFAULT_TIMEOUT_S);
    {
        const char *vg = getenv("P2PRAFT_VALGRIND");
        const char *fk = getenv("P2PRAFT_TEST_FORK");
        int valgrind = vg != NULL && strcmp(vg, "1") == 0;
        scale = env_seconds("P2PRAFT_TEST_TIMEOUT_SCALE", valgrind ? 20 : 1);
        /* Under valgrind a forked child starts cold: every code path the
         * runner itself never ran is translated again in each test (about
         * 0.6 s more per network test), which pushes tests with 1 s network
         * timeouts over. So there tests share this process, as they did
         * before limits existed. */
        isolate = fk != NULL && fk[0] != 0 ? strcmp(fk, "0") != 0 : !valgrind;
    }
    if (isolate) {
        shared_result = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shared_result == MAP_FAILED) {
            fprintf(stderr, "mmap: %s\n", strerror(errno));
            return 1;
        }
        runner_signals_init();
    }
    memset(&t, 0, sizeof(t));

    for (tc = head; tc != NULL; tc = tc->next) {
        double limit = tc->timeout_s > 0 ? tc->timeout_s : dflt;
        snprintf(full, sizeof(full), "%s/%s", tc->suite, tc->name);
        if (matches(tc, full, argc, argv)) {
            record(&t, full,
                   run_one(&t, full, limit * scale, run_test_body, tc));
        }
    }
    for (ft = fuzz_head; ft != NULL; ft = ft->next) {
        snprintf(full, sizeof(full), "fuzz-corpus/%s", ft->name);
        if (matches(NULL, full, argc, argv)) {
            record(&t, full,
                   run_one(&t, full, dflt * scale, run_corpus_body, ft));
        }
    }
    if (t.failed > 0) {
        printf("failed:%s\n", t.names);
    }
    printf("%d passed, %d failed\n", t.passed, t.failed);
    return t.failed == 0 && t.passed > 0 ? 0 : 1;
}
