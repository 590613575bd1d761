/* See netcluster.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netcluster.h"

bool nc_slow(void)
{
    return harness_slow();
}

static void nc_host_closed(struct lp2p_host *host, void *data)
{
    struct nc_node *nd = data;
    (void)host;
    nd->host_closed = true;
}

static bool host_closed(void *ctx)
{
    return ((struct nc_node *)ctx)->host_closed;
}

/* Tell every other open host where node i listens. */
static int nc_publish(struct nc *nc, unsigned i)
{
    struct nc_node *nd = &nc->nodes[i];
    unsigned j;
    int rv;
    for (j = 0; j < nc->n; j++) {
        struct nc_node *o = &nc->nodes[j];
        if (j == i || o->host == NULL) {
            continue;
        }
        rv = lp2p_peerstore_add_addr(o->host, &nd->pid, nd->addr,
                                     LP2P_TTL_PERMANENT);
        if (rv != 0) {
            return rv;
        }
        rv = lp2p_peerstore_add_addr(nd->host, &o->pid, o->addr,
                                     LP2P_TTL_PERMANENT);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int nc_host_start(struct nc *nc, unsigned i)
{
    struct nc_node *nd = &nc->nodes[i];
    struct lp2p_host_config cfg;
    char ma[LP2P_MULTIADDR_STRMAX];
    int rv;
    lp2p_host_config_init(&cfg);
    cfg.key = &nd->key;
    cfg.handshake_timeout_ms = nc_slow() ? 20000 : 2000;
    cfg.busy_poll_us = nc->busy_poll_us;
    rv = lp2p_host_new(&nd->host, &nc->loop, &cfg);
    if (rv != 0) {
        return rv;
    }
    nd->host_closed = false;
    /* Same port again when restarting, so peers' addresses stay valid. */
    rv = -1;
    if (nd->addr[0] != '\0') {
        rv = lp2p_host_listen(nd->host, nd->addr);
    }
    if (rv != 0) {
        rv = lp2p_host_listen(nd->host, "/ip4/127.0.0.1/tcp/0");
        if (rv != 0) {
            return rv;
        }
    }
    rv = lp2p_host_listen_addr(nd->host, 0, ma, sizeof(ma));
    if (rv != 0) {
        return rv;
    }
    snprintf(nd->addr, sizeof(nd->addr), "%s", ma);
    return nc_publish(nc, i);
}

int nc_prepare(struct nc *nc, unsigned n, const struct p2praft_type *st,
               const struct p2praft_op_type *op, const void *initial)
{
    unsigned i;
    int rv;
    if (n > NC_MAX) {
        return LP2P_EINVAL;
    }
    nc->n = n;
    nc->st = st;
    nc->op = op;
    nc->initial = initial;
    if (nc->election_ms == 0) {
        nc->election_ms = nc_slow() ? 2000 : 150;
    }
    if (nc->heartbeat_ms == 0) {
        nc->heartbeat_ms = nc_slow() ? 200 : 30;
    }
    if (uv_loop_init(&nc->loop) != 0) {
        return LP2P_EIO;
    }
    for (i = 0; i < n; i++) {
        struct nc_node *nd = &nc->nodes[i];
        nd->nc = nc;
        nd->i = i;
        nd->host_closed = true;
        snprintf(nd->dir, sizeof(nd->dir), "%s/p2praft-nc-XXXXXX",
                 nc->base_dir != NULL ? nc->base_dir : "/tmp");
        if (mkdtemp(nd->dir) == NULL) {
            nd->dir[0] = '\0';
            return LP2P_EIO;
        }
        if ((rv = lp2p_key_generate(&nd->key)) != 0 ||
            (rv = lp2p_peer_id_from_key(&nd->key, &nd->pid)) != 0 ||
            (rv = lp2p_peer_id_to_string(&nd->pid, nd->pidstr,
                                         sizeof(nd->pidstr))) != 0) {
            return rv;
        }
        nd->id = p2praft_server_id(&nd->pid);
        if (nc->store == P2PRAFT_STORE_MEM &&
            (rv = p2praft_memstore_new(&nd->mem)) != 0) {
            return rv;
        }
        rv = nc_host_start(nc, i);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int nc_start(struct nc *nc, unsigned i, bool bootstrap)
{
    struct nc_node *nd = &nc->nodes[i];
    raft_id ids[NC_MAX];
    const char *addrs[NC_MAX];
    struct p2praft_io_config cfg;
    unsigned j;
    int rv;

    if (nd->host == NULL) {
        rv = nc_host_start(nc, i);
        if (rv != 0) {
            return rv;
        }
    }
    rv = harness_consensus_new(&nd->c, &nc->loop, nc->st, nc->op,
                               nc->initial);
    if (rv != 0) {
        return rv;
    }
    p2praft_io_config_init(&cfg);
    cfg.store = nc->store;
    cfg.mem = nd->mem;
    cfg.dir = nd->dir;
    cfg.dial_timeout_ms = nc_slow() ? 20000 : 2000;
    cfg.retry_ms = 20;
    cfg.no_hint = nc->no_hint;
    cfg.no_fast_start = nc->no_fast_start;
    cfg.wire = nc->wire;
    if (nc->wire == P2PRAFT_WIRE_HASHICORP &&
        (rv = p2praft_consensus_set_seed_format(nd->c, true)) != 0) {
        return rv;
    }
    rv = p2praft_io_init(&nd->io, nd->host, &cfg);
    if (rv != 0) {
        fprintf(stderr, "p2praft_io_init: %s\n", nd->io.errmsg);
        return rv;
    }
    rv = raft_init(&nd->raft, &nd->io, p2praft_consensus_fsm(nd->c), nd->id,
                   nd->pidstr);
    if (rv != 0) {
        fprintf(stderr, "raft_init: %s\n", raft_strerror(rv));
        p2praft_io_close(&nd->io);
        return LP2P_ERAFT;
    }
    p2praft_raft_trace(&nd->raft);
    raft_set_election_timeout(&nd->raft, nc->election_ms);
    raft_set_heartbeat_timeout(&nd->raft, nc->heartbeat_ms);
    raft_set_pre_vote(&nd->raft, nc->wire != P2PRAFT_WIRE_HASHICORP);
    if (nc->snapshot_threshold != 0) {
        raft_set_snapshot_threshold(&nd->raft, nc->snapshot_threshold);
        raft_set_snapshot_trailing(&nd->raft, nc->snapshot_trailing);
    }
    if (nc->install_snapshot_ms != 0) {
        raft_set_install_snapshot_timeout(&nd->raft, nc->install_snapshot_ms);
    }
    for (j = 0; j < nc->n; j++) {
        ids[j] = nc->nodes[j].id;
        addrs[j] = nc->nodes[j].pidstr;
    }
    rv = harness_raft_start(&nd->raft, bootstrap, nc->n, ids, addrs);
    if (rv != 0) {
        return rv;
    }
    nd->running = true;
    nd->closed = false;
    return harness_attach_actor(nd->c, &nd->actor, &nd->raft);
}

static void nc_raft_closed(struct raft *r)
{
    struct nc_node *nd = r->data;
    p2praft_io_close(&nd->io);
    nd->closed = true;
}

static bool nc_node_closed(void *ctx)
{
    return ((struct nc_node *)ctx)->closed;
}

void nc_stop(struct nc *nc, unsigned i)
{
    struct nc_node *nd = &nc->nodes[i];
    if (nd->running) {
        nd->raft.data = nd;
        raft_close(&nd->raft, nc_raft_closed);
        nc_run_until(nc, nc_node_closed, nd, 10000);
        nd->running = false;
    }
    if (nd->c != NULL) {
        p2praft_consensus_free(nd->c);
        nd->c = NULL;
        uv_run(&nc->loop, UV_RUN_NOWAIT);
    }
    p2praft_actor_free(nd->actor);
    nd->actor = NULL;
}

void nc_kill(struct nc *nc, unsigned i)
{
    struct nc_node *nd = &nc->nodes[i];
    nc_stop(nc, i);
    if (nd->host != NULL) {
        lp2p_host_close(nd->host, nc_host_closed, nd);
        nd->host = NULL;
        nc_run_until(nc, host_closed, nd, 10000);
    }
}

void nc_close(struct nc *nc)
{
    unsigned i;
    for (i = 0; i < nc->n; i++) {
        nc_stop(nc, i);
    }
    for (i = 0; i < nc->n; i++) {
        nc_kill(nc, i);
    }
    uv_run(&nc->loop, UV_RUN_DEFAULT);
    for (i = 0; i < nc->n; i++) {
        if (nc->nodes[i].dir[0] != '\0') {
            harness_rm_rf(nc->nodes[i].dir);
        }
        p2praft_memstore_free(nc->nodes[i].mem);
        nc->nodes[i].mem = NULL;
        lp2p_key_wipe(&nc->nodes[i].key);
    }
    uv_loop_close(&nc->loop);
}

bool nc_run_until(struct nc *nc, bool (*cond)(void *ctx), void *ctx,
                  unsigned timeout_ms)
{
    return harness_run_until(&nc->loop, cond, ctx, timeout_ms);
}

int nc_wait_leader(struct nc *nc, unsigned timeout_ms)
{
    struct raft *rafts[NC_MAX];
    unsigned i;
    for (i = 0; i < nc->n; i++) {
        rafts[i] = nc->nodes[i].running ? &nc->nodes[i].raft : NULL;
    }
    return harness_wait_leader(&nc->loop, rafts, nc->n, timeout_ms);
}

int nc_init(struct nc *nc, unsigned n, const struct p2praft_type *st,
            const struct p2praft_op_type *op, const void *initial)
{
    unsigned i;
    int rv = nc_prepare(nc, n, st, op, initial);
    for (i = 0; rv == 0 && i < n; i++) {
        rv = nc_start(nc, i, true);
    }
    return rv;
}
