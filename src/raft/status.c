/*
 * The node's status text: identity, raft role, leader, term and indexes,
 * the members, listen addresses, snapshot and forwarding counters and the
 * size of the state. One "key: value" per line; "member:" and "listen:"
 * repeat. Scripts and tests read it by key, so keys are only ever added.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "raft/consensus.h"
#include "raft/kv.h"
#include "raft/node.h"
#include "raft/status.h"

static void bprintf(struct lp2p_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void bprintf(struct lp2p_buf *b, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    int k;
    va_start(ap, fmt);
    k = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (k > 0) {
        lp2p__buf_append(b, line,
                         (size_t)k < sizeof(line) ? (size_t)k
                                                  : sizeof(line) - 1);
    }
}

void p2praft__status_text(struct p2praft_node *n, struct lp2p_buf *b)
{
    raft_id lid = 0;
    const char *laddr = NULL;
    const struct p2praft__kv_state *st = NULL;
    char addr[LP2P_MULTIADDR_STRMAX];
    unsigned i;
    size_t k;
    raft_leader(&n->raft, &lid, &laddr);
    bprintf(b, "peer_id: %s\n", n->self);
    bprintf(b, "role: %s\n", raft_state_name(raft_state(&n->raft)));
    bprintf(b, "leader: %s\n",
            lid != 0 && laddr != NULL ? laddr : "none");
    bprintf(b, "term: %" PRIu64 "\n", (uint64_t)raft_current_term(&n->raft));
    bprintf(b, "commit_index: %" PRIu64 "\n",
            (uint64_t)raft_commit_index(&n->raft));
    bprintf(b, "applied_index: %" PRIu64 "\n",
            (uint64_t)raft_last_applied(&n->raft));
    bprintf(b, "caught_up: %s\n", n->caught_up ? "yes" : "no");
    bprintf(b, "members: %u\n", n->raft.configuration.n);
    for (i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        char peer[LP2P_PEER_ID_STRMAX];
        p2praft__members_peer_str(s->address, peer, sizeof(peer));
        bprintf(b, "member: %s %s%s\n", peer, raft_role_name(s->role),
                s->id == n->self_id ? " (self)" : "");
    }
    bprintf(b, "removed: %s\n", n->members.removed ? "yes" : "no");
    for (k = 0; lp2p_host_listen_addr(n->host, k, addr, sizeof(addr)) == 0;
         k++) {
        bprintf(b, "listen: %s/p2p/%s\n", addr, n->self);
    }
    bprintf(b, "snapshots_taken: %" PRIu64 "\n",
            p2praft_consensus_snapshots(n->c));
    bprintf(b, "snapshots_installed: %" PRIu64 "\n",
            p2praft_consensus_restored(n->c) - n->restored_at_boot);
    bprintf(b, "snapshot_loaded_at_start: %s\n",
            n->restored_at_boot > 0 ? "yes" : "no");
    bprintf(b, "forwarded: %" PRIu64 "\n", n->fwd.forwarded);
    bprintf(b, "served_forwards: %" PRIu64 "\n", n->fwd.served_fwd);
    bprintf(b, "peers_reachable: %zu\n", p2praft__health_reachable(n));
    bprintf(b, "api_connections: %u\n", n->api.n_conns);
    bprintf(b, "api_refused_busy: %" PRIu64 "\n", n->api.refused.total);
    bprintf(b, "api_requests: %u\n", n->api_reqs);
    bprintf(b, "api_watches: %u\n", n->n_watches);
    bprintf(b, "api_busy: %" PRIu64 "\n", n->api_busy);
    bprintf(b, "clients: %zu\n", n->clients.n_allowed);
    bprintf(b, "client_connections: %u\n", n->clients.n_sessions);
    bprintf(b, "client_refused: %" PRIu64 "\n",
            n->clients.refused_peer.total + n->clients.refused_busy.total);
    bprintf(b, "forward_refused: %" PRIu64 "\n",
            n->fwd.refused_member.total + n->fwd.refused_busy.total);
    bprintf(b, "raft_refused: %" PRIu64 "\n",
            p2praft_io_refused(&n->io));
    {
        struct p2praft_io_stats io;
        p2praft_io_stats(&n->io, &io);
        bprintf(b, "vote_requests: %" PRIu64 "\n", io.vote_requests);
        bprintf(b, "votes_withheld: %" PRIu64 "\n", io.votes_withheld);
    }
    if (p2praft__consensus_state(n->c, (const void **)&st) == 0) {
        bprintf(b, "keys: %zu\n", p2praft__kv_count(st));
        bprintf(b, "ops_applied: %" PRIu64 "\n", st->seq);
    } else {
        bprintf(b, "keys: 0\nops_applied: 0\n");
    }
}
