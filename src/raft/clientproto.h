/*
 * Remote clients (clientproto.c): P2PRAFT_CLIENT_PROTOCOL on the node's
 * libp2p host, open to the peer IDs the node lists, each stream one API
 * session (session.c) as over the unix socket.
 */
#ifndef P2PRAFT_RAFT_CLIENTPROTO_H
#define P2PRAFT_RAFT_CLIENTPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "lp2p.h"
#include "util/list.h"
#include "util/ratelog.h"

struct p2praft_node;

struct p2praft__clientproto {
    struct lp2p_peer_id *allowed; /* the listed clients */
    size_t n_allowed;
    struct lp2p__list sessions;   /* struct p2praft__session */
    unsigned n_sessions;          /* not closing */
    /* streams refused: from peers not listed (reset), beyond
     * cfg.api_max_conns (BUSY) */
    struct lp2p__ratelog refused_peer, refused_busy;
};

void p2praft__clientproto_init(struct p2praft__clientproto *cp);

/* Read the listed clients: cfg.clients and the lines of cfg.clients_file.
 * 0, or LP2P_EINVAL / LP2P_EIO / LP2P_ENOMEM with a sentence in err that
 * names the bad entry (file and line). */
int p2praft__clientproto_load(struct p2praft_node *n, char *err,
                              size_t errlen);

/* Serve the protocol on the node's host. 0 or a host error. */
int p2praft__clientproto_serve(struct p2praft_node *n);

/* Loop timer: idle sessions, refusals held back from the log. */
void p2praft__clientproto_tick(struct p2praft_node *n, uint64_t now);

/* Shutting down: take no new streams, close every session. */
void p2praft__clientproto_close(struct p2praft_node *n);

/* The loop ran dry: free the list. */
void p2praft__clientproto_free(struct p2praft__clientproto *cp);

#endif
