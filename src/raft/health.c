/*
 * The node's health log: what an operator must see at the default level
 * (warn), since a misconfigured node otherwise prints `ready` and then
 * nothing while it stays a candidate for ever.
 *
 *   leader changes   every change of the leader raft reports, with its
 *                    term; and "no leader for N s" while there is none,
 *                    at growing intervals (10 s, 20 s, ... 5 min);
 *   peers            each configured peer that has no connection is
 *                    dialed by the node itself (on top of raft's own
 *                    dials, which join the same attempt), so that the
 *                    failure says why: a peer whose key does not match its
 *                    /p2p/ ID is reported at once; one that is unreachable,
 *                    once it has been for GRACE_MS, then at growing
 *                    intervals with how long; "reachable again" when it is
 *                    back. A connection made by raft counts as reachable
 *                    too. A peer that failed is probed every PROBE_MS; one
 *                    that answered, only every RECHECK_MS while it has no
 *                    connection (two followers exchange no raft traffic,
 *                    and a probe's connection carries no stream);
 *   raft refusals    the transport's count of refused raft streams,
 *                    summarised at a bounded rate (forward.c does the
 *                    same for the forward protocol).
 *
 * A probe in flight when the host closes completes with LP2P_ECANCELED;
 * the watch array lives until the node is freed, after the loop ran dry.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "raft/forward.h"
#include "raft/health.h"
#include "raft/node.h"
#include "util/heap.h"
#include "util/log.h"

#define MODULE "node"
#define PROBE_MS 1000
#define RECHECK_MS 30000
#define GRACE_MS 3000
#define REPORT_FIRST_MS 10000
#define REPORT_MAX_MS 300000

struct p2praft__peer_watch {
    struct p2praft_node *node;
    struct lp2p_peer_id pid;
    char id[LP2P_PEER_ID_STRMAX];
    const char *addr; /* n->peers[i] */
    bool probing;
    bool up;             /* connected, or the last probe succeeded */
    bool down;           /* the last probe failed and no connection since */
    bool reported;       /* a line said it is down */
    int err;             /* the last probe's error */
    uint64_t down_since; /* ms */
    uint64_t next_probe, next_report, every;
};

int p2praft__health_init(struct p2praft_node *n,
                         const struct lp2p_peer_id *peers, size_t n_peers)
{
    struct p2praft__health *h = &n->health;
    size_t i;
    if (n_peers == 0) {
        return 0;
    }
    h->peers = lp2p__calloc(n_peers, sizeof(*h->peers));
    if (h->peers == NULL) {
        return LP2P_ENOMEM;
    }
    h->n_peers = n_peers;
    for (i = 0; i < n_peers; i++) {
        struct p2praft__peer_watch *w = &h->peers[i];
        w->node = n;
        w->pid = peers[i];
        w->addr = n->peers[i];
        lp2p_peer_id_to_string(&peers[i], w->id, sizeof(w->id));
    }
    return 0;
}

void p2praft__health_free(struct p2praft_node *n)
{
    lp2p__free(n->health.peers);
    n->health.peers = NULL;
    n->health.n_peers = 0;
}

size_t p2praft__health_reachable(struct p2praft_node *n)
{
    size_t i, k = 0;
    for (i = 0; i < n->health.n_peers; i++) {
        if (n->health.peers[i].up ||
            lp2p_host_is_connected(n->host, &n->health.peers[i].pid)) {
            k++;
        }
    }
    return k;
}

/* ---- leader -------------------------------------------------------------- */

bool p2praft__health_check(struct p2praft_node *n)
{
    struct p2praft__health *h = &n->health;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_term term = raft_current_term(&n->raft);
    raft_leader(&n->raft, &lid, &laddr);
    if (lid == h->leader && (lid == 0 || term == h->term)) {
        return false;
    }
    if (lid == n->self_id) {
        LOG_WARN(MODULE, "this node is now the leader (term %" PRIu64 ")",
                 (uint64_t)term);
    } else if (lid != 0) {
        LOG_WARN(MODULE, "leader is now %s (term %" PRIu64 ")",
                 laddr != NULL ? laddr : "?", (uint64_t)term);
    } else {
        LOG_WARN(MODULE, "no leader: the last one led term %" PRIu64
                         "; electing (term %" PRIu64 ")",
                 (uint64_t)h->term, (uint64_t)term);
    }
    h->leader = lid;
    h->term = term;
    h->no_leader_since = 0;
    return true;
}

/* Without a leader since no_leader_since: say so, at growing intervals. */
static void no_leader_tick(struct p2praft_node *n, uint64_t now)
{
    struct p2praft__health *h = &n->health;
    if (h->leader != 0) {
        return;
    }
    if (h->no_leader_since == 0) {
        h->no_leader_since = now;
        h->no_leader_every = REPORT_FIRST_MS;
        h->no_leader_next = now + REPORT_FIRST_MS;
        return;
    }
    if (now < h->no_leader_next) {
        return;
    }
    LOG_WARN(MODULE,
             "no leader for %" PRIu64 " s (this node: %s, term %" PRIu64
             "; %zu of %zu peers reachable; a leader needs a majority of %u "
             "members)",
             (now - h->no_leader_since) / 1000,
             raft_state_name(raft_state(&n->raft)),
             (uint64_t)raft_current_term(&n->raft),
             p2praft__health_reachable(n), h->n_peers,
             n->raft.configuration.n);
    h->no_leader_next = now + h->no_leader_every;
    if (h->no_leader_every < REPORT_MAX_MS) {
        h->no_leader_every *= 2;
    }
}

/* ---- peers --------------------------------------------------------------- */

static void peer_up(struct p2praft__peer_watch *w, uint64_t now)
{
    if (w->reported) {
        LOG_WARN(MODULE, "peer %s reachable again, after %" PRIu64 " s",
                 w->id, (now - w->down_since) / 1000);
    }
    w->up = true;
    w->down = false;
    w->reported = false;
}

static void peer_report(struct p2praft__peer_watch *w, uint64_t now)
{
    if (w->err == LP2P_EPEERID) {
        LOG_WARN(MODULE,
                 "peer %s: the node at %s has another key than this /p2p/ ID "
                 "(wrong --peer, or the wrong key file there)%s",
                 w->id, w->addr, w->reported ? "; still" : "");
    } else {
        LOG_WARN(MODULE, "peer %s unreachable for %" PRIu64 " s at %s: %s",
                 w->id, (now - w->down_since) / 1000, w->addr,
                 lp2p_strerror(w->err));
    }
    w->reported = true;
    w->next_report = now + w->every;
    if (w->every < REPORT_MAX_MS) {
        w->every *= 2;
    }
}

static void probe_cb(struct lp2p_host *host, int status,
                     const struct lp2p_peer_id *peer, void *data)
{
    struct p2praft__peer_watch *w = data;
    struct p2praft_node *n = w->node;
    uint64_t now;
    (void)host;
    (void)peer;
    w->probing = false;
    if (n->stopping || status == LP2P_ECANCELED) {
        return;
    }
    now = uv_now(&n->loop);
    if (status == 0) {
        peer_up(w, now);
        w->next_probe = now + RECHECK_MS;
        return;
    }
    w->up = false;
    if (!w->down) {
        w->down = true;
        w->down_since = now;
        w->every = REPORT_FIRST_MS;
        w->next_report = now + GRACE_MS;
    }
    /* A wrong key is a configuration error, not an outage: say it now. */
    if (status == LP2P_EPEERID && w->err != LP2P_EPEERID) {
        w->next_report = now;
    }
    w->err = status;
    if (now >= w->next_report) {
        peer_report(w, now);
    }
}

static void peers_tick(struct p2praft_node *n, uint64_t now)
{
    size_t i;
    for (i = 0; i < n->health.n_peers; i++) {
        struct p2praft__peer_watch *w = &n->health.peers[i];
        if (lp2p_host_is_connected(n->host, &w->pid)) {
            if (!w->up) {
                peer_up(w, now);
            }
            continue;
        }
        if (w->probing || now < w->next_probe) {
            continue;
        }
        w->next_probe = now + PROBE_MS;
        if (lp2p_host_connect(n->host, w->addr, probe_cb, w) == 0) {
            w->probing = true;
        }
    }
}

/* ---- refusals ------------------------------------------------------------ */

static void refusals_tick(struct p2praft_node *n, uint64_t now)
{
    struct p2praft__health *h = &n->health;
    uint64_t cur = p2praft_io_refused(&n->io), since;
    if (cur > h->raft_refused_seen) {
        lp2p__ratelog_add(&h->raft_refused, cur - h->raft_refused_seen);
        h->raft_refused_seen = cur;
    }
    if (lp2p__ratelog_due(&h->raft_refused, now, P2PRAFT__REFUSAL_LOG_MS,
                          &since)) {
        LOG_WARN(MODULE,
                 "refused %" PRIu64 " %s stream%s from peers that are not "
                 "members (%" PRIu64 " in all)",
                 since, P2PRAFT_PROTOCOL, since == 1 ? "" : "s",
                 h->raft_refused.total);
    }
}

void p2praft__health_tick(struct p2praft_node *n, uint64_t now)
{
    if (n->stopping || !n->raft_started) {
        return;
    }
    if (!n->members.removed) { /* a removed node said so, once */
        no_leader_tick(n, now);
    }
    peers_tick(n, now);
    refusals_tick(n, now);
}
