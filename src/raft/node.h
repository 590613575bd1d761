/*
 * What the parts of a node share: struct p2praft_node. node.c owns its
 * lifecycle; req.c, forward.c, api_server.c and status.c work on it from
 * the loop thread. Only the fields under `mu` are read by other threads.
 */
#ifndef P2PRAFT_RAFT_NODE_H
#define P2PRAFT_RAFT_NODE_H

#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "p2praft.h"
#include "raft/api_server.h"
#include "raft/backup.h"
#include "raft/datadir.h"
#include "raft/clientproto.h"
#include "raft/contact.h"
#include "raft/forward.h"
#include "raft/health.h"
#include "raft/metrics.h"
#include "raft/members.h"
#include "util/bridge.h"
#include "util/list.h"

struct p2praft_node {
    uv_loop_t loop;
    pthread_t thread;
    struct p2praft_node_config cfg; /* its pointers are not kept: below */
    struct lp2p_key key;
    char **listen, **peers, **client_ids;
    char *data_dir, *api_path, *clients_file;
    struct p2praft__datadir dd; /* locked from the first setup step on */
    char self[LP2P_PEER_ID_STRMAX];
    raft_id self_id;

    struct lp2p_host *host;
    struct raft_io io; /* p2praft's raft I/O: messages over the host */
    struct raft raft;
    struct p2praft_consensus *c;
    struct p2praft_actor *actor;
    bool io_ok, raft_ok, raft_started;
    uint64_t restored_at_boot;

    struct lp2p__bridge calls; /* blocking calls from other threads */
    uv_timer_t tick;
    uv_check_t check;
    bool handles_ok;

    /* Caught up: this node applied up to an index learned from a leader
     * since it started (a barrier, a write it forwarded or committed; on
     * the hashicorp wire also the commit index a leader's AppendEntries
     * carried).
     * Until then plain reads get NOT CAUGHT UP, since a restarted node's
     * state may lack what it acknowledged before. */
    bool caught_up;
    bool catching_up; /* the internal catch-up barrier is in flight */
    /* The highest LeaderCommitIndex the AppendEntries of term
     * seen_commit_term carried (the leader of that term sent them): on the
     * hashicorp wire a Go leader answers no barrier (it speaks no forward
     * protocol), so applying up to it catches this node up (req.c). */
    uint64_t seen_commit_term;
    uint64_t seen_commit;

    struct lp2p__list reqs; /* struct p2praft__req, newest first */
    unsigned api_reqs;      /* of them, from client connections */
    uint64_t api_busy;      /* requests answered BUSY (bounds in flight) */
    struct lp2p__list watches; /* live watches (watch.c) */
    unsigned n_watches;
    struct p2praft_sub *watch_sub;
    struct p2praft__api_server api;
    struct p2praft__clientproto clients;
    struct p2praft__forward fwd;
    struct p2praft__health health;
    struct p2praft__metrics metrics;   /* metrics.h */
    struct p2praft__contacts contacts; /* contact.h: fed by the raft I/O */
    struct p2praft__members members;
    struct p2praft__backup_pages backup; /* backup.h: a paged backup */
    bool stopping; /* shutdown_node() ran */

    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;
    bool started;
    int start_rv;
    char errmsg[512];
};

/* Operator views (metrics_node.c), on the loop thread: */
/* The raft I/O's observer: records contact with the sender. */
void p2praft__node_observe(void *ctx, const struct raft_message *m);
/* The Prometheus exposition of the node's metrics, appended to b. */
int p2praft__node_metrics_text(struct p2praft_node *n, struct lp2p_buf *b);
/* Is the node healthy (a leader known and heard from recently, caught up,
 * applied close to commit: healthz.h decides)? `why` gets a sentence
 * either way. */
bool p2praft__node_healthy(struct p2praft_node *n, char *why, size_t len);
/* On the leader: one line per member (reachability, role, match index,
 * lag, last contact), appended to b. */
void p2praft__node_cluster_text(struct p2praft_node *n, struct lp2p_buf *b);

#endif
