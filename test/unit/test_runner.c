/*
 * The test runner itself (test/lib/runner.c): a hung test is named, fails
 * and is killed, a crashing one fails alone, and the run goes on; with
 * tests in the runner's own process (P2PRAFT_TEST_FORK=0, as under
 * valgrind) a hung test is named and the run ends cleanly; a test's own
 * limit (TEST_TIMEOUT) replaces the default; hidden tests run only when
 * named exactly. Each case runs this very binary again, in a child with
 * its output captured, on the hidden tests below.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

/* Hidden tests: they must fail, so a plain run never runs them. */
TEST_HIDDEN(runner, _hangs, 0)
{
    for (;;) {
        pause();
    }
}

TEST_HIDDEN(runner, _crashes, 0)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); /* no core file in the work tree */
    abort();
}

TEST_HIDDEN(runner, _passes, 0)
{
    ASSERT_EQ(1 + 1, 2);
}

/* Its own limit, far below the default of the run that starts it. */
TEST_HIDDEN(runner, _hangs_own_limit, 0.3)
{
    for (;;) {
        pause();
    }
}

/* Every run of the nested runner must end well within this. */
#define NESTED_BOUND_MS 60000

struct nested {
    char out[16384];
    size_t len;
    int status;
    double ms;
};

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void set_or_unset(const char *name, const char *value)
{
    if (value != NULL) {
        setenv(name, value, 1);
    } else {
        unsetenv(name);
    }
}

/* Runs this binary with argv (NULL-terminated, argv[0] excluded) and the
 * given limits and mode ("1": a child per test, "0": in process) in its
 * environment (NULL: unset), capturing stdout and stderr together. Fails
 * the test if it does not end in time. */
static void run_nested(struct nested *n, const char *timeout,
                       const char *scale, const char *fork_mode,
                       const char *const *args)
{
    char exe[4096];
    const char *argv[16];
    int fds[2], i = 0;
    ssize_t got;
    pid_t pid;
    double t0 = mono_ms(), deadline = t0 + NESTED_BOUND_MS;

    got = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    ASSERT(got > 0);
    exe[got] = 0;
    argv[i++] = exe;
    while (*args != NULL && i < 15) {
        argv[i++] = *args++;
    }
    argv[i] = NULL;
    ASSERT(pipe2(fds, O_CLOEXEC) == 0);
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        set_or_unset("P2PRAFT_TEST_TIMEOUT", timeout);
        set_or_unset("P2PRAFT_TEST_TIMEOUT_SCALE", scale);
        set_or_unset("P2PRAFT_TEST_FORK", fork_mode);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    n->len = 0;
    for (;;) {
        struct pollfd p = {fds[0], POLLIN, 0};
        double left = deadline - mono_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(fds[0]);
            test__fail(__FILE__, __LINE__,
                       "the nested runner did not end within %d ms",
                       NESTED_BOUND_MS);
        }
        int r = poll(&p, 1, (int)left + 1);
        if (r < 0) {
            ASSERT(errno == EINTR);
        }
        if (r <= 0) {
            continue; /* the deadline is checked above */
        }
        got = read(fds[0], n->out + n->len, sizeof(n->out) - 1 - n->len);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        n->len += (size_t)got;
    }
    close(fds[0]);
    n->out[n->len] = 0;
    ASSERT(waitpid(pid, &n->status, 0) == pid);
    n->ms = mono_ms() - t0;
}

/* The last line of the output. */
static const char *last_line(const struct nested *n)
{
    const char *end = n->out + n->len, *p;
    if (end > n->out && end[-1] == '\n') {
        end--;
    }
    for (p = end; p > n->out && p[-1] != '\n'; p--) {
    }
    return p;
}

#define ASSERT_HAS(n, s)                                                      \
    do {                                                                      \
        if (strstr((n)->out, (s)) == NULL)                                    \
            test__fail(__FILE__, __LINE__,                                    \
                       "output lacks \"%s\"; it was:\n%s", (s), (n)->out);    \
    } while (0)

TEST(runner, hung_test_is_named_killed_and_the_run_goes_on)
{
    static const char *const args[] = {"runner/_hangs", "runner/_crashes",
                                       "runner/_passes", NULL};
    struct nested n;
    const char *hang, *pass;

    /* Default limit 0.25 s, times 2: the hang is cut at 0.5 s. */
    run_nested(&n, "0.25", "2", "1", args);
    ASSERT(WIFEXITED(n.status));
    ASSERT_EQ(WEXITSTATUS(n.status), 1);
    ASSERT_HAS(&n, "FAIL runner/_hangs\n     timed out: still running at its"
                   " limit of 0.5 s; killed\n");
    ASSERT_HAS(&n, "FAIL runner/_crashes\n     its process was killed by"
                   " signal 6");
    ASSERT_HAS(&n, "ok   runner/_passes");
    /* The run went on after the hang and the crash. */
    hang = strstr(n.out, "FAIL runner/_hangs");
    pass = strstr(n.out, "ok   runner/_passes");
    ASSERT(hang < pass);
    ASSERT_HAS(&n, "failed: runner/_hangs runner/_crashes\n");
    ASSERT_STR_EQ(last_line(&n), "1 passed, 2 failed\n");
}

TEST(runner, in_process_hung_test_is_named_and_the_run_ends)
{
    static const char *const args[] = {"runner/_passes",
                                       "runner/_hangs_own_limit", NULL};
    struct nested n;

    run_nested(&n, "600", "1", "0", args);
    ASSERT(WIFEXITED(n.status));
    ASSERT_EQ(WEXITSTATUS(n.status), 1);
    ASSERT_HAS(&n, "ok   runner/_passes");
    ASSERT_HAS(&n, "FAIL runner/_hangs_own_limit\n     timed out: still"
                   " running at its limit of 0.3 s; the run ends here\n");
    ASSERT_HAS(&n, "failed: runner/_hangs_own_limit\n");
    ASSERT_STR_EQ(last_line(&n), "1 passed, 1 failed\n");
}

TEST(runner, own_limit_replaces_the_default)
{
    static const char *const args[] = {"runner/_hangs_own_limit", NULL};
    struct nested n;

    /* A default of 10 minutes does not apply: the test's own 0.3 s does. */
    run_nested(&n, "600", "1", "1", args);
    ASSERT(WIFEXITED(n.status));
    ASSERT_EQ(WEXITSTATUS(n.status), 1);
    ASSERT_HAS(&n, "FAIL runner/_hangs_own_limit\n     timed out: still"
                   " running at its limit of 0.3 s; killed\n");
    ASSERT_STR_EQ(last_line(&n), "0 passed, 1 failed\n");
    ASSERT(n.ms < NESTED_BOUND_MS);
}

TEST(runner, hidden_tests_run_only_when_named_exactly)
{
    static const char *const list[] = {"-l", "runner/", NULL};
    static const char *const part[] = {"runner/_hang", NULL};
    struct nested n;

    run_nested(&n, "0.25", "1", NULL, list);
    ASSERT_EQ(n.status, 0);
    ASSERT_HAS(&n, "runner/hung_test_is_named_killed_and_the_run_goes_on\n");
    ASSERT(strstr(n.out, "runner/_") == NULL);

    /* A pattern that only contains a hidden test's name runs nothing,
     * which is a failed run. */
    run_nested(&n, "0.25", "1", NULL, part);
    ASSERT(WIFEXITED(n.status));
    ASSERT_EQ(WEXITSTATUS(n.status), 1);
    ASSERT_STR_EQ(last_line(&n), "0 passed, 0 failed\n");
}
