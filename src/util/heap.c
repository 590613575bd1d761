/* Allocation hook. Tests install a heap that fails the Nth allocation. */
#include <stdlib.h>
#include <string.h>

#include "lp2p.h"
#include "heap.h"

static void *default_malloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static void *default_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    return realloc(ptr, size);
}

static void default_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

static const struct lp2p_heap default_heap = {NULL, default_malloc,
                                              default_realloc, default_free};
static struct lp2p_heap current = {NULL, default_malloc, default_realloc,
                                   default_free};

void lp2p_heap_set(const struct lp2p_heap *heap)
{
    current = heap != NULL ? *heap : default_heap;
}

void *lp2p__malloc(size_t size)
{
    return current.malloc(current.data, size == 0 ? 1 : size);
}

void *lp2p__calloc(size_t n, size_t size)
{
    void *p;
    if (size != 0 && n > ((size_t)-1) / size) {
        return NULL;
    }
    p = lp2p__malloc(n * size);
    if (p != NULL) {
        memset(p, 0, n * size);
    }
    return p;
}

void *lp2p__realloc(void *ptr, size_t size)
{
    return current.realloc(current.data, ptr, size == 0 ? 1 : size);
}

void lp2p__free(void *ptr)
{
    if (ptr != NULL) {
        current.free(current.data, ptr);
    }
}

char *lp2p__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = lp2p__malloc(n);
    if (p != NULL) {
        memcpy(p, s, n);
    }
    return p;
}

void *lp2p__memdup(const void *p, size_t len)
{
    void *q = lp2p__malloc(len);
    if (q != NULL && len > 0) {
        memcpy(q, p, len);
    }
    return q;
}
