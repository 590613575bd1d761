/*
 * p2praft_node: one member of the replicated key-value store. This file
 * holds its lifecycle, its loop thread and p2praft_node_call(); the typed
 * blocking API built on that call (get, set, ..., membership) is
 * node_api.c.
 *
 * Everything runs on the node's loop thread: the libp2p host, p2praft's
 * raft I/O over it (raft_uv storage, or memory), libraft, the OpLog, the request
 * state machine (req.c), the unix socket API (api_server.c) and the forward
 * protocol (forward.c). Other threads talk to it through
 * p2praft_node_call(), which crosses over on a loop-call bridge
 * (util/bridge.h) and waits: the blocked caller owns its request like a
 * connection does.
 *
 * Start: p2praft_node_start() spawns the thread, which runs setup() (one
 * step function per resource, in order) and reports back. A failed step
 * leaves n->errmsg saying why; shutdown_node() then closes whatever the
 * steps opened, as it does on a normal stop. The first step locks and
 * checks the data directory (datadir.c); the lock goes last, in
 * node_free(), once nothing can touch the directory any more.
 *
 * Running: the loop timer drives request deadlines and retries, idle API
 * connections, the catch-up barrier (req.c) and the health log (health.c);
 * the loop check, after each turn's I/O, answers applied-index waits,
 * logs leader changes and re-routes forwards when a newer leader shows up.
 *
 * Stop: p2praft_node_stop() shuts the bridge (new calls fail with
 * P2PRAFT_ESHUTDOWN) which wakes the loop: shutdown_node() answers the
 * pending requests "shutting down", closes the API socket and the forward
 * protocol, then raft; once raft is closed (after_raft) the raft I/O, the
 * consensus and the host; once the host is closed, the
 * loop's own handles. The loop then runs dry and the thread exits.
 */
#include <inttypes.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "raft/api.h"
#include "raft/consensus.h"
#include "raft/io.h"
#include "raft/kv.h"
#include "raft/node.h"
#include "raft/req.h"
#include "raft/watch.h"
#include "util/heap.h"
#include "util/log.h"
#include "util/sockpath.h"
#include "util/thread.h"

#define MODULE "node"
#define TICK_MS 20

/* ---- blocking calls from other threads ---------------------------------- */

/* One p2praft_node_call(), on the caller's stack. */
struct node_call {
    struct lp2p__loopcall lc;
    const uint8_t *body; /* the request body (borrowed) */
    size_t len;
    uint8_t *resp; /* the response body (owned, lp2p heap) */
    size_t resp_len;
};

/* The req owner interface for a blocked thread: hand it the body. */
static void call_reply(void *owner, struct p2praft__req *r, uint8_t *frame,
                       size_t len)
{
    struct node_call *call = owner;
    (void)r;
    if (frame == NULL) {
        lp2p__loopcall_done(&call->lc, LP2P_ENOMEM);
        return;
    }
    memmove(frame, frame + P2PRAFT__API_PREFIX, len - P2PRAFT__API_PREFIX);
    call->resp = frame;
    call->resp_len = len - P2PRAFT__API_PREFIX;
    lp2p__loopcall_done(&call->lc, 0);
}

static const struct p2praft__req_owner_ops call_owner = {call_reply};

static void call_run(struct lp2p__bridge *b, struct lp2p__loopcall *lc)
{
    struct p2praft_node *n = LP2P__CONTAINER_OF(b, struct p2praft_node, calls);
    struct node_call *call = LP2P__CONTAINER_OF(lc, struct node_call, lc);
    struct p2praft__req *r;
    char err[256];
    if (n->stopping) {
        lp2p__loopcall_done(lc, LP2P_ESHUTDOWN);
        return;
    }
    r = p2praft__req_new(n, &call_owner, call);
    if (r == NULL) {
        lp2p__loopcall_done(lc, LP2P_ENOMEM);
        return;
    }
    if (p2praft__api_request_parse(&r->q, call->body, call->len, err,
                                   sizeof(err)) != 0 ||
        r->q.op == P2PRAFT_API_BARRIER || r->q.op == P2PRAFT_API_REMOVED) {
        if (r->q.op == P2PRAFT_API_BARRIER || r->q.op == P2PRAFT_API_REMOVED) {
            snprintf(err, sizeof(err), "%s is for the forward protocol",
                     r->q.op == P2PRAFT_API_BARRIER ? "BARRIER" : "REMOVED");
        }
        p2praft__req_reply(r, P2PRAFT_API_BADREQ, err, strlen(err));
        return;
    }
    p2praft__req_step(r);
}

static void shutdown_node(struct p2praft_node *n);

/* p2praft_node_stop() shut the bridge. */
static void call_shut(struct lp2p__bridge *b)
{
    struct p2praft_node *n = LP2P__CONTAINER_OF(b, struct p2praft_node, calls);
    if (!n->stopping) {
        shutdown_node(n);
    }
}

/* ---- loop handles -------------------------------------------------------- */

/* Timeouts and retries, idle connections, catching up, the health log. */
static void tick_cb(uv_timer_t *t)
{
    struct p2praft_node *n = t->data;
    uint64_t now = uv_now(&n->loop);
    p2praft__reqs_tick(n, now);
    p2praft__api_server_tick(n, now);
    p2praft__reqs_catch_up(n);
    p2praft__clientproto_tick(n, now);
    p2praft__forward_tick(n, now);
    p2praft__health_tick(n, now);
    p2praft__members_tick(n, now);
    p2praft__backup_pages_tick(n, now);
}

/* Snapshots cost the whole store: space them by its size (kv.h). */
static void snapshot_policy(struct p2praft_node *n)
{
    const struct p2praft__kv_state *st = NULL;
    if (p2praft__consensus_state(n->c, (const void **)&st) != 0) {
        st = NULL;
    }
    raft_set_snapshot_threshold(
        &n->raft, p2praft__kv_snapshot_threshold(st, n->cfg.snapshot_threshold));
}

/* After each loop turn's I/O: applied-index waits; a new leader or term is
 * logged, and the forwards waiting on an older leader move to it; the
 * snapshot threshold follows the store's size. */
static void check_cb(uv_check_t *h)
{
    struct p2praft_node *n = h->data;
    if (n->raft_started && !n->stopping) {
        if (p2praft__health_check(n)) {
            n->metrics.leader_changes++;
            p2praft__forward_reroute(n);
        }
        p2praft__metrics_state(&n->metrics, raft_state(&n->raft),
                               raft_current_term(&n->raft));
        p2praft__reqs_check_applied(n);
        p2praft__members_check(n);
        snapshot_policy(n);
    }
}

/* ---- stop ---------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void host_closed(struct lp2p_host *h, void *data)
{
    struct p2praft_node *n = data;
    (void)h;
    n->host = NULL;
    if (n->handles_ok) {
        lp2p__bridge_close(&n->calls, NULL);
        uv_close((uv_handle_t *)&n->tick, handle_closed);
        uv_close((uv_handle_t *)&n->check, handle_closed);
        n->handles_ok = false;
    }
}

/* Second half of the shutdown: raft is closed. */
static void after_raft(struct p2praft_node *n)
{
    if (n->io_ok) {
        p2praft_io_close(&n->io);
        n->io_ok = false;
    }
    if (n->c != NULL) {
        p2praft_consensus_free(n->c);
        n->c = NULL;
    }
    p2praft_actor_free(n->actor);
    n->actor = NULL;
    p2praft__forward_drop_served(n);
    if (n->host != NULL) {
        lp2p_host_close(n->host, host_closed, n);
    } else {
        host_closed(NULL, n);
    }
}

static void raft_closed(struct raft *r)
{
    after_raft(r->data);
}

static void shutdown_node(struct p2praft_node *n)
{
    n->stopping = true;
    p2praft__reqs_shutdown(n);
    p2praft__watches_shutdown(n);
    p2praft__api_server_close(n);
    p2praft__clientproto_close(n);
    p2praft__forward_unserve(n);
    if (n->raft_ok) {
        n->raft_ok = false;
        n->raft.data = n;
        raft_close(&n->raft, raft_closed);
    } else {
        after_raft(n);
    }
}

/* ---- start --------------------------------------------------------------- */

/* Record why start-up failed (n->errmsg) and return rv. */
static int fail(struct p2praft_node *n, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct p2praft_node *n, int rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->errmsg, sizeof(n->errmsg), fmt, ap);
    va_end(ap);
    return rv;
}

/*
 * The steps of setup(). Each opens one thing and records it (a `*_ok`
 * flag, a non-NULL pointer) for shutdown_node(), which undoes the steps
 * that ran, asynchronously (raft_close), whether setup() failed or the
 * node stops later. A step returns 0, or an error with n->errmsg set.
 */

/* The loop's own handles: the bridge for other threads, the tick timer,
 * the applied-index check. */
static int setup_handles(struct p2praft_node *n)
{
    if (lp2p__bridge_init(&n->calls, &n->loop, call_run, call_shut) != 0) {
        return fail(n, LP2P_EIO, "uv_async_init failed");
    }
    uv_timer_init(&n->loop, &n->tick);
    uv_check_init(&n->loop, &n->check);
    n->tick.data = n->check.data = n;
    n->handles_ok = true;
    return 0;
}

/* The data directory, before anything else touches it (datadir.h):
 * locked for this node, and refused when it is damaged, in use, another
 * peer's, or not in the state --bootstrap expects. */
static int setup_datadir(struct p2praft_node *n)
{
    struct p2praft__datadir_opts o;
    struct p2praft__disk_report r;
    struct lp2p_peer_id pid;
    char self[LP2P_PEER_ID_STRMAX];
    uint64_t t0 = uv_hrtime();
    int rv = lp2p_peer_id_from_key(&n->key, &pid);
    if (rv == 0) {
        rv = lp2p_peer_id_to_string(&pid, self, sizeof(self));
    }
    if (rv != 0) {
        return fail(n, rv, "unusable key: %s", lp2p_strerror(rv));
    }
    o.dir = n->data_dir;
    o.self = self;
    o.bootstrap = n->cfg.bootstrap;
    o.join = n->cfg.join;
    o.mem = n->cfg.store == P2PRAFT_STORE_MEM;
    rv = p2praft__datadir_open(&n->dd, &o, &r, n->errmsg, sizeof(n->errmsg));
    if (rv != 0) {
        return rv;
    }
    LOG_INFO(MODULE,
             "%s checked in %llu ms: term %llu, %llu entries up to index "
             "%llu, %u segments, %u snapshots, %llu KiB read",
             n->data_dir, (unsigned long long)((uv_hrtime() - t0) / 1000000),
             (unsigned long long)r.term, (unsigned long long)r.entries,
             (unsigned long long)r.last_index, r.segments, r.snapshots,
             (unsigned long long)(r.bytes / 1024));
    return 0;
}

/* The API socket's path, checked before raft writes anything, so that a
 * bad --api fails a first start before it bootstraps (the server binds
 * it last, in setup_api_server()). Only a stale socket is removed. */
static int setup_api_path(struct p2praft_node *n)
{
    if (n->api_path[0] != '\0') {
        int rv = lp2p__sockpath_prepare(n->api_path, n->errmsg,
                                        sizeof(n->errmsg));
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* The libp2p host, listening. */
static int setup_host(struct p2praft_node *n)
{
    struct lp2p_host_config hc;
    size_t i;
    int rv;
    lp2p_host_config_init(&hc);
    hc.key = &n->key;
    hc.idle_timeout_ms = UINT64_MAX; /* raft keeps its own connections */
    hc.busy_poll_us = n->cfg.busy_poll_us;
    rv = lp2p_host_new(&n->host, &n->loop, &hc);
    if (rv != 0) {
        return fail(n, rv, "cannot create the host: %s", lp2p_strerror(rv));
    }
    lp2p_peer_id_to_string(lp2p_host_id(n->host), n->self, sizeof(n->self));
    n->self_id = p2praft_server_id(lp2p_host_id(n->host));
    for (i = 0; i < n->cfg.n_listen; i++) {
        rv = lp2p_host_listen(n->host, n->listen[i]);
        if (rv != 0) {
            return fail(n, rv, "cannot listen on %s: %s", n->listen[i],
                        lp2p_strerror(rv));
        }
    }
    return 0;
}

/* The members (self first, then each --peer) into *out (owned by the
 * caller, lp2p heap), their addresses into the peerstore. */
static int setup_members(struct p2praft_node *n, struct lp2p_peer_id **out,
                         size_t *n_out)
{
    struct lp2p_peer_id *members;
    size_t i, n_members = 0;
    int rv;
    members = lp2p__calloc(n->cfg.n_peers + 1, sizeof(*members));
    if (members == NULL) {
        return fail(n, LP2P_ENOMEM, "out of memory");
    }
    members[n_members++] = *lp2p_host_id(n->host);
    for (i = 0; i < n->cfg.n_peers; i++) {
        struct lp2p_multiaddr ma;
        char err[LP2P_ERRMSG_MAX] = "";
        lp2p_multiaddr_init(&ma);
        rv = lp2p_multiaddr_parse(&ma, n->peers[i], err, sizeof(err));
        if (rv == 0) {
            rv = lp2p_multiaddr_peer_id(&ma, &members[n_members]);
            if (rv != 0) {
                snprintf(err, sizeof(err), "it does not end in /p2p/<id>");
            }
        }
        lp2p_multiaddr_free(&ma);
        if (rv == 0) {
            rv = lp2p_peerstore_add_addr(n->host, &members[n_members],
                                         n->peers[i], LP2P_TTL_PERMANENT);
            if (rv != 0) {
                snprintf(err, sizeof(err), "%s", lp2p_strerror(rv));
            }
        }
        if (rv != 0) {
            lp2p__free(members);
            return fail(n, LP2P_EINVAL, "bad peer address %s: %s",
                        n->peers[i], err);
        }
        if (lp2p_peer_id_equal(&members[n_members], &members[0])) {
            lp2p__free(members);
            return fail(n, LP2P_EINVAL,
                        "--peer %s names this node itself (its key's peer "
                        "ID is %s): list the other members only",
                        n->peers[i], n->self);
        }
        /* Members always get a connection slot, and their connections
         * are not closed as a stranger's would be (idle, no protocol):
         * the raft I/O protects them (p2praft_io_set_members(), then the
         * configuration as it changes). */
        n_members++;
    }
    rv = p2praft__health_init(n, members + 1, n_members - 1);
    if (rv != 0) {
        lp2p__free(members);
        return fail(n, rv, "out of memory");
    }
    *out = members;
    *n_out = n_members;
    return 0;
}

/* The data directory, and the raft I/O over the host: members admitted,
 * raft's state in raft_uv in the directory (or in memory). */
static int setup_io(struct p2praft_node *n, const struct lp2p_peer_id *members,
                    size_t n_members)
{
    struct p2praft_io_config cfg;
    int rv;
    if (mkdir(n->data_dir, 0700) != 0 && errno != EEXIST) {
        return fail(n, LP2P_EIO, "cannot create %s: %s", n->data_dir,
                    strerror(errno));
    }
    p2praft_io_config_init(&cfg);
    cfg.store = n->cfg.store;
    cfg.dir = n->data_dir;
    cfg.wire = n->cfg.wire;
    rv = p2praft_io_init(&n->io, n->host, &cfg);
    if (rv != 0) {
        return fail(n, rv, "cannot open the raft storage in %s: %s",
                    n->data_dir, n->io.errmsg);
    }
    n->io_ok = true;
    p2praft__io_set_observer(&n->io, p2praft__node_observe, n);
    rv = p2praft_io_set_members(&n->io, members, n_members);
    if (rv != 0) {
        return fail(n, rv, "out of memory");
    }
    return 0;
}

/* The OpLog of the key-value store and the actor that commits to it. */
static int setup_consensus(struct p2praft_node *n)
{
    int rv = p2praft_oplog_new(&n->c, &n->loop, &p2praft__kv_state_type,
                               &p2praft__kv_op_ops, NULL);
    if (rv == 0) {
        rv = p2praft_actor_new(&n->actor, &n->raft);
    }
    if (rv != 0) {
        return fail(n, rv, "out of memory");
    }
    p2praft_consensus_set_timeout(n->c, n->cfg.timeout_ms);
    if (n->cfg.wire == P2PRAFT_WIRE_HASHICORP) {
        p2praft_consensus_set_seed_format(n->c, true);
    }
    if (p2praft__watches_init(n) != 0) {
        return fail(n, LP2P_ENOMEM, "out of memory");
    }
    return 0;
}

/* libraft over the storage and the OpLog's FSM, with the node's timing. */
static int setup_raft(struct p2praft_node *n)
{
    int rv = raft_init(&n->raft, &n->io, p2praft_consensus_fsm(n->c),
                       n->self_id, n->self);
    if (rv != 0) {
        return fail(n, LP2P_ERAFT, "raft_init: %s", raft_strerror(rv));
    }
    n->raft_ok = true;
    p2praft_raft_trace(&n->raft);
    raft_set_election_timeout(&n->raft, n->cfg.election_ms);
    raft_set_heartbeat_timeout(&n->raft, n->cfg.heartbeat_ms);
    raft_set_snapshot_threshold(&n->raft, n->cfg.snapshot_threshold);
    raft_set_snapshot_trailing(&n->raft, n->cfg.snapshot_trailing);
    raft_set_pre_vote(&n->raft, n->cfg.wire != P2PRAFT_WIRE_HASHICORP);
    return 0;
}

static int add_server(struct raft_configuration *conf,
                      const struct lp2p_peer_id *pid)
{
    char s[LP2P_PEER_ID_STRMAX];
    raft_id id = p2praft_server_id(pid);
    unsigned i;
    lp2p_peer_id_to_string(pid, s, sizeof(s));
    for (i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return 0; /* listed twice */
        }
    }
    return raft_configuration_add(conf, id, s, RAFT_VOTER);
}

/* With --bootstrap: the configuration of all members, unless the storage
 * already holds raft state (which wins). */
static int setup_bootstrap(struct p2praft_node *n,
                           const struct lp2p_peer_id *members, size_t n_members)
{
    struct raft_configuration conf;
    size_t i;
    int rv = 0;
    if (!n->cfg.bootstrap) {
        return 0;
    }
    raft_configuration_init(&conf);
    for (i = 0; rv == 0 && i < n_members; i++) {
        rv = add_server(&conf, &members[i]);
    }
    if (rv == 0) {
        rv = raft_bootstrap(&n->raft, &conf);
    }
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP) {
        LOG_INFO(MODULE, "%s holds raft state: not bootstrapping",
                 n->data_dir);
    } else if (rv != 0) {
        return fail(n, LP2P_ERAFT, "bootstrap: %s", raft_errmsg(&n->raft));
    }
    return 0;
}

/* Start raft; the node must be in a configuration. */
static int setup_start_raft(struct p2praft_node *n)
{
    if (raft_start(&n->raft) != 0) {
        return fail(n, LP2P_ERAFT, "raft_start: %s", raft_errmsg(&n->raft));
    }
    n->raft_started = true;
    if (n->raft.configuration.n == 0 && !n->cfg.join) {
        return fail(n, LP2P_EINVAL,
                    "%s holds no raft state: bootstrap the cluster on first "
                    "start (--bootstrap), or join a running one (--join, "
                    "after p2praft peers add on a member)",
                    n->data_dir);
    }
    if (n->raft.configuration.n > 0 && n->cfg.join) {
        /* Not silent: the --join peers given may be another cluster's. */
        LOG_WARN(MODULE,
                 "--join ignored: %s holds raft state (a configuration of "
                 "%u servers, last index %" PRIu64 "): this node goes on as "
                 "the member it was; to join another cluster, start on an "
                 "empty directory",
                 n->data_dir, n->raft.configuration.n,
                 (uint64_t)raft_last_index(&n->raft));
        n->cfg.join = false;
    }
    if (n->raft.configuration.n == 0) {
        LOG_WARN(MODULE,
                 "joining: waiting for the leader to send the cluster's "
                 "state (a member must have run p2praft peers add for this "
                 "node, %s)",
                 n->self);
    }
    n->restored_at_boot = p2praft_consensus_restored(n->c);
    p2praft_consensus_set_actor(n->c, n->actor);
    return 0;
}

/* The configuration raft loaded must list this node. A directory made
 * before owners were recorded gets its owner only now, so that a wrong key
 * cannot claim it (and lock the right one out). */
static int setup_owner(struct p2praft_node *n)
{
    unsigned i;
    if (n->raft.configuration.n == 0) {
        return 0; /* joining: the directory was empty, its owner recorded */
    }
    for (i = 0; i < n->raft.configuration.n; i++) {
        if (n->raft.configuration.servers[i].id == n->self_id) {
            break;
        }
    }
    if (i == n->raft.configuration.n) {
        return fail(n, LP2P_EINVAL,
                    "%s holds a cluster of which this key (peer %s) is not "
                    "a member: start it with the key that created it",
                    n->data_dir, n->self);
    }
    return p2praft__datadir_record_owner(&n->dd, n->data_dir, n->self,
                                        n->errmsg, sizeof(n->errmsg));
}

/* Serve the forward protocol to the members. */
static int setup_forward(struct p2praft_node *n)
{
    int rv = p2praft__forward_serve(n);
    if (rv != 0) {
        return fail(n, rv, "cannot serve %s: %s", P2PRAFT_FORWARD_PROTOCOL,
                    lp2p_strerror(rv));
    }
    return 0;
}

/* The remote clients' list, read before anything is opened so that a bad
 * entry stops the start at once. */
static int setup_client_list(struct p2praft_node *n)
{
    char err[sizeof(n->errmsg)];
    int rv = p2praft__clientproto_load(n, err, sizeof(err));
    if (rv != 0) {
        return fail(n, rv, "%s", err);
    }
    return 0;
}

/* Serve the client protocol to the listed clients. */
static int setup_clients(struct p2praft_node *n)
{
    int rv = p2praft__clientproto_serve(n);
    if (rv != 0) {
        return fail(n, rv, "cannot serve %s: %s", P2PRAFT_CLIENT_PROTOCOL,
                    lp2p_strerror(rv));
    }
    return 0;
}

/* The unix-socket API. */
static int setup_api_server(struct p2praft_node *n)
{
    char err[sizeof(n->errmsg)];
    int rv = p2praft__api_server_start(n, err, sizeof(err));
    if (rv != 0) {
        return fail(n, rv, "%s", err);
    }
    return 0;
}

static int setup(struct p2praft_node *n)
{
    struct lp2p_peer_id *members = NULL;
    size_t n_members = 0;
    int rv;

    rv = setup_handles(n);
    if (rv != 0) {
        return rv;
    }
    rv = setup_datadir(n);
    if (rv != 0) {
        return rv;
    }
    rv = setup_api_path(n);
    if (rv != 0) {
        return rv;
    }
    rv = setup_client_list(n);
    if (rv != 0) {
        return rv;
    }
    rv = setup_host(n);
    if (rv != 0) {
        return rv;
    }
    rv = setup_members(n, &members, &n_members);
    if (rv != 0) {
        return rv;
    }
    rv = setup_io(n, members, n_members);
    if (rv != 0) {
        goto err_free_members;
    }
    rv = setup_consensus(n);
    if (rv != 0) {
        goto err_free_members;
    }
    rv = setup_raft(n);
    if (rv != 0) {
        goto err_free_members;
    }
    rv = setup_bootstrap(n, members, n_members);
    if (rv != 0) {
        goto err_free_members;
    }
    lp2p__free(members);
    rv = setup_start_raft(n);
    if (rv != 0) {
        return rv;
    }
    rv = setup_owner(n);
    if (rv != 0) {
        return rv;
    }
    rv = setup_forward(n);
    if (rv != 0) {
        return rv;
    }
    rv = setup_clients(n);
    if (rv != 0) {
        return rv;
    }
    rv = setup_api_server(n);
    if (rv != 0) {
        return rv;
    }
    uv_timer_start(&n->tick, tick_cb, TICK_MS, TICK_MS);
    uv_check_start(&n->check, check_cb);
    return 0;

err_free_members:
    lp2p__free(members);
    return rv;
}

static void *thread_main(void *arg)
{
    struct p2praft_node *n = arg;
    int rv = setup(n);
    pthread_mutex_lock(&n->mu);
    n->start_rv = rv;
    n->started = true;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    lp2p_key_wipe(&n->key);
    if (rv != 0) {
        shutdown_node(n);
    }
    uv_run(&n->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- lifecycle ----------------------------------------------------------- */

void p2praft_node_config_init(struct p2praft_node_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->election_ms = 150;
    cfg->heartbeat_ms = 10;
    cfg->snapshot_threshold = 1024;
    cfg->snapshot_trailing = 128;
    cfg->timeout_ms = 5000;
    cfg->api_max_conns = 64;
    cfg->api_idle_ms = 30000;
    cfg->store = P2PRAFT_STORE_DISK;
    cfg->api_max_inflight = 128;
    cfg->api_max_requests = 4096;
}

static char **dup_list(const char *const *v, size_t n)
{
    char **out = lp2p__calloc(n + 1, sizeof(char *));
    size_t i;
    if (out == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        out[i] = lp2p__strdup(v[i]);
        if (out[i] == NULL) {
            return out; /* caught by the caller's check */
        }
    }
    return out;
}

static void free_list(char **v, size_t n)
{
    size_t i;
    if (v != NULL) {
        for (i = 0; i < n; i++) {
            lp2p__free(v[i]);
        }
        lp2p__free(v);
    }
}

static void node_free(struct p2praft_node *n)
{
    p2praft__reqs_free_all(n);
    p2praft__forward_free_all(n);
    p2praft__health_free(n);
    p2praft__contacts_free(&n->contacts);
    p2praft__backup_pages_free(n);
    p2praft__clientproto_free(&n->clients);
    free_list(n->listen, n->cfg.n_listen);
    free_list(n->peers, n->cfg.n_peers);
    free_list(n->client_ids, n->cfg.n_clients);
    lp2p__free(n->data_dir);
    lp2p__free(n->api_path);
    lp2p__free(n->clients_file);
    p2praft__datadir_close(&n->dd); /* last: nothing touches it any more */
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    lp2p_key_wipe(&n->key);
    lp2p__free(n);
}

int p2praft_node_start(struct p2praft_node **out,
                       const struct p2praft_node_config *cfg, char *errmsg,
                       size_t errmsg_len)
{
    struct p2praft_node *n;
    size_t i;
    int rv, prv;
    if (errmsg != NULL && errmsg_len > 0) {
        errmsg[0] = '\0';
    }
    if (out == NULL || cfg == NULL || cfg->key == NULL ||
        cfg->data_dir == NULL || cfg->n_listen == 0 ||
        cfg->election_ms == 0 || cfg->heartbeat_ms == 0 ||
        cfg->heartbeat_ms >= cfg->election_ms || cfg->timeout_ms == 0 ||
        cfg->snapshot_threshold == 0 ||
        cfg->busy_poll_us > LP2P_BUSY_POLL_US_MAX) {
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len, "invalid node configuration");
        }
        return LP2P_EINVAL;
    }
    n = lp2p__calloc(1, sizeof(*n));
    if (n == NULL) {
        return LP2P_ENOMEM;
    }
    n->cfg = *cfg;
    if (n->cfg.api_max_conns == 0) {
        n->cfg.api_max_conns = 64;
    }
    if (n->cfg.api_idle_ms == 0) {
        n->cfg.api_idle_ms = 30000;
    }
    if (n->cfg.api_max_inflight == 0) {
        n->cfg.api_max_inflight = 128;
    }
    if (n->cfg.api_max_requests == 0) {
        n->cfg.api_max_requests = 4096;
    }
    n->key = *cfg->key;
    p2praft__datadir_init(&n->dd);
    lp2p__list_init(&n->reqs);
    lp2p__list_init(&n->watches);
    p2praft__api_server_init(&n->api);
    p2praft__clientproto_init(&n->clients);
    p2praft__forward_init(&n->fwd);
    n->listen = dup_list(cfg->listen, cfg->n_listen);
    n->peers = dup_list(cfg->peers, cfg->n_peers);
    n->client_ids = dup_list(cfg->clients, cfg->n_clients);
    n->data_dir = lp2p__strdup(cfg->data_dir);
    if (cfg->clients_file != NULL) {
        n->clients_file = lp2p__strdup(cfg->clients_file);
    }
    if (cfg->api_path != NULL) {
        n->api_path = lp2p__strdup(cfg->api_path);
    } else if (n->data_dir != NULL) {
        size_t len = strlen(n->data_dir) + sizeof("/api.sock");
        n->api_path = lp2p__malloc(len);
        if (n->api_path != NULL) {
            snprintf(n->api_path, len, "%s/api.sock", n->data_dir);
        }
    }
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    rv = n->listen == NULL || n->peers == NULL || n->client_ids == NULL ||
                 n->data_dir == NULL || n->api_path == NULL ||
                 (cfg->clients_file != NULL && n->clients_file == NULL)
             ? LP2P_ENOMEM
             : 0;
    for (i = 0; rv == 0 && i < cfg->n_clients; i++) {
        rv = n->client_ids[i] == NULL ? LP2P_ENOMEM : 0;
    }
    for (i = 0; rv == 0 && i < cfg->n_listen; i++) {
        rv = n->listen[i] == NULL ? LP2P_ENOMEM : 0;
    }
    for (i = 0; rv == 0 && i < cfg->n_peers; i++) {
        rv = n->peers[i] == NULL ? LP2P_ENOMEM : 0;
    }
    if (rv == 0 && uv_loop_init(&n->loop) != 0) {
        rv = LP2P_EIO;
    }
    if (rv != 0) {
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len, "%s", lp2p_strerror(rv));
        }
        node_free(n);
        return rv;
    }
    /* SIGPIPE blocked: a client of the API socket that went away is an
     * error, never a signal. */
    prv = lp2p__thread_create(&n->thread, thread_main, n);
    if (prv != 0) {
        uv_loop_close(&n->loop);
        node_free(n);
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len, "cannot create the node thread");
        }
        return LP2P_EIO;
    }
    pthread_mutex_lock(&n->mu);
    while (!n->started) {
        pthread_cond_wait(&n->cv, &n->mu);
    }
    rv = n->start_rv;
    pthread_mutex_unlock(&n->mu);
    if (rv != 0) {
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len, "%s", n->errmsg);
        }
        pthread_join(n->thread, NULL);
        uv_loop_close(&n->loop);
        node_free(n);
        return rv;
    }
    *out = n;
    return 0;
}

void p2praft_node_stop(struct p2praft_node *n)
{
    if (n == NULL) {
        return;
    }
    lp2p__bridge_shut(&n->calls); /* the loop then runs shutdown_node() */
    pthread_join(n->thread, NULL);
    if (uv_loop_close(&n->loop) != 0) {
        LOG_WARN(MODULE, "loop closed with handles still open");
    }
    node_free(n);
}

void p2praft_node_peer_id(const struct p2praft_node *n, char *out, size_t len)
{
    snprintf(out, len, "%s", n->self);
}

const char *p2praft_node_api_path(const struct p2praft_node *n)
{
    return n->api_path;
}

/* ---- the blocking API ---------------------------------------------------- */

int p2praft_node_call(struct p2praft_node *n, const uint8_t *req, size_t len,
                      uint8_t **resp, size_t *resp_len)
{
    struct node_call call;
    int rv;
    if (n == NULL || req == NULL || resp == NULL || resp_len == NULL ||
        pthread_equal(pthread_self(), n->thread)) {
        return LP2P_EINVAL;
    }
    memset(&call, 0, sizeof(call));
    call.body = req;
    call.len = len;
    rv = lp2p__bridge_call(&n->calls, &call.lc);
    if (rv == 0) {
        *resp = call.resp;
        *resp_len = call.resp_len;
    }
    return rv;
}
