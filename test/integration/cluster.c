/* See cluster.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

bool cluster_slow(void)
{
    return harness_slow();
}

int cluster_prepare(struct cluster *cl, unsigned n,
                    const struct p2praft_type *st,
                    const struct p2praft_op_type *op, const void *initial)
{
    unsigned i;
    int rv;
    /* A peer closing its socket must not kill us (raft_uv writes to TCP). */
    signal(SIGPIPE, SIG_IGN);
    cl->n = n;
    cl->st = st;
    cl->op = op;
    cl->initial = initial;
    if (cl->election_ms == 0) {
        cl->election_ms = cluster_slow() ? 2000 : 500;
    }
    if (cl->heartbeat_ms == 0) {
        cl->heartbeat_ms = cluster_slow() ? 200 : 50;
    }
    rv = uv_loop_init(&cl->loop);
    if (rv != 0) {
        return LP2P_EIO;
    }
    for (i = 0; i < n; i++) {
        struct cnode *nd = &cl->nodes[i];
        int port = harness_free_port();
        nd->cl = cl;
        nd->i = i;
        nd->id = i + 1;
        snprintf(nd->dir, sizeof(nd->dir), "%s/p2praft-test-XXXXXX",
                 cl->base_dir != NULL ? cl->base_dir : "/tmp");
        if (mkdtemp(nd->dir) == NULL || port < 0) {
            return LP2P_EIO;
        }
        snprintf(nd->addr, sizeof(nd->addr), "127.0.0.1:%d", port);
    }
    return 0;
}

int cluster_start(struct cluster *cl, unsigned i, bool bootstrap)
{
    struct cnode *nd = &cl->nodes[i];
    raft_id ids[CLUSTER_MAX];
    const char *addrs[CLUSTER_MAX];
    unsigned j;
    int rv;

    rv = harness_consensus_new(&nd->c, &cl->loop, cl->st, cl->op,
                               cl->initial);
    if (rv != 0) {
        return rv;
    }
    memset(&nd->transport, 0, sizeof(nd->transport));
    nd->transport.version = 1;
    rv = raft_uv_tcp_init(&nd->transport, &cl->loop);
    if (rv != 0) {
        fprintf(stderr, "raft_uv_tcp_init: %s\n", raft_strerror(rv));
        return LP2P_ERAFT;
    }
    rv = raft_uv_init(&nd->io, &cl->loop, nd->dir, &nd->transport);
    if (rv != 0) {
        fprintf(stderr, "raft_uv_init: %s\n", nd->io.errmsg);
        return LP2P_ERAFT;
    }
    raft_uv_set_connect_retry_delay(&nd->io, 50);
    rv = raft_init(&nd->raft, &nd->io, p2praft_consensus_fsm(nd->c), nd->id,
                   nd->addr);
    if (rv != 0) {
        fprintf(stderr, "raft_init: %s\n", raft_strerror(rv));
        return LP2P_ERAFT;
    }
    p2praft_raft_trace(&nd->raft);
    p2praft_raft_uv_trace(&nd->io);
    raft_set_election_timeout(&nd->raft, cl->election_ms);
    raft_set_heartbeat_timeout(&nd->raft, cl->heartbeat_ms);
    if (cl->snapshot_threshold != 0) {
        raft_set_snapshot_threshold(&nd->raft, cl->snapshot_threshold);
        raft_set_snapshot_trailing(&nd->raft, cl->snapshot_trailing);
    }
    for (j = 0; j < cl->n; j++) {
        ids[j] = cl->nodes[j].id;
        addrs[j] = cl->nodes[j].addr;
    }
    rv = harness_raft_start(&nd->raft, bootstrap, cl->n, ids, addrs);
    if (rv != 0) {
        return rv;
    }
    nd->running = true;
    nd->closed = false;
    return harness_attach_actor(nd->c, &nd->actor, &nd->raft);
}

static void raft_closed(struct raft *r)
{
    struct cnode *nd = r->data;
    raft_uv_close(&nd->io);
    raft_uv_tcp_close(&nd->transport);
    nd->closed = true;
}

static bool node_closed(void *ctx)
{
    return ((struct cnode *)ctx)->closed;
}

void cluster_stop(struct cluster *cl, unsigned i)
{
    struct cnode *nd = &cl->nodes[i];
    if (nd->running) {
        nd->raft.data = nd;
        raft_close(&nd->raft, raft_closed);
        cluster_run_until(cl, node_closed, nd, 10000);
        nd->running = false;
    }
    if (nd->c != NULL) {
        p2praft_consensus_free(nd->c);
        nd->c = NULL;
        uv_run(&cl->loop, UV_RUN_NOWAIT);
    }
    p2praft_actor_free(nd->actor);
    nd->actor = NULL;
}

void cluster_close(struct cluster *cl)
{
    unsigned i;
    for (i = 0; i < cl->n; i++) {
        cluster_stop(cl, i);
    }
    uv_run(&cl->loop, UV_RUN_DEFAULT);
    for (i = 0; i < cl->n; i++) {
        if (cl->nodes[i].dir[0] != '\0') {
            harness_rm_rf(cl->nodes[i].dir);
        }
    }
    uv_loop_close(&cl->loop);
}

bool cluster_run_until(struct cluster *cl, bool (*cond)(void *ctx), void *ctx,
                       unsigned timeout_ms)
{
    return harness_run_until(&cl->loop, cond, ctx, timeout_ms);
}

int cluster_wait_leader(struct cluster *cl, unsigned timeout_ms)
{
    struct raft *rafts[CLUSTER_MAX];
    unsigned i;
    for (i = 0; i < cl->n; i++) {
        rafts[i] = cl->nodes[i].running ? &cl->nodes[i].raft : NULL;
    }
    return harness_wait_leader(&cl->loop, rafts, cl->n, timeout_ms);
}

int cluster_init(struct cluster *cl, unsigned n, const struct p2praft_type *st,
                 const struct p2praft_op_type *op, const void *initial)
{
    unsigned i;
    int rv = cluster_prepare(cl, n, st, op, initial);
    for (i = 0; rv == 0 && i < n; i++) {
        rv = cluster_start(cl, i, true);
    }
    return rv;
}

static void nodelay_cb(uv_handle_t *h, void *arg)
{
    int *n = arg;
    if (h->type == UV_TCP && uv_tcp_nodelay((uv_tcp_t *)h, 1) == 0) {
        (*n)++;
    }
}

int cluster_nodelay(struct cluster *cl)
{
    int n = 0;
    uv_walk(&cl->loop, nodelay_cb, &n);
    return n;
}
