/*
 * go-libp2p-raft's Example_consensus on p2praft: three raft nodes in one
 * process, each with its own libp2p host on 127.0.0.1 (port 0) and, as in
 * the seed, its own in-memory store (or a raft_uv data directory), agree on
 * a state {Value int}. The leader commits
 * 1000 states {Value: n*2}, one after the other; every follower then
 * applies them, and each node prints its final state. stdout carries
 * exactly the seed's lines:
 *
 *   Performed 200 updates. Current state value: 398
 *   ...
 *   Performed 1000 updates. Current state value: 1998
 *   Raft1 final state: 1998
 *   Raft2 final state: 1998
 *   Raft3 final state: 1998
 *
 * Unlike the seed there are no fixed sleeps: the program waits, on events
 * and with bounded timeouts, for a leader and then for every follower to
 * apply the leader's last index.
 *
 *   consensus [--store mem|disk] [--data-dir DIR] [--verbose]
 *
 * By default the nodes store everything in memory (the seed's InmemStore).
 * With --store disk they use raft_uv, in a temporary directory removed at
 * exit, or in DIR/raftN (with each node's key in DIR/raftN.key, so that a
 * second run finds the same cluster); --data-dir alone implies disk.
 * --verbose prints timings on stderr.
 *
 * Build: cc consensus.c $(pkg-config --cflags --libs p2praft); in this
 * repository `make` builds build/examples/consensus, and `p2praft demo`
 * (`make demo`) runs the same code.
 */
#include <dirent.h>
#include <errno.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "p2praft.h"

#define EX_NODES 3
#define EX_UPDATES 1000
#define EX_ELECTION_MS 150  /* libraft's default is 1000 */
#define EX_HEARTBEAT_MS 30  /* also libraft's tick */
#define EX_WAIT_MS 20000    /* bound of every wait */

/* type raftState struct { Value int } */
struct ex_state {
    int64_t Value;
};
static const struct p2praft_field ex_state_fields[] = {
    {"Value", offsetof(struct ex_state, Value), {P2PRAFT_KIND_INT64, 0, 0}}};
static const struct p2praft_type ex_state_type = {
    "raftState", sizeof(struct ex_state), ex_state_fields, 1,
    NULL, NULL, NULL, NULL};

struct ex_node {
    char dir[512];
    struct lp2p_key key;
    struct lp2p_peer_id pid;
    char pidstr[LP2P_PEER_ID_STRMAX];
    char addr[LP2P_MULTIADDR_STRMAX];
    struct lp2p_host *host;
    struct raft_io io;
    struct raft raft;
    struct p2praft_consensus *c;
    struct p2praft_actor *actor;
    bool io_ready, raft_ready, raft_closed, host_closed;
};

struct ex {
    uv_loop_t loop;
    struct ex_node nodes[EX_NODES];
    char base[400];
    bool temp_base;
    bool disk;
    bool verbose;
    int leader;
    int n_updates;
    int failures;
    bool commit_error;
    raft_index target;
};

static double ex_now_ms(void)
{
    return (double)uv_hrtime() / 1e6;
}

static void ex_deadline(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until cond() holds (checked after every event) or
 * timeout_ms passed. */
static bool ex_run_until(struct ex *ex, bool (*cond)(struct ex *),
                         unsigned timeout_ms)
{
    uv_timer_t timer;
    uint64_t end;
    bool ok;
    uv_update_time(&ex->loop);
    end = uv_now(&ex->loop) + timeout_ms;
    uv_timer_init(&ex->loop, &timer);
    uv_timer_start(&timer, ex_deadline, timeout_ms, 0);
    while (!(ok = cond(ex)) && uv_now(&ex->loop) < end) {
        uv_run(&ex->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&ex->loop, UV_RUN_NOWAIT);
    return ok;
}

/* ---- set-up ---- */

static int ex_key(struct ex *ex, unsigned i, struct lp2p_key *key)
{
    char path[600];
    int rv;
    if (ex->temp_base || !ex->disk) {
        return lp2p_key_generate(key);
    }
    snprintf(path, sizeof(path), "%s/raft%u.key", ex->base, i + 1);
    rv = lp2p_key_load(path, key);
    if (rv == LP2P_ENOTFOUND) {
        rv = lp2p_key_generate(key);
        if (rv == 0) {
            rv = lp2p_key_save(path, key);
        }
    }
    return rv;
}

static int ex_setup_node(struct ex *ex, unsigned i)
{
    struct ex_node *nd = &ex->nodes[i];
    struct lp2p_host_config cfg;
    int rv;
    snprintf(nd->dir, sizeof(nd->dir), "%s/raft%u", ex->base, i + 1);
    if (ex->disk && mkdir(nd->dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "consensus: mkdir %s: %s\n", nd->dir, strerror(errno));
        return LP2P_EIO;
    }
    if ((rv = ex_key(ex, i, &nd->key)) != 0 ||
        (rv = lp2p_peer_id_from_key(&nd->key, &nd->pid)) != 0 ||
        (rv = lp2p_peer_id_to_string(&nd->pid, nd->pidstr,
                                     sizeof(nd->pidstr))) != 0) {
        return rv;
    }
    lp2p_host_config_init(&cfg);
    cfg.key = &nd->key;
    if ((rv = lp2p_host_new(&nd->host, &ex->loop, &cfg)) != 0) {
        return rv;
    }
    nd->host_closed = false;
    if ((rv = lp2p_host_listen(nd->host, "/ip4/127.0.0.1/tcp/0")) != 0 ||
        (rv = lp2p_host_listen_addr(nd->host, 0, nd->addr,
                                    sizeof(nd->addr))) != 0) {
        return rv;
    }
    return 0;
}

static int ex_start_raft(struct ex *ex, unsigned i)
{
    struct ex_node *nd = &ex->nodes[i];
    struct ex_state initial = {3};
    struct raft_configuration conf;
    struct p2praft_io_config cfg;
    unsigned j;
    int rv;

    /* NewConsensus(&raftState{3}): a local initial value, not agreed. */
    if ((rv = p2praft_consensus_new(&nd->c, &ex->loop, &ex_state_type,
                                    &initial)) != 0) {
        return rv;
    }
    /* NewLibp2pTransport(peer, time.Minute) and the stores: in memory as
     * in the seed (NewInmemStore, NewInmemSnapshotStore), or raft_uv. */
    p2praft_io_config_init(&cfg);
    cfg.dial_timeout_ms = 60000;
    cfg.retry_ms = 20;
    if (ex->disk) {
        cfg.store = P2PRAFT_STORE_DISK;
        cfg.dir = nd->dir;
    }
    if ((rv = p2praft_io_init(&nd->io, nd->host, &cfg)) != 0) {
        fprintf(stderr, "consensus: raft io: %s: %s\n", p2praft_strerror(rv),
                nd->io.errmsg);
        return rv;
    }
    nd->io_ready = true;
    /* The raft address is the peer ID, the raft ID derived from it. */
    if (raft_init(&nd->raft, &nd->io, p2praft_consensus_fsm(nd->c),
                  p2praft_server_id(&nd->pid), nd->pidstr) != 0) {
        fprintf(stderr, "consensus: raft_init: %s\n", raft_errmsg(&nd->raft));
        return LP2P_ERAFT;
    }
    nd->raft_ready = true;
    p2praft_raft_trace(&nd->raft);
    raft_set_election_timeout(&nd->raft, EX_ELECTION_MS);
    raft_set_heartbeat_timeout(&nd->raft, EX_HEARTBEAT_MS);
    raft_set_pre_vote(&nd->raft, true);

    /* BootstrapCluster with the three peers (a no-op on a second run). */
    raft_configuration_init(&conf);
    for (j = 0; j < EX_NODES; j++) {
        rv = raft_configuration_add(&conf, p2praft_server_id(&ex->nodes[j].pid),
                                    ex->nodes[j].pidstr, RAFT_VOTER);
        if (rv != 0) {
            raft_configuration_close(&conf);
            return LP2P_ENOMEM;
        }
    }
    rv = raft_bootstrap(&nd->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
        fprintf(stderr, "consensus: raft_bootstrap: %s\n",
                raft_errmsg(&nd->raft));
        return LP2P_ERAFT;
    }
    if (raft_start(&nd->raft) != 0) {
        fprintf(stderr, "consensus: raft_start: %s\n", raft_errmsg(&nd->raft));
        return LP2P_ERAFT;
    }
    /* NewActor + SetActor */
    if ((rv = p2praft_actor_new(&nd->actor, &nd->raft)) != 0) {
        return rv;
    }
    p2praft_consensus_set_actor(nd->c, nd->actor);
    return 0;
}

/* ---- the workload ---- */

static bool ex_has_leader(struct ex *ex)
{
    unsigned i;
    int leader = -1;
    for (i = 0; i < EX_NODES; i++) {
        if (p2praft_actor_is_leader(ex->nodes[i].actor)) {
            leader = (int)i;
        }
    }
    if (leader < 0) {
        return false;
    }
    /* ... and every node knows it (actor.Leader() is the leader's peer ID). */
    for (i = 0; i < EX_NODES; i++) {
        char id[LP2P_PEER_ID_STRMAX];
        if (p2praft_actor_leader(ex->nodes[i].actor, id, sizeof(id)) != 0 ||
            strcmp(id, ex->nodes[leader].pidstr) != 0) {
            return false;
        }
    }
    ex->leader = leader;
    return true;
}

static void ex_commit_next(struct ex *ex);

static void ex_committed(void *ctx, int status, void *state,
                         const char *errmsg)
{
    struct ex *ex = ctx;
    if (status != 0 || state == NULL) {
        /* As the seed: print the error and try again (bounded here). */
        fprintf(stderr, "%s%s%s\n", p2praft_strerror(status),
                errmsg != NULL ? ": " : "", errmsg != NULL ? errmsg : "");
        if (++ex->failures >= 20) {
            ex->commit_error = true;
            return;
        }
        ex_commit_next(ex);
        return;
    }
    ex->n_updates++;
    if (ex->n_updates % 200 == 0) {
        printf("Performed %d updates. Current state value: %lld\n",
               ex->n_updates, (long long)((struct ex_state *)state)->Value);
    }
    p2praft_value_destroy(&ex_state_type, state);
    if (ex->n_updates < EX_UPDATES) {
        ex_commit_next(ex);
    }
}

static void ex_commit_next(struct ex *ex)
{
    struct ex_state st;
    int rv;
    st.Value = (int64_t)ex->n_updates * 2;
    /* CommitState blocks in the seed: here the next one starts from the
     * previous one's completion. */
    rv = p2praft_consensus_commit_state(ex->nodes[ex->leader].c, &st,
                                        ex_committed, ex);
    if (rv != 0) {
        fprintf(stderr, "commit: %s\n", p2praft_strerror(rv));
        ex->commit_error = true;
    }
}

static bool ex_updates_done(struct ex *ex)
{
    return ex->n_updates >= EX_UPDATES || ex->commit_error;
}

static bool ex_all_applied(struct ex *ex)
{
    unsigned i;
    for (i = 0; i < EX_NODES; i++) {
        if (raft_last_applied(&ex->nodes[i].raft) < ex->target) {
            return false;
        }
    }
    return true;
}

/* ---- tear-down ---- */

static void ex_raft_closed(struct raft *r)
{
    struct ex_node *nd = r->data;
    p2praft_io_close(&nd->io);
    nd->io_ready = false;
    nd->raft_closed = true;
}

static bool ex_rafts_closed(struct ex *ex)
{
    unsigned i;
    for (i = 0; i < EX_NODES; i++) {
        if (ex->nodes[i].raft_ready && !ex->nodes[i].raft_closed) {
            return false;
        }
    }
    return true;
}

static void ex_host_closed(struct lp2p_host *h, void *data)
{
    (void)h;
    ((struct ex_node *)data)->host_closed = true;
}

static bool ex_hosts_closed(struct ex *ex)
{
    unsigned i;
    for (i = 0; i < EX_NODES; i++) {
        if (!ex->nodes[i].host_closed) {
            return false;
        }
    }
    return true;
}

static void ex_close_rafts(struct ex *ex)
{
    unsigned i;
    for (i = 0; i < EX_NODES; i++) {
        struct ex_node *nd = &ex->nodes[i];
        if (nd->raft_ready && !nd->raft_closed) {
            nd->raft.data = nd;
            raft_close(&nd->raft, ex_raft_closed);
        }
    }
    ex_run_until(ex, ex_rafts_closed, EX_WAIT_MS);
}

static void ex_rm_rf(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[1024];
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            if (unlink(sub) != 0) {
                ex_rm_rf(sub);
            }
        }
        closedir(d);
    }
    rmdir(path);
}

static void ex_teardown(struct ex *ex)
{
    unsigned i;
    ex_close_rafts(ex);
    for (i = 0; i < EX_NODES; i++) {
        struct ex_node *nd = &ex->nodes[i];
        if (nd->c != NULL) {
            p2praft_consensus_free(nd->c);
        }
        p2praft_actor_free(nd->actor);
        if (nd->io_ready) {
            p2praft_io_close(&nd->io); /* raft never started on it */
        }
        if (nd->host != NULL) {
            lp2p_host_close(nd->host, ex_host_closed, nd);
        } else {
            nd->host_closed = true;
        }
        lp2p_key_wipe(&nd->key);
    }
    ex_run_until(ex, ex_hosts_closed, EX_WAIT_MS);
    uv_run(&ex->loop, UV_RUN_DEFAULT);
    uv_loop_close(&ex->loop);
    if (ex->temp_base) {
        ex_rm_rf(ex->base);
    }
}

/* The usage text: on stdout with status 0 when asked for (--help), on
 * stderr with status 2 after a bad argument. */
static int ex_usage(bool asked)
{
    fprintf(asked ? stdout : stderr,
            "usage: p2praft demo [--store mem|disk] [--data-dir DIR] "
            "[--verbose]\n"
            "   or: build/examples/consensus [--store mem|disk] "
            "[--data-dir DIR] [--verbose]\n");
    return asked ? 0 : 2;
}

/* The whole example; returns the exit status. */
static int consensus_example(int argc, char **argv)
{
    static struct ex ex; /* large: raft structs */
    const char *data_dir = NULL, *store = NULL;
    double t0, t_leader, t_commits, t_applied;
    unsigned i, j;
    int rv, status = 1;

    memset(&ex, 0, sizeof(ex));
    for (i = 1; i < (unsigned)argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < (unsigned)argc) {
            data_dir = argv[++i];
        } else if (strcmp(argv[i], "--store") == 0 &&
                   i + 1 < (unsigned)argc) {
            store = argv[++i];
            if (strcmp(store, "mem") != 0 && strcmp(store, "disk") != 0) {
                return ex_usage(false);
            }
        } else if (strcmp(argv[i], "--verbose") == 0 ||
                   strcmp(argv[i], "-v") == 0) {
            ex.verbose = true;
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            return ex_usage(true);
        } else {
            return ex_usage(false);
        }
    }
    ex.disk = store != NULL ? strcmp(store, "disk") == 0 : data_dir != NULL;
    if (!ex.disk) {
        snprintf(ex.base, sizeof(ex.base), "(memory)");
    } else if (data_dir != NULL) {
        snprintf(ex.base, sizeof(ex.base), "%s", data_dir);
        if (mkdir(ex.base, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "consensus: mkdir %s: %s\n", ex.base,
                    strerror(errno));
            return 1;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(ex.base, sizeof(ex.base), "%s/p2praft-demo-XXXXXX",
                 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
        if (mkdtemp(ex.base) == NULL) {
            fprintf(stderr, "consensus: mkdtemp: %s\n", strerror(errno));
            return 1;
        }
        ex.temp_base = true;
    }
    for (i = 0; i < EX_NODES; i++) {
        ex.nodes[i].host_closed = true;
    }
    if (uv_loop_init(&ex.loop) != 0) {
        fprintf(stderr, "consensus: uv_loop_init failed\n");
        if (ex.temp_base) {
            ex_rm_rf(ex.base);
        }
        return 1;
    }

    /* Peers, and each one knows the others' addresses. */
    for (i = 0; i < EX_NODES; i++) {
        if ((rv = ex_setup_node(&ex, i)) != 0) {
            fprintf(stderr, "consensus: node %u: %s\n", i + 1,
                    p2praft_strerror(rv));
            goto out;
        }
    }
    for (i = 0; i < EX_NODES; i++) {
        for (j = 0; j < EX_NODES; j++) {
            if (i != j &&
                (rv = lp2p_peerstore_add_addr(ex.nodes[i].host,
                                              &ex.nodes[j].pid,
                                              ex.nodes[j].addr,
                                              LP2P_TTL_PERMANENT)) != 0) {
                fprintf(stderr, "consensus: peerstore: %s\n",
                        p2praft_strerror(rv));
                goto out;
            }
        }
    }
    t0 = ex_now_ms();
    for (i = 0; i < EX_NODES; i++) {
        if ((rv = ex_start_raft(&ex, i)) != 0) {
            fprintf(stderr, "consensus: raft %u: %s\n", i + 1,
                    p2praft_strerror(rv));
            goto out;
        }
    }

    /* Wait for a leader that every node agrees on. */
    if (!ex_run_until(&ex, ex_has_leader, EX_WAIT_MS)) {
        fprintf(stderr, "consensus: no leader within %d ms\n", EX_WAIT_MS);
        goto out;
    }
    t_leader = ex_now_ms();

    /* The leader commits 1000 updates. */
    ex_commit_next(&ex);
    if (!ex_run_until(&ex, ex_updates_done, EX_WAIT_MS * 3) ||
        ex.commit_error) {
        fprintf(stderr, "consensus: %d of %d updates committed\n",
                ex.n_updates, EX_UPDATES);
        goto out;
    }
    t_commits = ex_now_ms();
    fflush(stdout);

    /* Wait until every node applied the leader's last index. */
    ex.target = raft_last_applied(&ex.nodes[ex.leader].raft);
    if (!ex_run_until(&ex, ex_all_applied, EX_WAIT_MS)) {
        fprintf(stderr, "consensus: followers did not catch up\n");
        goto out;
    }
    t_applied = ex_now_ms();

    /* Shut raft down, then read the final states. */
    ex_close_rafts(&ex);
    for (i = 0; i < EX_NODES; i++) {
        void *st;
        rv = p2praft_consensus_get_current_state(ex.nodes[i].c, &st);
        if (rv != 0) {
            fprintf(stderr, "consensus: raft %u: %s\n", i + 1,
                    p2praft_strerror(rv));
            goto out;
        }
        printf("Raft%u final state: %lld\n", i + 1,
               (long long)((struct ex_state *)st)->Value);
        p2praft_value_destroy(&ex_state_type, st);
    }
    fflush(stdout);
    if (ex.verbose) {
        fprintf(stderr,
                "leader elected in %.1f ms (raft%d); %d updates in %.1f ms "
                "(%.0f/s, %.3f ms each); all applied %.1f ms later\n",
                t_leader - t0, ex.leader + 1, EX_UPDATES, t_commits - t_leader,
                EX_UPDATES * 1000.0 / (t_commits - t_leader),
                (t_commits - t_leader) / EX_UPDATES, t_applied - t_commits);
    }
    status = 0;
out:
    ex_teardown(&ex);
    return status;
}

#ifndef P2PRAFT_EXAMPLE_NO_MAIN
int main(int argc, char **argv)
{
    /* No SIGPIPE handling: raft's messages go through lp2p, which sends
     * with MSG_NOSIGNAL, and raft_uv (--store disk) only writes files. */
    return consensus_example(argc, argv);
}
#endif
