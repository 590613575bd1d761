/* The API request codec of the cluster node (format: p2praft.h). */
#ifndef P2PRAFT_RAFT_API_H
#define P2PRAFT_RAFT_API_H

#include <stddef.h>
#include <stdint.h>

#include "p2praft.h"

/* A parsed request. key is NUL-terminated; val and exp hold vlen / elen
 * bytes plus a NUL. All three are owned (lp2p heap). */
struct p2praft__api_req {
    uint8_t op, flags;
    char *key;
    uint8_t *val, *exp;
    size_t vlen, elen;
};

/* Parse a request body (borrowed) into `r` (zeroed by the caller). 0, or
 * -1 with a sentence in err; what was parsed so far stays in `r`: release
 * it with p2praft__api_req_release() in both cases. Never reads past
 * body + len. */
int p2praft__api_parse(struct p2praft__api_req *r, const uint8_t *body,
                       size_t len, char *err, size_t errlen);

void p2praft__api_req_release(struct p2praft__api_req *r);

/* The body length p2praft__api_encode() writes for `r` (borrowed): the
 * fields that r->op carries (key unless STATUS or BARRIER; expected value
 * for CAS; value for SET and CAS). */
size_t p2praft__api_encoded_len(const struct p2praft__api_req *r);

/* Encode `r` (borrowed; key NUL-terminated) as a request body into out
 * (cap bytes, borrowed), the inverse of p2praft__api_parse(). Returns the
 * body length, or 0 when it does not fit in cap or r breaks the format's
 * bounds (op, flags, key 1..P2PRAFT_KV_KEY_MAX bytes, values at most
 * P2PRAFT_KV_VALUE_MAX). Never writes past out + cap. */
size_t p2praft__api_encode(const struct p2praft__api_req *r, uint8_t *out,
                           size_t cap);

#endif
