/* Internal helpers for error messages. */
#ifndef LP2P_UTIL_ERR_H
#define LP2P_UTIL_ERR_H

#include <stddef.h>

/* printf into a caller's message buffer `err` of `cap` bytes; a NULL
 * buffer or zero cap is allowed and ignored. */
void lp2p__errmsg_set(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
