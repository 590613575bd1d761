/*
 * A tiny test harness. Each TEST() registers itself at start-up; the runner
 * (test/lib/runner.c) runs them in order, or those whose "suite/name"
 * contains one of the command-line patterns, and prints
 * "N passed, N failed" as its last line.
 *
 * Each test runs in a child process of its own, under a time limit: a test
 * still running at its limit is killed (with every process it started) and
 * named as failed, and the run goes on. A crash or a sanitizer report fails
 * only the test that caused it. Under valgrind (or P2PRAFT_TEST_FORK=0) the
 * tests share the runner's process: a hung test is named and ends the run.
 *
 * A failed assertion reports file:line and leaves the test at once
 * (longjmp). Assertions are only for use inside the test's own thread.
 */
#ifndef P2PRAFT_TEST_H
#define P2PRAFT_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct test_case {
    const char *suite;
    const char *name;
    void (*fn)(void);
    double timeout_s; /* its own limit; 0: the runner's default */
    int hidden;       /* run only when its full name is given */
    struct test_case *next;
};

/* The default limit of one test, in seconds, when P2PRAFT_TEST_TIMEOUT does
 * not set another (0 there: no limit). Every limit is multiplied by
 * P2PRAFT_TEST_TIMEOUT_SCALE, which is 20 by default when
 * P2PRAFT_VALGRIND=1, else 1. */
#define TEST_DEFAULT_TIMEOUT_S 30

void test__register(struct test_case *tc);
void test__fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define TEST__DEFINE(suite, name, timeout_s, hidden)                          \
    static void test_##suite##__##name(void);                                 \
    static struct test_case tc_##suite##__##name = {                          \
        #suite, #name, test_##suite##__##name, (timeout_s), (hidden), NULL};  \
    __attribute__((constructor)) static void reg_##suite##__##name(void)      \
    {                                                                         \
        test__register(&tc_##suite##__##name);                                \
    }                                                                         \
    static void test_##suite##__##name(void)

/* A test under the default time limit. */
#define TEST(suite, name) TEST__DEFINE(suite, name, 0, 0)

/* A test that legitimately needs longer than the default: its own limit in
 * seconds, which replaces the default (P2PRAFT_TEST_TIMEOUT_SCALE still
 * applies). */
#define TEST_TIMEOUT(suite, name, seconds) TEST__DEFINE(suite, name, seconds, 0)

/* A test that runs only when its exact "suite/name" is given on the command
 * line, never in a plain run nor in -l: for the runner's own self-tests,
 * whose hidden tests must fail. */
#define TEST_HIDDEN(suite, name, seconds) TEST__DEFINE(suite, name, seconds, 1)

#define ASSERT(cond)                                                          \
    do {                                                                      \
        if (!(cond))                                                          \
            test__fail(__FILE__, __LINE__, "assertion failed: %s", #cond);    \
    } while (0)

#define ASSERT_EQ(a, b)                                                       \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_)                                                         \
            test__fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", \
                       #a, a_, #b, b_);                                       \
    } while (0)

#define ASSERT_EQ_U64(a, b)                                                   \
    do {                                                                      \
        unsigned long long a_ = (unsigned long long)(a),                      \
                           b_ = (unsigned long long)(b);                      \
        if (a_ != b_)                                                         \
            test__fail(__FILE__, __LINE__, "%s == %llu, expected %llu", #a,   \
                       a_, b_);                                               \
    } while (0)

/* rv must be 0; on failure prints the error's name and message. */
#define ASSERT_OK(expr)                                                       \
    do {                                                                      \
        int rv_ = (int)(expr);                                                \
        if (rv_ != 0)                                                         \
            test__fail(__FILE__, __LINE__, "%s returned %d (%s: %s)", #expr,  \
                       rv_, lp2p_errname(rv_), lp2p_strerror(rv_));           \
    } while (0)

/* expr must return exactly `code`. */
#define ASSERT_ERR(expr, code)                                                \
    do {                                                                      \
        int rv_ = (int)(expr);                                                \
        if (rv_ != (code))                                                    \
            test__fail(__FILE__, __LINE__, "%s returned %d (%s), expected %s", \
                       #expr, rv_, lp2p_errname(rv_), lp2p_errname(code));    \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                   \
    do {                                                                      \
        const char *a_ = (a), *b_ = (b);                                      \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                  \
            test__fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"",   \
                       #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");           \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                \
    do {                                                                      \
        if (memcmp((a), (b), (n)) != 0)                                       \
            test__fail(__FILE__, __LINE__, "%s and %s differ in %zu bytes",   \
                       #a, #b, (size_t)(n));                                  \
    } while (0)

/* Directory of the test vectors: test/vectors, relative to the directory
 * the runner starts in (the top of the repository); a non-empty
 * P2PRAFT_VECTORS overrides it. */
const char *test__vectors_dir(void);

/* Read a whole file; the caller frees with free(). Fails the test if the
 * file cannot be read. A NUL is appended (not counted in *len). */
uint8_t *test__read_file(const char *path, size_t *len);

/* Read a file under the vectors directory. */
uint8_t *test__read_vector(const char *name, size_t *len);

/* Hex helpers. test__unhex fails the test on bad input; caller frees. */
uint8_t *test__unhex(const char *hex, size_t *len);
void test__hex(const uint8_t *p, size_t n, char *out /* 2n+1 */);

/*
 * Guarded copy: `len` bytes placed at the very end of a page that is
 * followed by a PROT_NONE page, so a parser that reads one byte too far
 * faults. Free with test__guarded_free().
 */
uint8_t *test__guarded(const void *data, size_t len);
void test__guarded_free(uint8_t *p, size_t len);

#endif
