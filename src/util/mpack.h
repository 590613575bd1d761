/*
 * msgpack primitives as Go's msgpack codecs (ugorji/go codec, and its
 * hashicorp/go-msgpack fork, with a zero MsgpackHandle) write them, and a
 * strict bounds-checked reader. Shared by the state codec (raft/codec.c)
 * and the hashicorp raft wire (raft/hcwire.c).
 *
 * Writing: unsigned integers use fixint, then uint8..uint64; signed ones
 * fixint (-32..127), then int8 below -32, int16..int64 otherwise (positive
 * values above 127 take the signed forms); strings and []byte are the old
 * "raw" family (fixstr, str16, str32: never str8 nor bin); containers use
 * the fix forms below 16, then 16- and 32-bit lengths.
 *
 * Reading is by a cursor over a complete buffer: nothing is read past `end`.
 * Readers accept every valid msgpack form of the kind they read (as Go's
 * decoders do), and fail with LP2P_ETRUNCATED when the buffer ends inside a
 * value, LP2P_ETYPE for a valid value of another kind, LP2P_EMALFORMED for
 * 0xc1, LP2P_EOVERFLOW when a number does not fit.
 */
#ifndef LP2P_UTIL_MPACK_H
#define LP2P_UTIL_MPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* ---- writing (append to a buffer; 0 or LP2P_ENOMEM / LP2P_ETOOBIG) ------ */

/* `tag` followed by the low `n` bytes of v, big endian (n <= 8). */
int lp2p__mp_put_be(struct lp2p_buf *b, uint8_t tag, uint64_t v, unsigned n);
int lp2p__mp_put_uint(struct lp2p_buf *b, uint64_t u);
int lp2p__mp_put_int(struct lp2p_buf *b, int64_t i);
int lp2p__mp_put_nil(struct lp2p_buf *b);
int lp2p__mp_put_bool(struct lp2p_buf *b, bool v);
/* Raw string header (fixstr, str16, str32). */
int lp2p__mp_put_raw_hdr(struct lp2p_buf *b, size_t len);
/* Raw string: header and bytes (p may be NULL when len is 0). */
int lp2p__mp_put_raw(struct lp2p_buf *b, const void *p, size_t len);
int lp2p__mp_put_array_hdr(struct lp2p_buf *b, size_t n);
int lp2p__mp_put_map_hdr(struct lp2p_buf *b, size_t n);

/* ---- reading ------------------------------------------------------------ */

struct lp2p_mp_cur {
    const uint8_t *p;
    const uint8_t *end;
};

static inline void lp2p__mp_cur_init(struct lp2p_mp_cur *c, const uint8_t *p,
                                     size_t len)
{
    c->p = p;
    c->end = p + len;
}

static inline size_t lp2p__mp_left(const struct lp2p_mp_cur *c)
{
    return (size_t)(c->end - c->p);
}

/* Whether the next value is nil (does not consume it). */
bool lp2p__mp_peek_nil(const struct lp2p_mp_cur *c);
/* Consume a nil. */
int lp2p__mp_get_nil(struct lp2p_mp_cur *c);
/* A non-negative integer of any encoding; negative is LP2P_EOVERFLOW. */
int lp2p__mp_get_uint(struct lp2p_mp_cur *c, uint64_t *out);
/* A signed integer of any encoding that fits int64. */
int lp2p__mp_get_int(struct lp2p_mp_cur *c, int64_t *out);
int lp2p__mp_get_bool(struct lp2p_mp_cur *c, bool *out);
/*
 * A raw string of any form (fixstr, str8/16/32, bin8/16/32), or nil when
 * `nil_ok`: *p points into the buffer (NULL for nil; a non-NULL pointer for
 * an empty string), *len its length.
 */
int lp2p__mp_get_raw(struct lp2p_mp_cur *c, bool nil_ok, const uint8_t **p,
                     size_t *len);
/*
 * Container headers. *n is checked against the bytes left (each element
 * takes at least one byte, each map entry two), so a few bytes can never
 * announce more elements than they could hold. With `nil_ok`, a nil gives
 * *n = 0 and *nil = true (nil may be NULL when !nil_ok).
 */
int lp2p__mp_get_array_hdr(struct lp2p_mp_cur *c, bool nil_ok, size_t *n,
                           bool *nil);
int lp2p__mp_get_map_hdr(struct lp2p_mp_cur *c, size_t *n);
/* Skip one value of any kind (iteratively: no recursion, any depth). */
int lp2p__mp_skip(struct lp2p_mp_cur *c);

/*
 * Framing for streams without length prefixes: the length of the one
 * msgpack value at the start of p[0..len). 0 and *out on success;
 * LP2P_EAGAIN if the value is not complete within len bytes; LP2P_ETOOBIG if
 * it cannot end within `max` bytes; LP2P_EMALFORMED on 0xc1. Never reads
 * past p + len.
 */
int lp2p__mp_value_len(const uint8_t *p, size_t len, size_t max, size_t *out);

#endif
