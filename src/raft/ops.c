/*
 * Operator requests (API ops 20..23), served from the node's own state on
 * its loop thread: SNAPSHOT (a backup, backup.h), METRICS (Prometheus
 * text, metrics.h), HEALTH (a leader known and caught up) and, on the
 * leader, CLUSTER (what it knows of every member). They change nothing,
 * so each is answered at once: OK, or FAILED with the reason.
 */
#include <stdio.h>
#include <string.h>

#include "raft/backup.h"
#include "raft/node.h"
#include "raft/req.h"

void p2praft__req_serve_operator(struct p2praft__req *r)
{
    struct p2praft_node *n = r->node;
    struct lp2p_buf b;
    char why[300];
    int rv = 0;
    lp2p__buf_init(&b);
    r->index = raft_last_applied(&n->raft);
    switch (r->q.op) {
    case P2PRAFT_API_SNAPSHOT:
        if (r->q.key != NULL) { /* a cursor: paged */
            rv = p2praft__backup_page(n, r->q.key, &b, &r->index, why,
                                      sizeof(why));
        } else {
            rv = p2praft__node_backup(n, &b, true, why, sizeof(why));
        }
        break;
    case P2PRAFT_API_METRICS:
        rv = p2praft__node_metrics_text(n, &b);
        if (rv != 0) {
            strcpy(why, "out of memory");
        }
        break;
    case P2PRAFT_API_CLUSTER:
        p2praft__node_cluster_text(n, &b);
        break;
    case P2PRAFT_API_HEALTH:
        if (!p2praft__node_healthy(n, why, sizeof(why))) {
            rv = LP2P_EAGAIN;
        } else {
            lp2p__buf_append(&b, why, strlen(why));
        }
        break;
    default:
        snprintf(why, sizeof(why), "operation %u is not served here",
                 r->q.op);
        rv = LP2P_EINVAL;
        break;
    }
    if (rv != 0) {
        p2praft__req_error(r, rv == LP2P_EINVAL ? P2PRAFT_API_BADREQ
                                                : P2PRAFT_API_FAILED,
                           "%s", why);
    } else {
        p2praft__req_reply(r, P2PRAFT_API_OK, b.data, b.len);
    }
    lp2p__buf_free(&b);
}
