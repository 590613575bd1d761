/* Internal allocation entry points; they route through lp2p_heap_set(). */
#ifndef LP2P_UTIL_HEAP_H
#define LP2P_UTIL_HEAP_H

#include <stddef.h>

void *lp2p__malloc(size_t size);
void *lp2p__calloc(size_t n, size_t size);
void *lp2p__realloc(void *ptr, size_t size);
void lp2p__free(void *ptr);
/* A copy of `s` (NUL-terminated), or NULL on allocation failure. */
char *lp2p__strdup(const char *s);
/* A copy of `len` bytes of `p`; returns NULL on failure or if len == 0
 * and p == NULL. */
void *lp2p__memdup(const void *p, size_t len);

#endif
