/* Internal codec entry points shared by the FSM and the consensus. */
#ifndef P2PRAFT_RAFT_CODEC_H
#define P2PRAFT_RAFT_CODEC_H

#include "p2praft.h"
#include "util/buf.h"

/* Append the encoding of `value` to `b`. */
int p2praft__encode_append(const struct p2praft_type *t, const void *value,
                           struct lp2p_buf *b);

/* Decode all of data into a new heap value (*out; destroy with
 * p2praft_value_destroy). */
int p2praft__decode_new(const struct p2praft_type *t, const uint8_t *data,
                        size_t len, void **out);

#endif
