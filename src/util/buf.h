/* A growable byte buffer. Memory comes from the lp2p heap hook. */
#ifndef LP2P_UTIL_BUF_H
#define LP2P_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

struct lp2p_buf {
    uint8_t *data;
    size_t len; /* bytes in use, starting at data */
    size_t cap; /* bytes allocated */
};

void lp2p__buf_init(struct lp2p_buf *b);
/* Frees the storage and re-initialises `b`. */
void lp2p__buf_free(struct lp2p_buf *b);
/* Make room for `extra` more bytes. 0, LP2P_ENOMEM or LP2P_EOVERFLOW. */
int lp2p__buf_reserve(struct lp2p_buf *b, size_t extra);
int lp2p__buf_append(struct lp2p_buf *b, const void *p, size_t n);
int lp2p__buf_append_byte(struct lp2p_buf *b, uint8_t byte);
/* Append printf-formatted text, all of it (no NUL). 0, LP2P_ENOMEM,
 * LP2P_EOVERFLOW, or LP2P_EINVAL if the format cannot be rendered. */
int lp2p__buf_printf(struct lp2p_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append the unsigned varint encoding of `v` (v < 2^63). */
int lp2p__buf_append_varint(struct lp2p_buf *b, uint64_t v);
/* Drop the first `n` bytes (n <= len), keeping the rest in place. */
void lp2p__buf_consume(struct lp2p_buf *b, size_t n);
/* Take the storage: returns data (caller frees with lp2p__free) and
 * re-initialises `b`. */
uint8_t *lp2p__buf_detach(struct lp2p_buf *b, size_t *len);

#endif
