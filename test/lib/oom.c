#include <stdlib.h>

#include "lp2p.h"
#include "oom.h"
#include "test.h"

/* Counts every allocation attempt and the blocks still live. */
static long fail_at, count, live;
static int installed;

static void *oom_malloc(void *data, size_t size)
{
    void *p;
    (void)data;
    count++;
    if (fail_at != 0 && count == fail_at) {
        return NULL;
    }
    p = malloc(size);
    if (p != NULL) {
        live++;
    }
    return p;
}

static void *oom_realloc(void *data, void *ptr, size_t size)
{
    void *p;
    (void)data;
    count++;
    if (fail_at != 0 && count == fail_at) {
        return NULL;
    }
    p = realloc(ptr, size);
    if (p != NULL && ptr == NULL) {
        live++;
    }
    return p;
}

static void oom_free(void *data, void *ptr)
{
    (void)data;
    if (ptr != NULL) {
        live--;
        free(ptr);
    }
}

static const struct lp2p_heap oom_heap = {NULL, oom_malloc, oom_realloc,
                                          oom_free};

void test__oom_install(long n)
{
    fail_at = n;
    count = 0;
    live = 0;
    installed = 1;
    lp2p_heap_set(&oom_heap);
}

void test__oom_remove(void)
{
    if (installed) {
        lp2p_heap_set(NULL);
        installed = 0;
    }
}

long test__oom_count(void)
{
    return count;
}

long test__oom_live(void)
{
    return live;
}

long test__oom_sweep(int (*body)(void *ctx), void *ctx)
{
    long n, i, nomem = 0;
    int rv;
    test__oom_install(0);
    rv = body(ctx);
    n = test__oom_count();
    if (rv != 0) {
        test__oom_remove();
        test__fail(__FILE__, __LINE__, "oom sweep: clean run returned %d (%s)",
                   rv, lp2p_strerror(rv));
    }
    if (test__oom_live() != 0) {
        long l = test__oom_live();
        test__oom_remove();
        test__fail(__FILE__, __LINE__, "oom sweep: clean run leaked %ld blocks",
                   l);
    }
    for (i = 1; i <= n; i++) {
        test__oom_install(i);
        rv = body(ctx);
        if (test__oom_live() != 0) {
            long l = test__oom_live();
            test__oom_remove();
            test__fail(__FILE__, __LINE__,
                       "oom sweep: failing allocation %ld of %ld leaked %ld "
                       "blocks", i, n, l);
        }
        if (rv > 0) {
            test__oom_remove();
            test__fail(__FILE__, __LINE__,
                       "oom sweep: allocation %ld gave positive rv %d", i, rv);
        }
        if (rv == LP2P_ENOMEM) {
            nomem++;
        }
    }
    test__oom_remove();
    if (n > 0 && nomem == 0) {
        test__fail(__FILE__, __LINE__,
                   "oom sweep: %ld failed allocations, none reported ENOMEM",
                   n);
    }
    return n;
}
