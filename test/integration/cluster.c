/* See cluster.h. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster.h"

bool cluster_slow(void)
{
    const char *v = getenv("P2PRAFT_VALGRIND");
    return v != NULL && v[0] == '1';
}

static int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    close(fd);
    return port;
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
        int port = free_port();
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
    struct raft_configuration conf;
    unsigned j;
    int rv;

    if (nd->c == NULL) {
        rv = cl->op != NULL
                 ? p2praft_oplog_new(&nd->c, &cl->loop, cl->st, cl->op,
                                     cl->initial)
                 : p2praft_consensus_new(&nd->c, &cl->loop, cl->st,
                                         cl->initial);
        if (rv != 0) {
            return rv;
        }
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
    if (bootstrap) {
        raft_configuration_init(&conf);
        for (j = 0; j < cl->n; j++) {
            rv = raft_configuration_add(&conf, cl->nodes[j].id,
                                        cl->nodes[j].addr, RAFT_VOTER);
            if (rv != 0) {
                raft_configuration_close(&conf);
                return LP2P_ERAFT;
            }
        }
        rv = raft_bootstrap(&nd->raft, &conf);
        raft_configuration_close(&conf);
        if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
            fprintf(stderr, "raft_bootstrap: %s\n", raft_errmsg(&nd->raft));
            return LP2P_ERAFT;
        }
    }
    rv = raft_start(&nd->raft);
    if (rv != 0) {
        fprintf(stderr, "raft_start: %s\n", raft_errmsg(&nd->raft));
        return LP2P_ERAFT;
    }
    nd->running = true;
    nd->closed = false;
    if (nd->actor == NULL) {
        rv = p2praft_actor_new(&nd->actor, &nd->raft);
        if (rv != 0) {
            return rv;
        }
    }
    p2praft_consensus_set_actor(nd->c, nd->actor);
    return 0;
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

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
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
            rm_rf(cl->nodes[i].dir);
        }
    }
    uv_loop_close(&cl->loop);
}

static void deadline_cb(uv_timer_t *t)
{
    (void)t;
}

bool cluster_run_until(struct cluster *cl, bool (*cond)(void *ctx), void *ctx,
                       unsigned timeout_ms)
{
    uv_timer_t timer;
    uint64_t end;
    bool ok;
    uv_update_time(&cl->loop);
    end = uv_now(&cl->loop) + timeout_ms;
    uv_timer_init(&cl->loop, &timer);
    /* Only wakes the loop at the deadline; the condition is checked after
     * every loop iteration, i.e. after every event. */
    uv_timer_start(&timer, deadline_cb, timeout_ms, 0);
    while (!(ok = cond(ctx)) && uv_now(&cl->loop) < end) {
        uv_run(&cl->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&cl->loop, UV_RUN_NOWAIT);
    return ok;
}

struct leader_ctx {
    struct cluster *cl;
    int leader;
};

static bool has_leader(void *ctx)
{
    struct leader_ctx *l = ctx;
    unsigned i;
    int leader = -1;
    for (i = 0; i < l->cl->n; i++) {
        struct cnode *nd = &l->cl->nodes[i];
        if (nd->running && raft_state(&nd->raft) == RAFT_LEADER) {
            leader = (int)i;
        }
    }
    if (leader < 0) {
        return false;
    }
    for (i = 0; i < l->cl->n; i++) {
        struct cnode *nd = &l->cl->nodes[i];
        raft_id id;
        const char *addr;
        if (!nd->running) {
            continue;
        }
        raft_leader(&nd->raft, &id, &addr);
        if (id != l->cl->nodes[leader].id) {
            return false;
        }
    }
    l->leader = leader;
    return true;
}

int cluster_wait_leader(struct cluster *cl, unsigned timeout_ms)
{
    struct leader_ctx l = {cl, -1};
    if (!cluster_run_until(cl, has_leader, &l, timeout_ms)) {
        return -1;
    }
    return l.leader;
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
