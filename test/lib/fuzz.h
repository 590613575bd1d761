/*
 * One source per fuzz target, built two ways:
 *  - with -DP2PRAFT_LIBFUZZER: a libFuzzer target (make fuzz);
 *  - otherwise: linked into the unit runner, which replays every file of
 *    test/fuzz/corpus/<name>/ through it (make test).
 *
 *   FUZZ_TARGET(varint)
 *   {
 *       ... use data, size ...
 *       return 0;
 *   }
 */
#ifndef P2PRAFT_TEST_FUZZ_H
#define P2PRAFT_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

struct fuzz_target {
    const char *name;
    fuzz_fn fn;
    struct fuzz_target *next;
};

void test__fuzz_register(struct fuzz_target *t);

#ifdef P2PRAFT_LIBFUZZER
#define FUZZ_TARGET(name)                                                     \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);             \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
#else
#define FUZZ_TARGET(name)                                                     \
    static int fuzz_##name(const uint8_t *data, size_t size);                 \
    static struct fuzz_target ft_##name = {#name, fuzz_##name, NULL};         \
    __attribute__((constructor)) static void freg_##name(void)                \
    {                                                                         \
        test__fuzz_register(&ft_##name);                                      \
    }                                                                         \
    static int fuzz_##name(const uint8_t *data, size_t size)
#endif

/* Inside a target: abort on a broken invariant so libFuzzer reports it. */
#define FUZZ_CHECK(cond)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fuzz__check_failed(__FILE__, __LINE__, #cond);                    \
        }                                                                     \
    } while (0)

void fuzz__check_failed(const char *file, int line, const char *what)
    __attribute__((noreturn));

#endif
