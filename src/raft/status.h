/*
 * The node's status text (status.c): "key: value" lines for STATUS
 * requests, `p2praft status` and p2praft_node_status().
 */
#ifndef P2PRAFT_RAFT_STATUS_H
#define P2PRAFT_RAFT_STATUS_H

#include "util/buf.h"

struct p2praft_node;

/* Append the status of `n` (loop thread) to `b`. Lines that do not fit in
 * memory are left out. */
void p2praft__status_text(struct p2praft_node *n, struct lp2p_buf *b);

#endif
