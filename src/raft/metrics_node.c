/*
 * The node's operator views, read on its loop thread: the metrics sample
 * (metrics.h renders it), health (what /healthz answers: the inputs of
 * healthz.h, which decides), and the cluster
 * view of `status --cluster` (what the leader knows of every member, from
 * the contact records the raft I/O feeds, contact.h).
 */
#include <inttypes.h>
#include <string.h>

#include "raft/consensus.h"
#include "raft/healthz.h"
#include "raft/kv.h"
#include "raft/node.h"
#include "raft/req.h"

void p2praft__node_observe(void *ctx, const struct raft_message *m)
{
    struct p2praft_node *n = ctx;
    p2praft__contacts_observe(&n->contacts, m, uv_now(&n->loop),
                              raft_current_term(&n->raft));
    p2praft__reqs_observe(n, m);
}

int p2praft__node_metrics_text(struct p2praft_node *n, struct lp2p_buf *b)
{
    struct p2praft__metrics_sample s;
    struct p2praft_io_stats io;
    const struct p2praft__kv_state *st = NULL;
    raft_id lid = 0;
    const char *laddr = NULL;
    size_t streams = 0;

    memset(&s, 0, sizeof(s));
    raft_leader(&n->raft, &lid, &laddr);
    s.term = raft_current_term(&n->raft);
    s.commit_index = raft_commit_index(&n->raft);
    s.applied_index = raft_last_applied(&n->raft);
    s.last_index = raft_last_index(&n->raft);
    s.is_leader = raft_state(&n->raft) == RAFT_LEADER;
    s.has_leader = lid != 0;
    s.caught_up = n->caught_up;
    s.members = n->raft.configuration.n;
    s.peers_reachable = p2praft__health_reachable(n);
    if (p2praft__consensus_state(n->c, (const void **)&st) == 0) {
        s.keys = p2praft__kv_count(st);
    }
    s.snapshots_taken = p2praft_consensus_snapshots(n->c);
    s.snapshots_installed =
        p2praft_consensus_restored(n->c) - n->restored_at_boot;
    p2praft__consensus_snapshot_bytes(n->c, &s.snapshot_bytes_last,
                                      &s.snapshot_bytes_total);
    s.connections = lp2p_host_conn_count(n->host);
    lp2p_host_traffic(n->host, &s.bytes_in, &s.bytes_out, &streams);
    s.streams = streams;
    s.api_connections = n->api.n_conns;
    s.client_connections = n->clients.n_sessions;
    s.watches = n->n_watches;
    p2praft_io_stats(&n->io, &io);
    s.refused_raft = io.refused;
    s.refused_forward = n->fwd.refused_member.total + n->fwd.refused_busy.total;
    s.refused_client =
        n->clients.refused_peer.total + n->clients.refused_busy.total;
    s.refused_api = n->api.refused.total + n->api_busy;
    s.raft_msgs_sent = io.sent;
    s.raft_msgs_received = io.received;
    s.raft_msgs_dropped = io.dropped;
    s.forwarded = n->fwd.forwarded;
    s.served_forwards = n->fwd.served_fwd;
    return p2praft__metrics_render(&n->metrics, &s, b);
}

bool p2praft__node_healthy(struct p2praft_node *n, char *why, size_t len)
{
    struct p2praft__healthz_in in;
    raft_id lid = 0;
    const char *laddr = NULL;
    memset(&in, 0, sizeof(in));
    raft_leader(&n->raft, &lid, &laddr);
    in.removed = n->members.removed;
    in.is_leader = raft_state(&n->raft) == RAFT_LEADER;
    in.leader_known = lid != 0 && laddr != NULL;
    in.leader = laddr;
    in.role = raft_state_name(raft_state(&n->raft));
    in.term = (uint64_t)raft_current_term(&n->raft);
    in.contact_age_ms = P2PRAFT__HEALTHZ_NEVER;
    if (in.is_leader) {
        in.contact_age_ms = 0;
    } else if (lid != 0) {
        const struct p2praft__contact *c =
            p2praft__contacts_get(&n->contacts, lid);
        uint64_t now = uv_now(&n->loop);
        if (c != NULL) {
            in.contact_age_ms = now >= c->last_ms ? now - c->last_ms : 0;
        }
    }
    in.election_ms = n->cfg.election_ms;
    in.caught_up = n->caught_up;
    in.applied = (uint64_t)raft_last_applied(&n->raft);
    in.commit = (uint64_t)raft_commit_index(&n->raft);
    return p2praft__healthz_judge(&in, why, len) == P2PRAFT__HEALTHZ_OK;
}

void p2praft__node_cluster_text(struct p2praft_node *n, struct lp2p_buf *b)
{
    uint64_t now = uv_now(&n->loop);
    raft_index last = raft_last_index(&n->raft);
    raft_term term = raft_current_term(&n->raft);
    /* A member that has not answered within two election timeouts is
     * unreachable: the leader sends it a heartbeat every heartbeat_ms. */
    uint64_t stale = 2 * (uint64_t)n->cfg.election_ms;
    unsigned i;
    lp2p__buf_printf(b,
                     "leader: %s\nterm: %" PRIu64 "\nlast_index: %" PRIu64
                     "\ncommit_index: %" PRIu64 "\n",
                     n->self, (uint64_t)term, (uint64_t)last,
                     (uint64_t)raft_commit_index(&n->raft));
    for (i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *sv = &n->raft.configuration.servers[i];
        const struct p2praft__contact *c;
        if (sv->id == n->self_id) {
            lp2p__buf_printf(b,
                             "member: %s role=%s state=leader reachable=yes "
                             "match=%" PRIu64 " lag=0 last_contact_ms=0\n",
                             sv->address, raft_role_name(sv->role),
                             (uint64_t)last);
            continue;
        }
        c = p2praft__contacts_get(&n->contacts, sv->id);
        if (c == NULL) {
            lp2p__buf_printf(b,
                             "member: %s role=%s state=unknown reachable=no "
                             "match=0 lag=%" PRIu64 " last_contact_ms=none\n",
                             sv->address, raft_role_name(sv->role),
                             (uint64_t)last);
            continue;
        }
        {
            uint64_t ago = now >= c->last_ms ? now - c->last_ms : 0;
            raft_index match = c->match_term == term ? c->match : 0;
            lp2p__buf_printf(b,
                             "member: %s role=%s state=follower reachable=%s "
                             "match=%" PRIu64 " lag=%" PRIu64
                             " last_contact_ms=%" PRIu64 "\n",
                             sv->address, raft_role_name(sv->role),
                             ago <= stale ? "yes" : "no", (uint64_t)match,
                             (uint64_t)(last > match ? last - match : 0), ago);
        }
    }
}
