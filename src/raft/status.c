/*
 * The node's status text: identity, raft role, leader, term and indexes,
 * the members, listen addresses, snapshot and forwarding counters and the
 * size of the state. One "key: value" per line; "member:" and "listen:"
 * repeat. Scripts and tests read it by key, so keys are only ever added.
 */
#include <inttypes.h>

#include "raft/consensus.h"
#include "raft/kv.h"
#include "raft/node.h"
#include "raft/status.h"

void p2praft__status_text(struct p2praft_node *n, struct lp2p_buf *b)
{
    raft_id lid = 0;
    const char *laddr = NULL;
    const struct p2praft__kv_state *st = NULL;
    char addr[LP2P_MULTIADDR_STRMAX];
    unsigned i;
    size_t k;
    raft_leader(&n->raft, &lid, &laddr);
    lp2p__buf_printf(b, "peer_id: %s\n", n->self);
    lp2p__buf_printf(b, "role: %s\n", raft_state_name(raft_state(&n->raft)));
    lp2p__buf_printf(b, "leader: %s\n",
                     lid != 0 && laddr != NULL ? laddr : "none");
    lp2p__buf_printf(b, "term: %" PRIu64 "\n",
                     (uint64_t)raft_current_term(&n->raft));
    lp2p__buf_printf(b, "commit_index: %" PRIu64 "\n",
                     (uint64_t)raft_commit_index(&n->raft));
    lp2p__buf_printf(b, "applied_index: %" PRIu64 "\n",
                     (uint64_t)raft_last_applied(&n->raft));
    lp2p__buf_printf(b, "caught_up: %s\n", n->caught_up ? "yes" : "no");
    lp2p__buf_printf(b, "members: %u\n", n->raft.configuration.n);
    for (i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        char peer[LP2P_PEER_ID_STRMAX];
        p2praft__members_peer_str(s->address, peer, sizeof(peer));
        lp2p__buf_printf(b, "member: %s %s%s\n", peer, raft_role_name(s->role),
                         s->id == n->self_id ? " (self)" : "");
    }
    lp2p__buf_printf(b, "removed: %s\n", n->members.removed ? "yes" : "no");
    for (k = 0; lp2p_host_listen_addr(n->host, k, addr, sizeof(addr)) == 0;
         k++) {
        lp2p__buf_printf(b, "listen: %s/p2p/%s\n", addr, n->self);
    }
    lp2p__buf_printf(b, "snapshots_taken: %" PRIu64 "\n",
                     p2praft_consensus_snapshots(n->c));
    lp2p__buf_printf(b, "snapshots_installed: %" PRIu64 "\n",
                     p2praft_consensus_restored(n->c) - n->restored_at_boot);
    lp2p__buf_printf(b, "snapshot_loaded_at_start: %s\n",
                     n->restored_at_boot > 0 ? "yes" : "no");
    lp2p__buf_printf(b, "forwarded: %" PRIu64 "\n", n->fwd.forwarded);
    lp2p__buf_printf(b, "served_forwards: %" PRIu64 "\n", n->fwd.served_fwd);
    lp2p__buf_printf(b, "peers_reachable: %zu\n",
                     p2praft__health_reachable(n));
    lp2p__buf_printf(b, "api_connections: %u\n", n->api.n_conns);
    lp2p__buf_printf(b, "api_refused_busy: %" PRIu64 "\n",
                     n->api.refused.total);
    lp2p__buf_printf(b, "api_requests: %u\n", n->api_reqs);
    lp2p__buf_printf(b, "api_watches: %u\n", n->n_watches);
    lp2p__buf_printf(b, "api_busy: %" PRIu64 "\n", n->api_busy);
    lp2p__buf_printf(b, "clients: %zu\n", n->clients.n_allowed);
    lp2p__buf_printf(b, "client_connections: %u\n", n->clients.n_sessions);
    lp2p__buf_printf(
        b, "client_refused: %" PRIu64 "\n",
        n->clients.refused_peer.total + n->clients.refused_busy.total);
    lp2p__buf_printf(b, "forward_refused: %" PRIu64 "\n",
                     n->fwd.refused_member.total + n->fwd.refused_busy.total);
    lp2p__buf_printf(b, "raft_refused: %" PRIu64 "\n",
                     p2praft_io_refused(&n->io));
    {
        struct p2praft_io_stats io;
        p2praft_io_stats(&n->io, &io);
        lp2p__buf_printf(b, "vote_requests: %" PRIu64 "\n",
                         io.vote_requests);
        lp2p__buf_printf(b, "votes_withheld: %" PRIu64 "\n",
                         io.votes_withheld);
    }
    if (p2praft__consensus_state(n->c, (const void **)&st) == 0) {
        lp2p__buf_printf(b, "keys: %zu\n", p2praft__kv_count(st));
        lp2p__buf_printf(b, "ops_applied: %" PRIu64 "\n", st->seq);
    } else {
        lp2p__buf_printf(b, "keys: 0\nops_applied: 0\n");
    }
}
