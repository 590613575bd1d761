/*
 * The node's unix-socket API server (api_server.c): clients such as
 * `p2praft kv` send request frames and read response frames.
 */
#ifndef P2PRAFT_RAFT_API_SERVER_H
#define P2PRAFT_RAFT_API_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/list.h"
#include "util/ratelog.h"
#include "util/sockpath.h"

struct p2praft_node;

struct p2praft__api_server {
    uv_pipe_t pipe; /* the listening socket */
    bool ok;        /* `pipe` is open */
    struct lp2p__sockpath path; /* the socket file it created */
    struct lp2p__list conns;
    unsigned n_conns;
    struct lp2p__ratelog refused; /* connections answered BUSY */
};

void p2praft__api_server_init(struct p2praft__api_server *s);

/* Listen on n->api_path (nothing when it is ""). A socket file left there
 * by a node that died is replaced; nothing else is removed (util/
 * sockpath.h). 0, or LP2P_EINVAL / LP2P_EBUSY (a live socket) /
 * LP2P_EEXIST (not a socket) / LP2P_EIO with a sentence in err. */
int p2praft__api_server_start(struct p2praft_node *n, char *err,
                              size_t errlen);

/* Loop timer: close the connections idle for too long. */
void p2praft__api_server_tick(struct p2praft_node *n, uint64_t now);

/* Shutting down: stop listening, remove the socket file (if it is still
 * the one it created), close every connection (their requests are
 * answered into the void). */
void p2praft__api_server_close(struct p2praft_node *n);

#endif
