/*
 * What p2praft's raft_io (src/raft/io.c) adds around libraft: the shield
 * against libraft 0.22.1's two snapshot races, each first reproduced
 * deterministically with the shield off (in a child process, since one
 * crashes and the other leaks), then shown harmless with it on; and the
 * fresh cluster's first election started at once.
 *
 * The races are made deterministic with the memory store's hold on
 * snapshot_put (a test hook): a follower's snapshot stays "being stored"
 * for as long as the test wants, and the follower is cut off from the
 * network (another hook) while the leader compacts its log past it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netcluster.h"
#include "p2praft.h"
#include "raft/io.h"
#include "raft/memstore.h"
#include "test.h"

#define WAIT_MS (nc_slow() ? 60000u : 10000u)
#define THRESHOLD 16u
#define TRAILING 4u

static const struct p2praft_field mstate_fields[] = {
    {"Msg", offsetof(struct harness_msg_state, Msg),
     {P2PRAFT_KIND_STRING, 0, 0}}};
static const struct p2praft_type mstate_type = {
    "raftState", sizeof(struct harness_msg_state), mstate_fields, 1,
    NULL, NULL, NULL, NULL};

/* ---- a raft heap that counts live blocks ---- */

static long raft_live;

static void *ch_malloc(void *d, size_t n)
{
    void *p = malloc(n);
    (void)d;
    raft_live += p != NULL;
    return p;
}
static void ch_free(void *d, void *p)
{
    (void)d;
    raft_live -= p != NULL;
    free(p);
}
static void *ch_calloc(void *d, size_t n, size_t m)
{
    void *p = calloc(n, m);
    (void)d;
    raft_live += p != NULL;
    return p;
}
static void *ch_realloc(void *d, void *p, size_t n)
{
    void *q = realloc(p, n);
    (void)d;
    if (p == NULL && q != NULL) {
        raft_live++;
    }
    return q;
}
static void *ch_aligned_alloc(void *d, size_t a, size_t n)
{
    void *p = NULL;
    (void)d;
    if (posix_memalign(&p, a, n) != 0) {
        return NULL;
    }
    raft_live++;
    return p;
}
static void ch_aligned_free(void *d, size_t a, void *p)
{
    (void)d;
    (void)a;
    raft_live -= p != NULL;
    free(p);
}
static struct raft_heap counting_heap = {NULL, ch_malloc, ch_free,
                                         ch_calloc, ch_realloc,
                                         ch_aligned_alloc, ch_aligned_free};

/* ---- pieces of the scenarios (no test.h: they also run in a child) ---- */

struct seq {
    int done, failed, total;
    struct p2praft_consensus *c;
};

static void seq_cb(void *ctx, int status, void *state, const char *errmsg);

static void seq_next(struct seq *q)
{
    struct harness_msg_state st;
    char msg[32];
    snprintf(msg, sizeof(msg), "n=%d", q->done);
    st.Msg = msg;
    if (p2praft_consensus_commit_state(q->c, &st, seq_cb, q) != 0) {
        q->failed++;
    }
}

static void seq_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct seq *q = ctx;
    (void)errmsg;
    p2praft_value_destroy(&mstate_type, state);
    if (status != 0) {
        q->failed++;
        return;
    }
    if (++q->done < q->total) {
        seq_next(q);
    }
}

static bool seq_over(void *ctx)
{
    struct seq *q = ctx;
    return q->failed > 0 || q->done >= q->total;
}

/* Commit `n` states through the leader one after the other (one raft
 * entry each: concurrent commits would share entries); false on failure. */
static bool commit_n(struct nc *nc, int leader, int n)
{
    struct seq q;
    memset(&q, 0, sizeof(q));
    q.c = nc->nodes[leader].c;
    q.total = n;
    seq_next(&q);
    return nc_run_until(nc, seq_over, &q, WAIT_MS * 3) && q.failed == 0 &&
           q.done == n;
}

struct held_ctx {
    struct nc_node *nd;
    unsigned n;
};

static bool puts_held(void *ctx)
{
    struct held_ctx *h = ctx;
    return p2praft__memstore_held_puts(h->nd->mem) >= h->n;
}

struct compact_ctx {
    struct nc_node *leader, *lagger;
};

/* The leader's log starts past everything the lagger has. */
static bool compacted_past(void *ctx)
{
    struct compact_ctx *c = ctx;
    raft_index snap = p2praft__memstore_snapshot_index(c->leader->mem);
    return snap > TRAILING &&
           snap - TRAILING > raft_last_index(&c->lagger->raft) + 1;
}

struct stat_ctx {
    struct nc_node *nd;
    int what; /* 0 held, 1 parked by raft, 2 dropped, 3 two installs */
};

static bool stat_reached(void *ctx)
{
    struct stat_ctx *s = ctx;
    struct p2praft_io_stats st;
    p2praft_io_stats(&s->nd->io, &st);
    switch (s->what) {
    case 0:
        return st.snapshots_held >= 1;
    case 1:
        return s->nd->raft.legacy.snapshot_pending != NULL;
    case 2:
        return st.snapshots_dropped >= 1;
    default:
        return st.installs >= 2;
    }
}

struct caught_ctx {
    struct nc *nc;
    unsigned node;
    int leader;
};

/* The node applied everything the leader applied. */
static bool caught_up(void *ctx)
{
    struct caught_ctx *c = ctx;
    return raft_last_applied(&c->nc->nodes[c->node].raft) >=
           raft_last_applied(&c->nc->nodes[c->leader].raft);
}

static void cluster_config(struct nc *nc)
{
    memset(nc, 0, sizeof(*nc));
    nc->store = P2PRAFT_STORE_MEM;
    nc->snapshot_threshold = THRESHOLD;
    nc->snapshot_trailing = TRAILING;
}

/*
 * Race 1: an InstallSnapshot arrives while the follower stores a snapshot
 * it took. Returns 0 when the follower caught up, or the failed step.
 */
static int take_then_install(bool shield, struct p2praft_io_stats *out)
{
    static struct nc nc;
    struct held_ctx hc;
    struct compact_ctx cc;
    struct stat_ctx sc;
    struct caught_ctx kc;
    int leader, rv = 0;
    unsigned f;
    cluster_config(&nc);
    /* While the follower is cut off the leader sends it a snapshot, which
     * is lost; if the leader then takes a newer one, libraft anchors its
     * heartbeats at the newer index and ignores the follower's rejections
     * as stale, so only its install timeout (30 s by default, longer than
     * any wait here) sends the snapshot again. */
    nc.install_snapshot_ms = WAIT_MS / 10;
    if (nc_init(&nc, 3, &mstate_type, NULL, NULL) != 0) {
        rv = 1;
        goto out;
    }
    leader = nc_wait_leader(&nc, WAIT_MS);
    if (leader < 0) {
        rv = 2;
        goto out;
    }
    f = ((unsigned)leader + 1) % 3;
    p2praft__io_set_shield(&nc.nodes[f].io, shield);
    /* The follower takes a snapshot, which stays "being stored". */
    p2praft__memstore_hold_puts(nc.nodes[f].mem, true);
    hc.nd = &nc.nodes[f];
    hc.n = 1;
    if (!commit_n(&nc, leader, (int)THRESHOLD + 2) ||
        !nc_run_until(&nc, puts_held, &hc, WAIT_MS) ||
        !nc.nodes[f].raft.legacy.snapshot_taking) {
        rv = 3;
        goto out;
    }
    /* Cut off, it misses what the leader then compacts away. */
    p2praft__io_set_drop(&nc.nodes[f].io, true);
    cc.leader = &nc.nodes[leader];
    cc.lagger = &nc.nodes[f];
    if (!commit_n(&nc, leader, (int)THRESHOLD * 4) ||
        !nc_run_until(&nc, compacted_past, &cc, WAIT_MS)) {
        rv = 4;
        goto out;
    }
    /* Back: the leader sends an InstallSnapshot during the take. */
    p2praft__io_set_drop(&nc.nodes[f].io, false);
    sc.nd = &nc.nodes[f];
    sc.what = shield ? 0 : 1;
    if (!nc_run_until(&nc, stat_reached, &sc, WAIT_MS)) {
        rv = 5;
        goto out;
    }
    /* The take completes: libraft 0.22.1's takeSnapshotCb now reads the
     * parked install through a pointer it has just cleared. */
    p2praft__memstore_hold_puts(nc.nodes[f].mem, false);
    kc.nc = &nc;
    kc.node = f;
    kc.leader = leader;
    if (!nc_run_until(&nc, caught_up, &kc, WAIT_MS)) {
        rv = 6;
        goto out;
    }
    if (out != NULL) {
        p2praft_io_stats(&nc.nodes[f].io, out);
    }
out:
    nc_close(&nc);
    return rv;
}

/*
 * Race 2: an InstallSnapshot arrives while the follower installs one.
 * Returns 0 when the follower caught up (*leaked: raft blocks still
 * allocated once everything closed), or the failed step.
 */
static int install_twice(bool shield, struct p2praft_io_stats *out,
                         long *leaked)
{
    static struct nc nc;
    struct compact_ctx cc;
    struct stat_ctx sc;
    struct caught_ctx kc;
    int leader, rv = 0;
    unsigned f;
    raft_live = 0;
    raft_heap_set(&counting_heap);
    cluster_config(&nc);
    /* The leader sends the snapshot again if the install takes longer. */
    nc.install_snapshot_ms = nc_slow() ? 2000 : 100;
    if (nc_init(&nc, 3, &mstate_type, NULL, NULL) != 0) {
        rv = 1;
        goto out;
    }
    leader = nc_wait_leader(&nc, WAIT_MS);
    if (leader < 0) {
        rv = 2;
        goto out;
    }
    f = ((unsigned)leader + 1) % 3;
    p2praft__io_set_shield(&nc.nodes[f].io, shield);
    p2praft__io_set_drop(&nc.nodes[f].io, true);
    cc.leader = &nc.nodes[leader];
    cc.lagger = &nc.nodes[f];
    if (!commit_n(&nc, leader, (int)THRESHOLD * 4) ||
        !nc_run_until(&nc, compacted_past, &cc, WAIT_MS)) {
        rv = 3;
        goto out;
    }
    /* The install will stay "being stored" while the leader resends. */
    p2praft__memstore_hold_puts(nc.nodes[f].mem, true);
    p2praft__io_set_drop(&nc.nodes[f].io, false);
    sc.nd = &nc.nodes[f];
    sc.what = shield ? 2 : 3;
    if (!nc_run_until(&nc, stat_reached, &sc, WAIT_MS)) {
        rv = 4;
        goto out;
    }
    p2praft__memstore_hold_puts(nc.nodes[f].mem, false);
    kc.nc = &nc;
    kc.node = f;
    kc.leader = leader;
    if (!nc_run_until(&nc, caught_up, &kc, WAIT_MS)) {
        rv = 5;
        goto out;
    }
    if (out != NULL) {
        p2praft_io_stats(&nc.nodes[f].io, out);
    }
out:
    nc_close(&nc);
    raft_heap_set_default();
    *leaked = raft_live;
    return rv;
}

/* ---- the unshielded runs, in a child ---- */

#define CHILD_SURVIVED 40
#define CHILD_LEAKED 41

static int child_take(void)
{
    int rv = take_then_install(false, NULL);
    return rv == 0 ? CHILD_SURVIVED : rv;
}

static int child_install(void)
{
    long leaked = 0;
    int rv = install_twice(false, NULL, &leaked);
    if (rv != 0) {
        return rv;
    }
    return leaked > 0 ? CHILD_LEAKED : CHILD_SURVIVED;
}

/* Run fn in a child process (stdout and stderr to /dev/null) and return
 * its wait status. _exit: no atexit handler (LeakSanitizer) runs. */
static int in_child(int (*fn)(void))
{
    pid_t pid;
    int st = 0;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        _exit(fn());
    }
    ASSERT(waitpid(pid, &st, 0) == pid);
    return st;
}

TEST(io, shield_install_during_take)
{
    struct p2praft_io_stats st;
    /* Shielded: the install waits for the take, then goes through. */
    ASSERT_EQ(take_then_install(true, &st), 0);
    ASSERT(st.snapshots_held >= 1);
    ASSERT(st.installs >= 1);
    if (!nc_slow()) {
        /* Reproduced: without the shield the follower dies (SIGSEGV, or
         * a sanitizer's abort) when its own snapshot is stored. */
        int ws = in_child(child_take);
        if (WIFEXITED(ws)) {
            ASSERT(WEXITSTATUS(ws) != CHILD_SURVIVED);
            ASSERT(WEXITSTATUS(ws) > 6); /* a crash, not a failed step */
        } else {
            ASSERT(WIFSIGNALED(ws));
        }
    }
}

TEST(io, shield_duplicate_install)
{
    struct p2praft_io_stats st;
    long leaked = -1;
    /* Shielded: dropped, and nothing leaks. */
    ASSERT_EQ(install_twice(true, &st, &leaked), 0);
    ASSERT(st.snapshots_dropped >= 1);
    ASSERT_EQ(leaked, 0);
    if (!nc_slow()) {
        /* Reproduced: without the shield the duplicate leaks. */
        int ws = in_child(child_install);
        ASSERT(WIFEXITED(ws));
        ASSERT_EQ(WEXITSTATUS(ws), CHILD_LEAKED);
    }
}

/* ---- a fresh cluster elects at once ---- */

static unsigned leader_ms(bool fast, int *leader, uint64_t *fast_starts)
{
    static struct nc nc;
    struct p2praft_io_stats st;
    uint64_t t0;
    unsigned i, ms;
    memset(&nc, 0, sizeof(nc));
    nc.store = P2PRAFT_STORE_MEM;
    nc.no_fast_start = !fast;
    nc.election_ms = nc_slow() ? 4000 : 1000;
    nc.heartbeat_ms = nc_slow() ? 400 : 100;
    ASSERT_OK(nc_prepare(&nc, 3, &mstate_type, NULL, NULL));
    t0 = uv_hrtime();
    for (i = 0; i < 3; i++) {
        ASSERT_OK(nc_start(&nc, i, true));
    }
    *leader = nc_wait_leader(&nc, WAIT_MS);
    ms = (unsigned)((uv_hrtime() - t0) / 1000000);
    ASSERT(*leader >= 0);
    *fast_starts = 0;
    for (i = 0; i < 3; i++) {
        p2praft_io_stats(&nc.nodes[i].io, &st);
        *fast_starts += st.fast_starts;
    }
    /* The voter with the smallest raft ID is the one that starts. */
    for (i = 0; fast && i < 3; i++) {
        ASSERT(nc.nodes[i].id >= nc.nodes[*leader].id);
    }
    nc_close(&nc);
    return ms;
}

TEST(io, fresh_cluster_elects_at_once)
{
    unsigned election = nc_slow() ? 4000 : 1000, fast_ms, slow_ms;
    uint64_t fast_starts;
    int leader;
    fast_ms = leader_ms(true, &leader, &fast_starts);
    ASSERT_EQ_U64(fast_starts, 1);
    /* Not after a (randomized: 1..2x) election timeout: at once. */
    ASSERT(fast_ms < election / 2);
    slow_ms = leader_ms(false, &leader, &fast_starts);
    ASSERT_EQ_U64(fast_starts, 0);
    ASSERT(slow_ms >= election);
    printf("  first leader: %u ms at once, %u ms after a timeout\n", fast_ms,
           slow_ms);
}

/* ---- one stream per pair of peers ---- */

TEST(io, one_stream_per_pair)
{
    static struct nc nc;
    unsigned i, total = 0, w;
    int leader;
    cluster_config(&nc);
    ASSERT_OK(nc_init(&nc, 3, &mstate_type, NULL, NULL));
    leader = nc_wait_leader(&nc, WAIT_MS);
    ASSERT(leader >= 0);
    ASSERT(commit_n(&nc, leader, 10));
    /* The leader opened one stream to each follower; followers answer on
     * it and open none (the fresh start had the leader-to-be dial). */
    for (i = 0; i < 3; i++) {
        unsigned k = p2praft__io_streams(&nc.nodes[i].io, &w);
        ASSERT_EQ(k, (int)i == leader ? 2 : 1);
        ASSERT_EQ(w, k);
        total += k;
    }
    ASSERT_EQ(total, 4);
    nc_close(&nc);
}

/* ---- both peers dial each other at once: one stream survives ---- */

struct dpeer {
    struct lp2p_host *h;
    struct raft_io io;
    struct lp2p_peer_id pid;
    char pidstr[LP2P_PEER_ID_STRMAX];
    char addr[LP2P_MULTIADDR_STRMAX];
    struct raft_io_send req;
    struct raft_message m;
    int received, sent;
};

static int dial_recv_count;

static void dial_recv(struct raft_io *io, struct raft_message *m)
{
    (void)io;
    (void)m;
    dial_recv_count++;
}

static void dial_sent(struct raft_io_send *req, int status)
{
    struct dpeer *d = req->data;
    if (status == 0) {
        d->sent++;
    }
}

static void dial_tick(struct raft_io *io)
{
    (void)io;
}

static void dial_send(struct dpeer *from, struct dpeer *to)
{
    memset(&from->m, 0, sizeof(from->m));
    from->m.type = RAFT_TIMEOUT_NOW;
    from->m.server_id = p2praft_server_id(&to->pid);
    from->m.server_address = to->pidstr;
    from->m.timeout_now.term = 1;
    from->req.data = from;
    ASSERT_OK(from->io.send(&from->io, &from->req, &from->m, dial_sent));
}

struct dial_wait {
    int recv;
    struct dpeer *d;
};

static bool dial_recv_reached(void *ctx)
{
    struct dial_wait *w = ctx;
    return dial_recv_count >= w->recv && w->d[0].sent >= w->recv / 2 &&
           w->d[1].sent >= w->recv / 2;
}

static bool dial_converged(void *ctx)
{
    struct dial_wait *w = ctx;
    unsigned wa, wb;
    return p2praft__io_streams(&w->d[0].io, &wa) == 1 &&
           p2praft__io_streams(&w->d[1].io, &wb) == 1 && wa == 1 && wb == 1;
}

static int dial_closed_n;

static void dial_io_closed(struct raft_io *io)
{
    (void)io;
    dial_closed_n++;
}

static bool dial_both_closed(void *ctx)
{
    (void)ctx;
    return dial_closed_n >= 2;
}

static void dial_host_closed(struct lp2p_host *h, void *data)
{
    (void)h;
    (*(int *)data)++;
}

static bool dial_hosts_closed(void *ctx)
{
    return *(int *)ctx >= 2;
}

TEST(io, simultaneous_dials_converge)
{
    static struct nc nc; /* its loop and helpers */
    struct dpeer d[2];
    struct dial_wait w;
    struct p2praft_io_config cfg;
    int i, hclosed = 0;
    memset(&nc, 0, sizeof(nc));
    memset(d, 0, sizeof(d));
    ASSERT_OK(uv_loop_init(&nc.loop));
    for (i = 0; i < 2; i++) {
        ASSERT_OK(lp2p_host_new(&d[i].h, &nc.loop, NULL));
        ASSERT_OK(lp2p_host_listen(d[i].h, "/ip4/127.0.0.1/tcp/0"));
        ASSERT_OK(lp2p_host_listen_addr(d[i].h, 0, d[i].addr,
                                        sizeof(d[i].addr)));
        d[i].pid = *lp2p_host_id(d[i].h);
        ASSERT_OK(lp2p_peer_id_to_string(&d[i].pid, d[i].pidstr,
                                         sizeof(d[i].pidstr)));
    }
    for (i = 0; i < 2; i++) {
        struct dpeer *o = &d[1 - i];
        ASSERT_OK(lp2p_peerstore_add_addr(d[i].h, &o->pid, o->addr,
                                          LP2P_TTL_PERMANENT));
        p2praft_io_config_init(&cfg);
        ASSERT_OK(p2praft_io_init(&d[i].io, d[i].h, &cfg));
        ASSERT_OK(p2praft_io_set_members(&d[i].io, &o->pid, 1));
        ASSERT_OK(d[i].io.init(&d[i].io, p2praft_server_id(&d[i].pid),
                               d[i].pidstr));
        ASSERT_OK(d[i].io.start(&d[i].io, 1000, dial_tick, dial_recv));
    }
    /* Both send in the same turn: both dial. */
    dial_recv_count = 0;
    dial_send(&d[0], &d[1]);
    dial_send(&d[1], &d[0]);
    w.recv = 2;
    w.d = d;
    ASSERT(nc_run_until(&nc, dial_recv_reached, &w, WAIT_MS));
    /* Each keeps the stream opened by the smaller raft ID; the other one
     * is half-closed by its opener and goes. */
    ASSERT(nc_run_until(&nc, dial_converged, &w, WAIT_MS));
    /* And messages still flow both ways on the survivor. */
    dial_send(&d[0], &d[1]);
    dial_send(&d[1], &d[0]);
    w.recv = 4;
    ASSERT(nc_run_until(&nc, dial_recv_reached, &w, WAIT_MS));
    ASSERT(dial_converged(&w));
    dial_closed_n = 0;
    for (i = 0; i < 2; i++) {
        d[i].io.close(&d[i].io, dial_io_closed);
    }
    ASSERT(nc_run_until(&nc, dial_both_closed, NULL, WAIT_MS));
    for (i = 0; i < 2; i++) {
        p2praft_io_close(&d[i].io);
        lp2p_host_close(d[i].h, dial_host_closed, &hclosed);
    }
    ASSERT(nc_run_until(&nc, dial_hosts_closed, &hclosed, WAIT_MS));
    uv_run(&nc.loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&nc.loop));
}

/* ---- storage that stops writing (a full disk) ---- */

static bool io_behind(void *ctx);

struct stall_ctx {
    struct nc *nc;
    unsigned stalled; /* the node whose appends are held */
    int want;         /* the node that must lead; -1: any but `stalled` */
    bool watch;       /* record whether `stalled` leads meanwhile */
    bool stalled_led;
};

static bool led_by(void *ctx)
{
    struct stall_ctx *s = ctx;
    unsigned i;
    int leader = -1;
    for (i = 0; i < s->nc->n; i++) {
        if (s->nc->nodes[i].running &&
            raft_state(&s->nc->nodes[i].raft) == RAFT_LEADER) {
            if (i == s->stalled) {
                s->stalled_led = s->stalled_led || s->watch;
            } else {
                leader = (int)i;
            }
        }
    }
    return leader >= 0 && (s->want < 0 || leader == s->want) &&
           raft_state(&s->nc->nodes[s->stalled].raft) != RAFT_LEADER;
}

/* A leader whose appends stop completing (raft_uv retrying a write on a
 * full disk) hands leadership over; while they stay stuck it neither
 * campaigns nor takes entries, so the healthy node wins the next election
 * even with the longer election timeout; once its appends complete again
 * it catches up. */
TEST(io, storage_stall_hands_over)
{
    static struct nc nc;
    struct p2praft_io_stats st;
    struct stall_ctx sc;
    struct caught_ctx kc;
    unsigned l, n = 0, t, i;
    int leader;
    cluster_config(&nc);
    nc.no_hint = true; /* elections only on timeouts: the ones set below */
    ASSERT_OK(nc_init(&nc, 3, &mstate_type, NULL, NULL));
    leader = nc_wait_leader(&nc, WAIT_MS);
    ASSERT(leader >= 0);
    l = (unsigned)leader;
    ASSERT(commit_n(&nc, leader, 3));

    /* The leader's disk "fills": the followers still commit. */
    p2praft__memstore_hold_appends(nc.nodes[l].mem, true);
    ASSERT(commit_n(&nc, leader, 3));
    memset(&sc, 0, sizeof(sc));
    sc.nc = &nc;
    sc.stalled = l;
    sc.want = -1;
    ASSERT(nc_run_until(&nc, led_by, &sc, WAIT_MS));
    p2praft_io_stats(&nc.nodes[l].io, &st);
    ASSERT(st.storage_stalls >= 1);
    ASSERT(st.transfers >= 1);
    for (i = 0; i < 3; i++) {
        if (raft_state(&nc.nodes[i].raft) == RAFT_LEADER) {
            n = i;
        }
    }
    t = 3 - l - n;

    /* The new leader goes. The stalled node would time out first, but
     * must not lead: the other one wins. */
    raft_set_election_timeout(&nc.nodes[t].raft,
                              3 * nc.nodes[t].raft.election_timeout);
    nc_kill(&nc, n);
    sc.want = (int)t;
    sc.watch = true;
    ASSERT(nc_run_until(&nc, led_by, &sc, WAIT_MS));
    ASSERT(!sc.stalled_led);

    /* The disk is freed: the node catches up and commits go on. */
    p2praft__memstore_hold_appends(nc.nodes[l].mem, false);
    ASSERT(commit_n(&nc, (int)t, 3));
    kc.nc = &nc;
    kc.node = l;
    kc.leader = (int)t;
    ASSERT(nc_run_until(&nc, caught_up, &kc, WAIT_MS));
    nc_close(&nc);
}

struct one_commit {
    bool done;
    int status;
    char msg[256];
};

static void one_cb(void *ctx, int status, void *state, const char *errmsg)
{
    struct one_commit *o = ctx;
    p2praft_value_destroy(&mstate_type, state);
    o->done = true;
    o->status = status;
    snprintf(o->msg, sizeof(o->msg), "%s", errmsg != NULL ? errmsg : "");
}

static bool one_done(void *ctx)
{
    return ((struct one_commit *)ctx)->done;
}

static bool io_behind(void *ctx)
{
    return p2praft__io_storage_behind(ctx, NULL, 0);
}

static bool applied_past(void *ctx)
{
    struct nc_node *nd = ctx;
    return raft_last_applied(&nd->raft) >= raft_last_index(&nd->raft);
}

/* A node whose own appends are stuck takes no new entry: the commit is
 * refused at once as surely not applied (P2PRAFT_ERAFT); the one already
 * in raft's log is applied once the appends complete. */
TEST(io, storage_stall_refuses_entries)
{
    static struct nc nc;
    struct harness_msg_state s;
    struct one_commit a, b;
    raft_index before;
    cluster_config(&nc);
    ASSERT_OK(nc_init(&nc, 1, &mstate_type, NULL, NULL));
    ASSERT(nc_wait_leader(&nc, WAIT_MS) == 0);
    ASSERT(commit_n(&nc, 0, 2));
    before = raft_last_applied(&nc.nodes[0].raft);
    p2praft__memstore_hold_appends(nc.nodes[0].mem, true);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    s.Msg = "a";
    ASSERT_OK(p2praft_consensus_commit_state(nc.nodes[0].c, &s, one_cb, &a));
    ASSERT(nc_run_until(&nc, io_behind, &nc.nodes[0].io, WAIT_MS));
    /* (a may have timed out meanwhile: its outcome is unknown, not lost) */
    ASSERT(!a.done || a.status == P2PRAFT_ETIMEDOUT);
    ASSERT_EQ_U64(raft_last_applied(&nc.nodes[0].raft), before);
    s.Msg = "b";
    ASSERT_OK(p2praft_consensus_commit_state(nc.nodes[0].c, &s, one_cb, &b));
    ASSERT(nc_run_until(&nc, one_done, &b, WAIT_MS));
    ASSERT_EQ(b.status, P2PRAFT_ERAFT);
    ASSERT(!p2praft_outcome_unknown(b.status));
    ASSERT(strstr(b.msg, "storage") != NULL);
    p2praft__memstore_hold_appends(nc.nodes[0].mem, false);
    ASSERT(nc_run_until(&nc, applied_past, &nc.nodes[0], WAIT_MS));
    ASSERT(raft_last_applied(&nc.nodes[0].raft) > before);
    ASSERT(!p2praft__io_storage_behind(&nc.nodes[0].io, NULL, 0));
    nc_close(&nc);
}

/* A follower whose appends are stuck, with a log as long as the healthy
 * follower's, must not win the election when the leader goes, although it
 * would time out first, and must let the healthy one win. libraft keeps a
 * follower with unwritten entries from campaigning, but also keeps it
 * loyal to its last leader, refusing every candidate; the io lets
 * candidates past that (without it: no leader until the disk writes). */
TEST(io, storage_stall_no_campaign)
{
    static struct nc nc;
    struct stall_ctx sc;
    struct caught_ctx kc;
    struct p2praft_io_stats st;
    unsigned n, l, t;
    int leader;
    cluster_config(&nc);
    nc.no_hint = true; /* elections only on timeouts: the ones set below */
    ASSERT_OK(nc_init(&nc, 3, &mstate_type, NULL, NULL));
    leader = nc_wait_leader(&nc, WAIT_MS);
    ASSERT(leader >= 0);
    n = (unsigned)leader;
    l = (n + 1) % 3;
    t = (n + 2) % 3;
    ASSERT(commit_n(&nc, leader, 2));
    /* l takes one more entry but cannot write it; then nothing more
     * comes, so its log is as long as t's. */
    p2praft__memstore_hold_appends(nc.nodes[l].mem, true);
    ASSERT(commit_n(&nc, leader, 1));
    ASSERT(nc_run_until(&nc, io_behind, &nc.nodes[l].io, WAIT_MS));
    ASSERT_EQ_U64(raft_last_index(&nc.nodes[l].raft),
                  raft_last_index(&nc.nodes[t].raft));
    raft_set_election_timeout(&nc.nodes[t].raft,
                              3 * nc.nodes[t].raft.election_timeout);
    nc_kill(&nc, n);
    memset(&sc, 0, sizeof(sc));
    sc.nc = &nc;
    sc.stalled = l;
    sc.want = (int)t;
    sc.watch = true;
    ASSERT(nc_run_until(&nc, led_by, &sc, WAIT_MS));
    ASSERT(!sc.stalled_led);
    p2praft_io_stats(&nc.nodes[l].io, &st);
    ASSERT(st.storage_stalls >= 1);
    p2praft__memstore_hold_appends(nc.nodes[l].mem, false);
    ASSERT(commit_n(&nc, (int)t, 2));
    kc.nc = &nc;
    kc.node = l;
    kc.leader = (int)t;
    ASSERT(nc_run_until(&nc, caught_up, &kc, WAIT_MS));
    nc_close(&nc);
}
