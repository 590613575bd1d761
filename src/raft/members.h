/*
 * Membership (members.c): the PEERS, PEER_ADD, PEER_RM, TRANSFER and
 * REMOVED requests as the leader carries them out, the promotion of
 * caught-up standbys, and what a node notices about its own membership
 * (joined, removed). Contract: p2praft.h, the membership block.
 */
#ifndef P2PRAFT_RAFT_MEMBERS_H
#define P2PRAFT_RAFT_MEMBERS_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

#include "p2praft.h"

struct p2praft_node;
struct p2praft__req;

struct p2praft__members {
    /* The one configuration change in flight (libraft takes one at a
     * time), for a request (req) or for the promoter (req NULL). */
    struct raft_change change;
    bool change_busy;
    struct p2praft__req *change_req;
    raft_id change_id;
    uint8_t change_op; /* PEER_ADD, PEER_RM, or 0: a promotion */
    int change_role;   /* a promotion's role */
    char change_peer[LP2P_PEER_ID_STRMAX];
    /* The one leadership transfer in flight. */
    struct raft_transfer xfer;
    bool xfer_busy;
    struct p2praft__req *xfer_req; /* NULL: for a removal of the leader */
    raft_id xfer_target;
    uint64_t next_promote;  /* the promoter waits until then */
    bool join_cleared;      /* the --join/--peer list no longer admits */
    bool was_member;        /* this node was in its configuration */
    bool removed;           /* ... and no longer is: told, or seen */
    bool told;              /* the leader said so (REMOVED) */
};

/* Serve the membership request `r` here when this node must: it leads,
 * or the request is local (HANDOVER, REMOVED). true when it took `r`;
 * false: forward it to the leader (req.c does). */
bool p2praft__members_serve(struct p2praft__req *r);

/* Loop timer: promote spares and caught-up standbys (leader only). */
void p2praft__members_tick(struct p2praft_node *n, uint64_t now);

/* Loop check: once the node holds a configuration, admission follows it
 * alone; notice a removal of this node. */
void p2praft__members_check(struct p2praft_node *n);

/* The peer ID string of a server address (peer ID or multiaddr) into
 * out (LP2P_PEER_ID_STRMAX); "?" when it is neither. */
void p2praft__members_peer_str(const char *address, char *out, size_t len);

#endif
