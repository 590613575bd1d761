/*
 * What this node has heard from each peer (contact.c): when the last raft
 * message came, and, from the answers to AppendEntries it sent as leader,
 * the highest index the peer holds (its match index). Fed by the raft I/O
 * for every message handed to raft; read by `status --cluster`. It knows
 * raft IDs only, and never grows past the peers that ever spoke.
 */
#ifndef P2PRAFT_RAFT_CONTACT_H
#define P2PRAFT_RAFT_CONTACT_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct p2praft__contact {
    raft_id id;
    uint64_t last_ms;   /* loop time of its last message */
    raft_index match;   /* last index it acknowledged holding */
    raft_term match_term; /* our term when it did */
};

struct p2praft__contacts {
    struct p2praft__contact *v;
    size_t n, cap;
};

/* A message `m` (borrowed) arrived at `now_ms`, while our term is
 * `term`. Out of memory: the peer is just not recorded. */
void p2praft__contacts_observe(struct p2praft__contacts *t,
                               const struct raft_message *m, uint64_t now_ms,
                               raft_term term);

/* The record of `id`, or NULL when it never spoke. */
const struct p2praft__contact *
p2praft__contacts_get(const struct p2praft__contacts *t, raft_id id);

void p2praft__contacts_free(struct p2praft__contacts *t);

#endif
