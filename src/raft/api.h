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

#endif
