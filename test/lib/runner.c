/*
 * The unit-test runner: runs every registered TEST(), then replays every
 * fuzz target's corpus (one test per target), and prints
 * "N passed, N failed" as its last line. Exit status 1 on any failure.
 *
 * Usage: test-unit [-l] [PATTERN...]   (-l lists the tests)
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
#include <sys/stat.h>
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
    return d != NULL ? d : "../shared/vectors";
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

static int matches(const char *full, int argc, char **argv)
{
    int i;
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

int main(int argc0, char **argv0)
{
    /* volatile: these live across setjmp/longjmp (-Wclobbered). */
    struct test_case *volatile tc;
    struct fuzz_target *volatile ft;
    volatile int passed = 0, failed = 0, list = 0;
    int volatile argc = argc0;
    char **volatile argv = argv0;
    char full[512];

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
    for (tc = head; tc != NULL; tc = tc->next) {
        volatile double t0;
        snprintf(full, sizeof(full), "%s/%s", tc->suite, tc->name);
        if (!matches(full, argc, argv)) {
            continue;
        }
        if (list) {
            printf("%s\n", full);
            continue;
        }
        t0 = now_ms();
        if (setjmp(jump) == 0) {
            tc->fn();
            test__oom_remove();
            printf("ok   %s (%.0f ms)\n", full, now_ms() - t0);
            passed++;
        } else {
            test__oom_remove();
            printf("FAIL %s\n     %s\n", full, failure);
            failed++;
        }
    }
    for (ft = fuzz_head; ft != NULL; ft = ft->next) {
        volatile long files = 0;
        snprintf(full, sizeof(full), "fuzz-corpus/%s", ft->name);
        if (!matches(full, argc, argv)) {
            continue;
        }
        if (list) {
            printf("%s\n", full);
            continue;
        }
        if (setjmp(jump) == 0) {
            long n = 0;
            replay_corpus(ft, &n);
            files = n;
            printf("ok   %s (%ld inputs)\n", full, files);
            passed++;
        } else {
            printf("FAIL %s\n     %s\n", full, failure);
            failed++;
        }
    }
    if (list) {
        return 0;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
