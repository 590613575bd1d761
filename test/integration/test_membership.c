/*
 * Membership (members.c; p2praft.h, the membership block) on in-process
 * nodes, and the `p2praft peers` CLI against them:
 *
 *   membership/grow_and_shrink_under_load  3 -> 5 -> 3 while a writer
 *                          runs; every acknowledged write is there after.
 *   membership/replace_wiped_member  a member whose data directory was
 *                          deleted: removed, added again, joins empty.
 *   membership/remove_leader  the leader hands over, then is removed.
 *   membership/join_during_snapshots  a member joins while the others
 *                          snapshot every few entries: it installs one.
 *   membership/bad_and_unreachable_address  refused before submission;
 *                          an unreachable one stays a standby, quorum kept.
 *   membership/removed_node_refused  a removed node knows it and says
 *                          so; streams opened with its key (forward, raft)
 *                          are refused, a member's are served.
 *   membership/removed_node_stops_campaigning  once it knows, a removed
 *                          node asks for no vote over ten election
 *                          timeouts; the members see nothing from it;
 *                          its health check says "removed".
 *   membership/removed_node_stops_campaigning_cli  `p2praft node` removed
 *                          by `peers rm`: one line, exit 8.
 *   membership/removed_member_held_stream_refused  a raft stream opened
 *                          while its peer was a member: once the peer is
 *                          removed, its messages on it are refused and the
 *                          stream closed, like a new stream.
 *   membership/handover  p2praft_node_handover() moves leadership.
 *   membership/cli_peers  ls (text, --json), add, rm, transfer, and their
 *                          exit statuses.
 *   membership/cli_node_join_handover_leave  `p2praft node --join` on an
 *                          empty directory, a leader's handover on SIGTERM,
 *                          `--leave` (and leaving twice: not removed).
 *   membership/hashicorp_wire_add_remove  add, join and remove on the
 *                          hashicorp wire, where the added member's server
 *                          address is its peer ID (go-libp2p-raft's), not
 *                          its multiaddr, which that wire cannot carry.
 */
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_util.h"
#include "host_harness.h"
#include "node_harness.h"
#include "p2praft.h"
#include "raft/rpc.h"
#include "test.h"

/* Start node i as a member joining through the nodes in `via` (n_via). */
static void start_join(struct hnode *ns, unsigned i, const unsigned *via,
                       unsigned n_via)
{
    struct p2praft_node_config cfg;
    const char *listen[1] = {ns[i].listen};
    char err[256];
    unsigned k;
    for (k = 0; k < n_via; k++) {
        ns[i].peers[k] = ns[via[k]].peer_addr;
    }
    p2praft_node_config_init(&cfg);
    cfg.key = &ns[i].key;
    cfg.listen = listen;
    cfg.n_listen = 1;
    cfg.data_dir = ns[i].dir;
    cfg.peers = ns[i].peers;
    cfg.n_peers = n_via;
    cfg.join = true;
    cfg.wire = ns[i].wire;
    if (harness_slow()) {
        cfg.election_ms = 1500;
        cfg.heartbeat_ms = 100;
        cfg.timeout_ms = 20000;
    }
    if (ns[i].snapshot_threshold != 0) {
        cfg.snapshot_threshold = ns[i].snapshot_threshold;
        cfg.snapshot_trailing = ns[i].snapshot_trailing;
    }
    if (p2praft_node_start(&ns[i].node, &cfg, err, sizeof(err)) != 0) {
        test__fail(__FILE__, __LINE__, "node %u: %s", i, err);
    }
}

/* The role of `id` in the peers text ("" when absent), into out. */
static const char *role_in(const char *text, const char *id, char *out,
                           size_t cap)
{
    const char *p = strstr(text, id);
    size_t n = 0;
    out[0] = '\0';
    if (p != NULL) {
        p += strlen(id) + 1;
        while (p[n] != ' ' && p[n] != '\0' && n + 1 < cap) {
            n++;
        }
        memcpy(out, p, n);
        out[n] = '\0';
    }
    return out;
}

/* How many lines (members) the peers text has. */
static unsigned members_in(const char *text)
{
    unsigned k = 0;
    for (; *text != '\0'; text++) {
        k += *text == '\n';
    }
    return k;
}

/* Wait until the leader, asked through `via`, lists `id` with `role`
 * ("" : not at all) and has `n_members` members (0: any). */
static void wait_member(struct hnode *via, const char *id, const char *role,
                        unsigned n_members, unsigned timeout_ms, int line)
{
    uint64_t end = nh_now_ms() + nh_scale(timeout_ms);
    char got[32] = "", err[256];
    unsigned n = 0;
    for (;;) {
        char *text = NULL;
        if (p2praft_node_peers(via->node, &text, err, sizeof(err)) == 0) {
            role_in(text, id, got, sizeof(got));
            n = members_in(text);
            p2praft_free(text);
            if (strcmp(got, role) == 0 && (n_members == 0 || n == n_members)) {
                return;
            }
        }
        if (nh_now_ms() > end) {
            test__fail(__FILE__, line,
                       "%s is '%s' (want '%s'), %u members (want %u), after "
                       "%u ms",
                       id, got, role, n, n_members, timeout_ms);
        }
        nh_pause();
    }
}
#define WAIT_MEMBER(via, id, role, n, ms)                                     \
    wait_member((via), (id), (role), (n), (ms), __LINE__)

/* ---- a writer that records what was acknowledged ------------------------- */

#define MAX_WRITES 100000

struct writer {
    struct p2praft_node *node;
    pthread_t thread;
    volatile int stop;
    unsigned n;           /* writes tried */
    unsigned unknown;     /* answered UNKNOWN */
    uint8_t *acked;       /* [MAX_WRITES] */
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    while (!w->stop && w->n < MAX_WRITES) {
        char key[32], val[32];
        int rv;
        snprintf(key, sizeof(key), "w%06u", w->n);
        snprintf(val, sizeof(val), "v%u", w->n);
        rv = p2praft_node_set(w->node, key, val, strlen(val), NULL, 0);
        if (rv == 0) {
            w->acked[w->n] = 1;
        } else if (p2praft_outcome_unknown(rv)) {
            w->unknown++;
        }
        w->n++;
    }
    return NULL;
}

static void writer_start(struct writer *w, struct p2praft_node *node)
{
    memset(w, 0, sizeof(*w));
    w->node = node;
    w->acked = calloc(MAX_WRITES, 1);
    ASSERT(w->acked != NULL);
    ASSERT(pthread_create(&w->thread, NULL, writer_main, w) == 0);
}

/* Stop it; then every acknowledged write must read back (consistent, on
 * `reader`). Returns how many were acknowledged. */
static unsigned writer_check(struct writer *w, struct p2praft_node *reader)
{
    unsigned i, acked = 0;
    w->stop = 1;
    pthread_join(w->thread, NULL);
    for (i = 0; i < w->n; i++) {
        char key[32], want[32];
        uint8_t *v = NULL;
        size_t len = 0;
        if (!w->acked[i]) {
            continue;
        }
        acked++;
        snprintf(key, sizeof(key), "w%06u", i);
        snprintf(want, sizeof(want), "v%u", i);
        ASSERT_OK(p2praft_node_get(reader, key, true, &v, &len, NULL, 0));
        ASSERT(len == strlen(want) && memcmp(v, want, len) == 0);
        p2praft_free(v);
    }
    free(w->acked);
    return acked;
}

/* Wait until the writer made `k` more attempts. */
static void writer_wait(struct writer *w, unsigned k)
{
    unsigned target = w->n + k;
    uint64_t end = nh_now_ms() + nh_scale(20000);
    while (w->n < target) {
        ASSERT(nh_now_ms() < end);
        nh_pause();
    }
}

/* ---- tests ---------------------------------------------------------------- */

TEST_TIMEOUT(membership, grow_and_shrink_under_load, 120)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", err[256];
    struct hnode ns[5];
    struct writer w;
    const unsigned via3[] = {0, 1, 2}, via4[] = {0, 1, 2, 3};
    unsigned i, acked;
    nh_prepare(ns, 5, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    nh_wait_leader(ns, 3, 10000);
    writer_start(&w, ns[0].node);
    writer_wait(&w, 20);

    /* 3 -> 5: add, then start empty with --join; promoted once caught up */
    ASSERT_OK(p2praft_node_add(ns[1].node, ns[3].peer_addr, err, sizeof(err)));
    start_join(ns, 3, via3, 3);
    WAIT_MEMBER(&ns[2], ns[3].id, "voter", 4, 20000);
    writer_wait(&w, 20);
    ASSERT_OK(p2praft_node_add(ns[2].node, ns[4].peer_addr, err, sizeof(err)));
    start_join(ns, 4, via4, 4);
    WAIT_MEMBER(&ns[0], ns[4].id, "voter", 5, 20000);
    writer_wait(&w, 20);

    /* 5 -> 3, through different nodes, whoever leads */
    ASSERT_OK(p2praft_node_remove(ns[4].node, ns[3].id, err, sizeof(err)));
    WAIT_MEMBER(&ns[0], ns[3].id, "", 4, 20000);
    writer_wait(&w, 20);
    ASSERT_OK(p2praft_node_remove(ns[1].node, ns[4].id, err, sizeof(err)));
    WAIT_MEMBER(&ns[0], ns[4].id, "", 3, 20000);
    writer_wait(&w, 20);
    p2praft_node_stop(ns[3].node);
    p2praft_node_stop(ns[4].node);
    ns[3].node = ns[4].node = NULL;
    writer_wait(&w, 20);

    acked = writer_check(&w, ns[2].node);
    ASSERT(acked >= 100);
    nh_teardown(ns, 5, base);
}

TEST_TIMEOUT(membership, replace_wiped_member, 60)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", err[256];
    struct hnode ns[3];
    const unsigned via[] = {0, 1};
    uint8_t *v = NULL;
    size_t len = 0;
    unsigned i;
    nh_prepare(ns, 3, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    nh_wait_leader(ns, 3, 10000);
    ASSERT_OK(p2praft_node_set(ns[0].node, "before", "1", 1, NULL, 0));

    /* Node 2 loses its disk. */
    p2praft_node_stop(ns[2].node);
    ns[2].node = NULL;
    harness_rm_rf(ns[2].dir);
    ASSERT_OK(p2praft_node_set(ns[0].node, "during", "2", 1, NULL, 0));

    /* Remove it, add it back, and it starts empty with --join. */
    ASSERT_OK(p2praft_node_remove(ns[1].node, ns[2].id, err, sizeof(err)));
    WAIT_MEMBER(&ns[0], ns[2].id, "", 2, 10000);
    ASSERT_OK(p2praft_node_add(ns[0].node, ns[2].peer_addr, err, sizeof(err)));
    start_join(ns, 2, via, 2);
    WAIT_MEMBER(&ns[0], ns[2].id, "voter", 3, 20000);
    ASSERT_OK(p2praft_node_get(ns[2].node, "during", true, &v, &len, NULL, 0));
    ASSERT(len == 1 && v[0] == '2');
    p2praft_free(v);
    nh_wait_field(&ns[2], "removed", "no", 1000);
    nh_teardown(ns, 3, base);
}

TEST_TIMEOUT(membership, remove_leader, 60)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", err[256];
    struct hnode ns[3];
    unsigned i, l, o, l2;
    nh_prepare(ns, 3, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    l = nh_wait_leader(ns, 3, 10000);
    o = (l + 1) % 3;
    /* Asked on the leader itself: it hands over, the new leader removes. */
    ASSERT_OK(p2praft_node_remove(ns[l].node, ns[l].id, err, sizeof(err)));
    WAIT_MEMBER(&ns[o], ns[l].id, "", 2, 10000);
    nh_wait_field(&ns[l], "removed", "yes", 10000);
    p2praft_node_stop(ns[l].node);
    ns[l].node = NULL;
    /* The two left keep a quorum of two. */
    ASSERT_OK(p2praft_node_set(ns[o].node, "after", "x", 1, err, sizeof(err)));
    l2 = (l + 2) % 3;
    ASSERT_OK(p2praft_node_set(ns[l2].node, "after2", "y", 1, err,
                               sizeof(err)));
    /* The last voter cannot go. */
    ASSERT_OK(p2praft_node_remove(ns[o].node, ns[l2].id, err, sizeof(err)));
    ASSERT_EQ(p2praft_node_remove(ns[o].node, ns[o].id, err, sizeof(err)),
              P2PRAFT_EINVAL);
    ASSERT(strstr(err, "last voter") != NULL);
    nh_teardown(ns, 3, base);
}

TEST_TIMEOUT(membership, join_during_snapshots, 90)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", err[256];
    struct hnode ns[4];
    struct writer w;
    const unsigned via[] = {0, 1, 2};
    unsigned i;
    nh_prepare(ns, 4, base);
    for (i = 0; i < 4; i++) {
        ns[i].snapshot_threshold = 32;
        ns[i].snapshot_trailing = 8;
    }
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    nh_wait_leader(ns, 3, 10000);
    writer_start(&w, ns[1].node);
    writer_wait(&w, 200); /* several snapshots taken already */
    ASSERT(nh_field_num(&ns[0], "snapshots_taken") > 0);
    ASSERT_OK(p2praft_node_add(ns[0].node, ns[3].peer_addr, err, sizeof(err)));
    start_join(ns, 3, via, 3);
    WAIT_MEMBER(&ns[0], ns[3].id, "voter", 4, 30000);
    writer_wait(&w, 100);
    ASSERT(nh_field_num(&ns[3], "snapshots_installed") >= 1);
    writer_check(&w, ns[3].node);
    nh_teardown(ns, 4, base);
}

TEST_TIMEOUT(membership, bad_and_unreachable_address, 60)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", err[256], ma[300];
    struct hnode ns[4];
    unsigned i;
    nh_prepare(ns, 4, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    nh_wait_leader(ns, 3, 10000);
    /* Wrong: refused before anything is submitted. */
    ASSERT_EQ(p2praft_node_add(ns[0].node, ns[3].listen, err, sizeof(err)),
              P2PRAFT_EINVAL);
    ASSERT(strstr(err, "/p2p/") != NULL);
    ASSERT_EQ(p2praft_node_add(ns[0].node, "not an address", err, sizeof(err)),
              P2PRAFT_EINVAL);
    ASSERT_EQ(p2praft_node_add(ns[1].node, ns[0].peer_addr, err, sizeof(err)),
              P2PRAFT_EINVAL);
    ASSERT(strstr(err, "already a member") != NULL);
    ASSERT_EQ(p2praft_node_remove(ns[1].node, ns[3].id, err, sizeof(err)),
              P2PRAFT_EINVAL);
    ASSERT(strstr(err, "not a member") != NULL);
    /* Unreachable (nobody listens there): a standby that never votes. */
    snprintf(ma, sizeof(ma), "/ip4/127.0.0.1/tcp/1/p2p/%s", ns[3].id);
    ASSERT_OK(p2praft_node_add(ns[0].node, ma, err, sizeof(err)));
    WAIT_MEMBER(&ns[1], ns[3].id, "standby", 4, 10000);
    for (i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof(key), "q%u", i);
        ASSERT_OK(p2praft_node_set(ns[i % 3].node, key, "v", 1, err,
                                   sizeof(err)));
    }
    WAIT_MEMBER(&ns[2], ns[3].id, "standby", 4, 100);
    /* The quorum is the voters': with one of three down, writes go on. */
    p2praft_node_stop(ns[2].node);
    ns[2].node = NULL;
    nh_wait_leader(ns, 2, 10000);
    ASSERT_OK(p2praft_node_set(ns[0].node, "quorum", "kept", 4, err,
                               sizeof(err)));
    ASSERT_OK(p2praft_node_remove(ns[1].node, ns[3].id, err, sizeof(err)));
    WAIT_MEMBER(&ns[0], ns[3].id, "", 3, 10000);
    nh_teardown(ns, 4, base);
}

/* A stream opened with some key, on its own loop: what the node did with
 * it. */
struct probe {
    int opened, open_status, ended, end_status;
    size_t got;
    struct lp2p_stream *s;
};

static void probe_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                       size_t len)
{
    struct probe *p = lp2p_stream_data(s);
    (void)buf;
    if (status == 0) {
        p->got += len;
    } else {
        p->end_status = status;
        p->ended = 1;
    }
}

static void probe_opened(struct lp2p_stream *s, int status, void *data)
{
    struct probe *p = data;
    p->open_status = status;
    p->opened = 1;
    p->s = s;
    if (status == 0) {
        lp2p_stream_set_data(s, p);
        lp2p_stream_read_start(s, probe_read);
    }
}

/* Open `proto` to the node `to` as the peer whose key is `key`, send a SET
 * (answered OK by a member's leader), and return how many bytes came
 * back before the stream ended (a refused stream: 0). */
static size_t probe_stream(const struct lp2p_key *key, struct hnode *to,
                           const char *proto)
{
    uv_loop_t loop;
    struct lp2p_host_config cfg;
    struct lp2p_host *h;
    struct lp2p_peer_id pid;
    struct probe p;
    const char *protos[] = {proto};
    struct {
        uint8_t *f;
        size_t len;
    } q = {NULL, 0};
    static const uint8_t set[] = {2, P2PRAFT_API_SET, 0, 0, 0, 0, 1,
                                  0, 0, 0, 1, 'k',    0, 0, 0, 1, 'v'};
    memset(&p, 0, sizeof(p));
    uv_loop_init(&loop);
    lp2p_host_config_init(&cfg);
    cfg.key = key;
    h = th_host(&loop, &cfg, NULL);
    ASSERT_OK(lp2p_peer_id_parse(&pid, to->id));
    ASSERT_OK(lp2p_peerstore_add_addr(h, &pid, to->peer_addr, 60000));
    ASSERT_OK(lp2p_stream_open(h, &pid, protos, 1, probe_opened, &p));
    ASSERT(th_run_until(&loop, &p.opened, 5000));
    if (p.open_status == 0) {
        q.len = 4 + sizeof(set);
        q.f = malloc(q.len);
        ASSERT(q.f != NULL);
        q.f[0] = q.f[1] = q.f[2] = 0;
        q.f[3] = (uint8_t)sizeof(set);
        memcpy(q.f + 4, set, sizeof(set));
        lp2p_stream_write(p.s, q.f, q.len, NULL, NULL);
        th_run_until(&loop, &p.ended, 5000);
        lp2p_stream_close(p.s, NULL, NULL);
    }
    th_host_close(&loop, h);
    th_loop_close(&loop);
    free(q.f);
    return p.got;
}

TEST_TIMEOUT(membership, removed_node_refused, 60)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", err[256];
    struct hnode ns[3];
    unsigned i, l, r, o;
    unsigned long refused0;
    nh_prepare(ns, 3, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    l = nh_wait_leader(ns, 3, 10000);
    r = (l + 1) % 3; /* a follower */
    o = (l + 2) % 3;
    ASSERT_OK(p2praft_node_remove(ns[o].node, ns[r].id, err, sizeof(err)));
    nh_wait_field(&ns[r], "removed", "yes", 10000);
    /* It cannot write any more: knowing it was removed, it forwards
     * nothing and says so (nothing submitted); never OK. */
    ASSERT_ERR(p2praft_node_set(ns[r].node, "from-removed", "x", 1, err,
                                sizeof(err)),
               LP2P_ERAFT);
    /* Its identity opens no stream any more, even while its node runs:
     * forward and raft streams from its key are refused by the leader,
     * like a stranger's. (Not its own campaigns: a removed node may stop
     * campaigning, so they prove nothing.) The leader is asked: it
     * committed the removal before it answered; another member learns of
     * the commit a heartbeat later, and admits the peers of the last
     * configuration it knows committed. */
    refused0 = nh_field_num(&ns[l], "forward_refused");
    ASSERT_EQ(probe_stream(&ns[r].key, &ns[l], P2PRAFT_FORWARD_PROTOCOL), 0);
    ASSERT(nh_field_num(&ns[l], "forward_refused") > refused0);
    refused0 = nh_field_num(&ns[l], "raft_refused");
    ASSERT_EQ(probe_stream(&ns[r].key, &ns[l], P2PRAFT_PROTOCOL), 0);
    ASSERT(nh_field_num(&ns[l], "raft_refused") > refused0);
    ASSERT_OK(p2praft_node_set(ns[o].node, "still", "ok", 2, err,
                               sizeof(err)));
    /* And once it is gone; a member's key is served (the control). */
    p2praft_node_stop(ns[r].node);
    ns[r].node = NULL;
    refused0 = nh_field_num(&ns[l], "raft_refused");
    ASSERT_EQ(probe_stream(&ns[r].key, &ns[l], P2PRAFT_PROTOCOL), 0);
    ASSERT(nh_field_num(&ns[l], "raft_refused") > refused0);
    ASSERT(probe_stream(&ns[o].key, &ns[l], P2PRAFT_FORWARD_PROTOCOL) > 0);
    nh_teardown(ns, 3, base);
}

/* A RequestVote frame of p2praft's raft wire, stale (term 1): a leader
 * of a later term refuses its vote and stays leader. */
static size_t stale_vote_frame(uint8_t *out, size_t cap)
{
    struct raft_message m;
    size_t len = 0;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_REQUEST_VOTE;
    m.request_vote.version = 2;
    m.request_vote.term = 1;
    m.request_vote.last_log_index = 1;
    m.request_vote.last_log_term = 1;
    ASSERT_OK(p2praft__rpc_header_len(&m, &len));
    ASSERT(len <= cap);
    p2praft__rpc_header_write(&m, out);
    return len;
}

/* Admission is checked when a raft stream opens, and again for every
 * message on it: a peer removed from the configuration keeps the streams
 * it opened while it was a member, and its messages on them are refused
 * (the stream closed) as a new stream of its would be. The peer here is a
 * probe host with the key of a member added for the purpose (never
 * started): it opens a raft stream to the leader while it is a member,
 * sends a message (served: the stream stays), is removed, sends another
 * (refused: the stream is closed). */
TEST_TIMEOUT(membership, removed_member_held_stream_refused, 60)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", err[256];
    struct hnode ns[4];
    unsigned i, l, o;
    unsigned long refused0;
    uv_loop_t loop;
    struct lp2p_host_config cfg;
    struct lp2p_host *h;
    struct lp2p_peer_id pid;
    struct probe p;
    const char *protos[] = {P2PRAFT_PROTOCOL};
    uint8_t vote[P2PRAFT__RPC_SMALL_MAX];
    size_t vlen = stale_vote_frame(vote, sizeof(vote));
    int never = 0;
    nh_prepare(ns, 4, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    l = nh_wait_leader(ns, 3, 10000);
    o = (l + 1) % 3;
    ASSERT_OK(p2praft_node_add(ns[o].node, ns[3].peer_addr, err,
                               sizeof(err)));
    /* A member now (a standby): its raft stream is admitted. */
    memset(&p, 0, sizeof(p));
    uv_loop_init(&loop);
    lp2p_host_config_init(&cfg);
    cfg.key = &ns[3].key;
    h = th_host(&loop, &cfg, NULL);
    ASSERT_OK(lp2p_peer_id_parse(&pid, ns[l].id));
    ASSERT_OK(lp2p_peerstore_add_addr(h, &pid, ns[l].peer_addr, 60000));
    ASSERT_OK(lp2p_stream_open(h, &pid, protos, 1, probe_opened, &p));
    ASSERT(th_run_until(&loop, &p.opened, 5000));
    ASSERT_EQ(p.open_status, 0);
    refused0 = nh_field_num(&ns[l], "raft_refused");
    ASSERT_OK(lp2p_stream_write(p.s, vote, vlen, NULL, NULL));
    /* Served: within a few election timeouts the stream stays open and
     * nothing is refused. */
    th_run_until(&loop, &never, (uint64_t)nh_scale(500));
    ASSERT_EQ(p.ended, 0);
    ASSERT_EQ(nh_field_num(&ns[l], "raft_refused"), refused0);
    /* Removed: the next message on the same stream is refused. */
    ASSERT_OK(p2praft_node_remove(ns[o].node, ns[3].id, err, sizeof(err)));
    ASSERT_OK(lp2p_stream_write(p.s, vote, vlen, NULL, NULL));
    ASSERT(th_run_until(&loop, &p.ended, (uint64_t)nh_scale(5000)));
    ASSERT(nh_field_num(&ns[l], "raft_refused") > refused0);
    /* The cluster goes on under the same leader. */
    ASSERT_OK(p2praft_node_set(ns[o].node, "still", "ok", 2, err,
                               sizeof(err)));
    ASSERT_EQ(nh_wait_leader(ns, 3, 1000), l);
    lp2p_stream_close(p.s, NULL, NULL);
    th_host_close(&loop, h);
    th_loop_close(&loop);
    nh_teardown(ns, 4, base);
}

/* Sum of a status field over the nodes of ns[0..n) but `skip`. */
static unsigned long sum_field(struct hnode *ns, unsigned n, unsigned skip,
                               const char *name)
{
    unsigned long t = 0;
    unsigned i;
    for (i = 0; i < n; i++) {
        if (i != skip) {
            t += nh_field_num(&ns[i], name);
        }
    }
    return t;
}

/* A removed node stops campaigning: once it knows (removed: yes), raft
 * asks it to send no RequestVote (pre-votes included) over many election
 * timeouts, it stays a follower, and the members see no stream from it
 * (their refusal counters stay flat) nor a new term. */
TEST_TIMEOUT(membership, removed_node_stops_campaigning, 60)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", err[256], role[32];
    struct hnode ns[3];
    unsigned i, l, r, o, election = harness_slow() ? 1500 : 150;
    unsigned long votes0, refused0, term0;
    uint64_t end;
    nh_prepare(ns, 3, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    l = nh_wait_leader(ns, 3, 10000);
    r = (l + 1) % 3; /* a follower */
    o = (l + 2) % 3;
    ASSERT_OK(p2praft_node_remove(ns[o].node, ns[r].id, err, sizeof(err)));
    nh_wait_field(&ns[r], "removed", "yes", 10000);
    WAIT_MEMBER(&ns[l], ns[r].id, "", 2, 10000);
    /* Let what it sent before it knew arrive and be refused (two election
     * timeouts: a stream refused is counted as it opens). */
    end = nh_now_ms() + 2 * election;
    while (nh_now_ms() < end) {
        nh_pause();
    }
    votes0 = nh_field_num(&ns[r], "vote_requests");
    refused0 = sum_field(ns, 3, r, "raft_refused") +
               sum_field(ns, 3, r, "forward_refused");
    term0 = nh_field_num(&ns[l], "term");
    /* Ten election timeouts without a leader's heartbeat: a node that
     * campaigns asks for votes within the first two. */
    end = nh_now_ms() + 10 * election;
    while (nh_now_ms() < end) {
        ASSERT_EQ(nh_field_num(&ns[r], "vote_requests"), votes0);
        ASSERT_STR_EQ(nh_field(&ns[r], "role", role, sizeof(role)),
                      "follower");
        nh_pause();
    }
    ASSERT_EQ(sum_field(ns, 3, r, "raft_refused") +
                  sum_field(ns, 3, r, "forward_refused"),
              refused0);
    ASSERT_EQ(nh_field_num(&ns[l], "term"), term0);
    ASSERT_EQ(nh_wait_leader(ns, 3, 1000), l);
    ASSERT_OK(p2praft_node_set(ns[o].node, "after", "ok", 2, err,
                               sizeof(err)));
    /* its /healthz (API op HEALTH) says why it is out */
    {
        uint8_t req[7] = {P2PRAFT_API_VERSION, P2PRAFT_API_HEALTH, 0, 0, 0,
                          0, 1};
        uint8_t *resp = NULL;
        size_t len = 0;
        ASSERT_OK(p2praft_node_call(ns[r].node, req, sizeof(req), &resp,
                                    &len));
        ASSERT(len > 15);
        ASSERT_EQ(resp[2], P2PRAFT_API_FAILED);
        ASSERT(memmem(resp + 15, len - 15, "removed from the cluster", 24) !=
               NULL);
        p2praft_free(resp);
    }
    nh_teardown(ns, 3, base);
}

TEST_TIMEOUT(membership, handover, 60)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", leader[LP2P_PEER_ID_STRMAX];
    char err[256];
    struct hnode ns[3];
    unsigned i, l, o, l2;
    nh_prepare(ns, 3, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    l = nh_wait_leader(ns, 3, 10000);
    o = (l + 1) % 3;
    ASSERT_OK(p2praft_node_handover(ns[o].node)); /* not the leader: no-op */
    ASSERT_EQ(nh_wait_leader(ns, 3, 10000), l);
    ASSERT_OK(p2praft_node_handover(ns[l].node));
    l2 = nh_wait_leader(ns, 3, 10000);
    ASSERT(l2 != l);
    /* Transfer to a named voter, asked on another node. */
    ASSERT_OK(p2praft_node_transfer(ns[o].node, ns[l].id, leader, err,
                                    sizeof(err)));
    ASSERT_STR_EQ(leader, ns[l].id);
    ASSERT_EQ(nh_wait_leader(ns, 3, 10000), l);
    nh_teardown(ns, 3, base);
}

/* ---- the CLI --------------------------------------------------------------- */

static char cli[4096];

/* Run `p2praft peers --api PATH ARGS...` (NULL-terminated); its stdout
 * and stderr into out; returns its exit status. */
static int peers_cli(const char *api, char *out, size_t cap, ...)
{
    char *argv[16];
    va_list ap;
    int fds[2], status = 0, k = 0;
    size_t len = 0;
    ssize_t n;
    pid_t pid;
    if (cli[0] == '\0') {
        char *slash;
        n = readlink("/proc/self/exe", cli, sizeof(cli) - 16);
        ASSERT(n > 0);
        cli[n] = '\0';
        slash = strrchr(cli, '/');
        ASSERT(slash != NULL);
        strcpy(slash + 1, "p2praft");
    }
    argv[k++] = cli;
    argv[k++] = "peers";
    argv[k++] = "--api";
    argv[k++] = (char *)api;
    va_start(ap, cap);
    while (k < 15 && (argv[k] = va_arg(ap, char *)) != NULL) {
        k++;
    }
    va_end(ap);
    argv[k] = NULL;
    ASSERT(pipe(fds) == 0);
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(cli, argv);
        _exit(127);
    }
    close(fds[1]);
    while ((n = read(fds[0], out + len, cap - 1 - len)) > 0) {
        len += (size_t)n;
    }
    out[len] = '\0';
    close(fds[0]);
    ASSERT(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_TIMEOUT(membership, cli_peers, 60)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", out[8192], bad[300];
    struct hnode ns[4];
    const char *api;
    const unsigned via[] = {0, 1, 2};
    unsigned i, l, o;
    nh_prepare(ns, 4, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    l = nh_wait_leader(ns, 3, 10000);
    o = (l + 1) % 3;
    api = p2praft_node_api_path(ns[o].node);

    ASSERT_EQ(peers_cli(api, out, sizeof(out), "ls", NULL), 0);
    ASSERT_EQ(members_in(out), 3);
    ASSERT(strstr(out, " voter leader ") != NULL);
    ASSERT_EQ(peers_cli(api, out, sizeof(out), "--json", "ls", NULL), 0);
    ASSERT(strstr(out, "\"peer_id\"") != NULL &&
           strstr(out, "\"leader\":true") != NULL);

    /* add: usage, a bad address (5: not added), then for real */
    ASSERT_EQ(peers_cli(api, out, sizeof(out), "add", NULL), 2);
    ASSERT_EQ(peers_cli(api, out, sizeof(out), "add", ns[3].listen, NULL), 5);
    ASSERT(strstr(out, "/p2p/") != NULL);
    ASSERT_EQ(peers_cli(api, out, sizeof(out), "add", ns[3].peer_addr, NULL),
              0);
    ASSERT(strstr(out, ns[3].id) != NULL);
    ASSERT_EQ(peers_cli(api, out, sizeof(out), "add", ns[3].peer_addr, NULL),
              5); /* already a member */
    ASSERT(strstr(out, "already a member") != NULL);
    start_join(ns, 3, via, 3);
    WAIT_MEMBER(&ns[0], ns[3].id, "voter", 4, 20000);

    /* transfer: to a named voter, then to any */
    ASSERT_EQ(peers_cli(api, out, sizeof(out), "transfer", ns[3].id, NULL), 0);
    ASSERT(strstr(out, ns[3].id) != NULL);
    ASSERT_EQ(nh_wait_leader(ns, 4, 10000), 3);
    ASSERT_EQ(peers_cli(api, out, sizeof(out), "--json", "transfer", NULL), 0);
    ASSERT(strstr(out, "\"leader\"") != NULL);
    snprintf(bad, sizeof(bad), "%s", "12D3KooWnotapeer");
    ASSERT_EQ(peers_cli(api, out, sizeof(out), "transfer", bad, NULL), 5);

    /* rm: not a member (5), then node 3 */
    ASSERT_EQ(peers_cli(api, out, sizeof(out), "rm", bad, NULL), 5);
    ASSERT(strstr(out, "not a peer ID") != NULL);
    ASSERT_EQ(peers_cli(api, out, sizeof(out), "rm", ns[3].id, NULL), 0);
    WAIT_MEMBER(&ns[0], ns[3].id, "", 3, 10000);
    ASSERT_EQ(peers_cli(api, out, sizeof(out), "bogus", NULL), 2);
    nh_teardown(ns, 4, base);
}

/* A `p2praft node` child, its stdout and stderr on a pipe. */
struct nodeproc {
    pid_t pid;
    int fd;
    char buf[16384];
    size_t len;
};

static void node_spawn(struct nodeproc *p, char *const argv[])
{
    int fds[2];
    memset(p, 0, sizeof(*p));
    ASSERT(pipe(fds) == 0);
    p->pid = fork();
    ASSERT(p->pid >= 0);
    if (p->pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        unsetenv("P2PRAFT_LOG");
        execv(cli, argv);
        _exit(127);
    }
    close(fds[1]);
    p->fd = fds[0];
}

/* Read until `needle` shows up (true) or timeout / EOF (false). */
static bool node_read_until(struct nodeproc *p, const char *needle,
                            unsigned timeout_ms)
{
    uint64_t end = nh_now_ms() + nh_scale(timeout_ms);
    while (strstr(p->buf, needle) == NULL) {
        struct pollfd pfd = {p->fd, POLLIN, 0};
        ssize_t n;
        int left = (int)(end - nh_now_ms());
        if (nh_now_ms() >= end || p->len + 1 >= sizeof(p->buf)) {
            return false;
        }
        if (poll(&pfd, 1, left) <= 0) {
            continue;
        }
        n = read(p->fd, p->buf + p->len, sizeof(p->buf) - 1 - p->len);
        if (n <= 0) {
            return strstr(p->buf, needle) != NULL;
        }
        p->len += (size_t)n;
        p->buf[p->len] = '\0';
    }
    return true;
}

static int node_wait_exit(struct nodeproc *p)
{
    int status = 0;
    node_read_until(p, "\x01never", 10000); /* drain to EOF */
    ASSERT(waitpid(p->pid, &status, 0) == p->pid);
    close(p->fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Three in-process members (ns[0..2]) and a fourth, `p2praft node` in a
 * child process with ns[3]'s key saved to `keyfile` (under base), added by
 * `peers add` and started with --join. */
static void start_cli_joiner(struct hnode ns[4], char *base, char *keyfile,
                             size_t cap, struct nodeproc *p)
{
    char out[8192];
    unsigned i;
    nh_prepare(ns, 4, base);
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    nh_wait_leader(ns, 3, 10000);
    snprintf(keyfile, cap, "%s/k3", base);
    ASSERT_OK(lp2p_key_save(keyfile, &ns[3].key));
    /* sets cli[] */
    ASSERT_EQ(peers_cli(p2praft_node_api_path(ns[0].node), out, sizeof(out),
                        "add", ns[3].peer_addr, NULL),
              0);
    {
        char *argv[] = {cli, "node", "--key", keyfile, "--data-dir",
                        ns[3].dir, "--listen", ns[3].listen, "--join",
                        ns[0].peer_addr, "--join", ns[1].peer_addr, "--join",
                        ns[2].peer_addr, NULL};
        node_spawn(p, argv);
    }
}

/* The CLI node: --join on an empty directory, a leader's handover on
 * SIGTERM, --leave. */
TEST_TIMEOUT(membership, cli_node_join_handover_leave, 90)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", err[256];
    char keyfile[300], leader[LP2P_PEER_ID_STRMAX];
    struct hnode ns[4];
    struct nodeproc p;
    start_cli_joiner(ns, base, keyfile, sizeof(keyfile), &p);
    ASSERT(node_read_until(&p, "ready", 10000));
    ASSERT(node_read_until(&p, "joined the cluster", 10000));
    WAIT_MEMBER(&ns[0], ns[3].id, "voter", 4, 20000);
    /* It leads; SIGTERM: it hands over before it exits. */
    ASSERT_OK(p2praft_node_transfer(ns[1].node, ns[3].id, leader, err,
                                    sizeof(err)));
    ASSERT_STR_EQ(leader, ns[3].id);
    kill(p.pid, SIGTERM);
    /* It tries (three times at most); on a loaded machine a transfer can
     * still give up, which it says. The in-process handover test checks
     * that leadership moves. */
    ASSERT_EQ(node_wait_exit(&p), 0);
    if (strstr(p.buf, "leadership handed over to") == NULL &&
        strstr(p.buf, "leadership not handed over") == NULL) {
        test__fail(__FILE__, __LINE__, "no handover on SIGTERM: %s", p.buf);
    }
    ASSERT(nh_wait_leader(ns, 3, 10000) < 3);
    /* Started again with --join (as a unit file may keep it): its
     * directory holds state, so --join is ignored, and it says so rather
     * than "joined the cluster". */
    {
        char *argv[] = {cli, "node", "--key", keyfile, "--data-dir",
                        ns[3].dir, "--listen", ns[3].listen, "--join",
                        ns[0].peer_addr, NULL};
        node_spawn(&p, argv);
    }
    ASSERT(node_read_until(&p, "ready", 10000));
    if (!node_read_until(&p, "--join ignored", 10000)) {
        test__fail(__FILE__, __LINE__, "output: %s", p.buf);
    }
    kill(p.pid, SIGTERM);
    ASSERT_EQ(node_wait_exit(&p), 0);
    ASSERT(strstr(p.buf, "joined the cluster") == NULL);
    ASSERT(nh_wait_leader(ns, 3, 10000) < 3);
    /* --leave: removed for good, exit 0. */
    {
        char *argv[] = {cli, "node", "--key", keyfile, "--data-dir",
                        ns[3].dir, "--listen", ns[3].listen, "--leave", NULL};
        node_spawn(&p, argv);
    }
    if (!node_read_until(&p, "removed ", 20000)) {
        test__fail(__FILE__, __LINE__, "--leave said nothing of its removal: %s",
                   p.buf);
    }
    ASSERT_EQ(node_wait_exit(&p), 0);
    WAIT_MEMBER(&ns[0], ns[3].id, "", 3, 10000);
    /* Leaving again: not a member any more (5, nothing changed). */
    {
        char *argv[] = {cli, "node", "--key", keyfile, "--data-dir",
                        ns[3].dir, "--listen", ns[3].listen, "--leave", NULL};
        node_spawn(&p, argv);
    }
    ASSERT_EQ(node_wait_exit(&p), 5);
    if (strstr(p.buf, "not removed") == NULL) {
        test__fail(__FILE__, __LINE__, "output: %s", p.buf);
    }
    unlink(keyfile);
    nh_teardown(ns, 4, base);
}

/* `p2praft node` removed by a `peers rm` elsewhere: one line says so and
 * what to do, and the process exits 8 (the unit does not restart it). */
TEST_TIMEOUT(membership, removed_node_stops_campaigning_cli, 90)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", err[256];
    char keyfile[300];
    struct hnode ns[4];
    struct nodeproc p;
    const char *line, *again;
    start_cli_joiner(ns, base, keyfile, sizeof(keyfile), &p);
    ASSERT(node_read_until(&p, "joined the cluster", 20000));
    WAIT_MEMBER(&ns[0], ns[3].id, "voter", 4, 20000);
    ASSERT_OK(p2praft_node_remove(ns[1].node, ns[3].id, err, sizeof(err)));
    ASSERT_EQ(node_wait_exit(&p), 8);
    line = strstr(p.buf, "was removed from the cluster by ");
    if (line == NULL) {
        test__fail(__FILE__, __LINE__, "output: %s", p.buf);
    }
    again = strstr(line + 1, "was removed from the cluster");
    ASSERT(again == NULL); /* one line */
    ASSERT(strstr(line, "--join after `p2praft peers add`") != NULL);
    WAIT_MEMBER(&ns[0], ns[3].id, "", 3, 10000);
    ASSERT_OK(p2praft_node_set(ns[2].node, "after", "ok", 2, err,
                               sizeof(err)));
    /* Started again on its directory (by hand, or a supervisor): it does
     * not campaign, refused by everyone, with no word of why; it says it
     * was removed and exits 8 at once. */
    {
        char *argv[] = {cli, "node", "--key", keyfile, "--data-dir",
                        ns[3].dir, "--listen", ns[3].listen, "--peer",
                        ns[0].peer_addr, NULL};
        node_spawn(&p, argv);
    }
    ASSERT_EQ(node_wait_exit(&p), 8);
    if (strstr(p.buf, "was removed from the cluster by ") == NULL ||
        strstr(p.buf, "--join after `p2praft peers add`") == NULL ||
        strstr(p.buf, "ready") != NULL) {
        test__fail(__FILE__, __LINE__, "output: %s", p.buf);
    }
    unlink(keyfile);
    nh_teardown(ns, 4, base);
}

/* On the hashicorp wire a server's address is its peer ID: `add` keeps the
 * multiaddr on the leader and puts the peer ID in the configuration, which
 * the leader can then send (a multiaddr there could not be said on this
 * wire: the leader could not replicate the entry, and lost leadership over
 * and over). The new member joins, votes, reads; then it is removed. */
TEST_TIMEOUT(membership, hashicorp_wire_add_remove, 90)
{
    char base[] = "/tmp/p2praft-mbr-XXXXXX", err[256], line[512];
    struct hnode ns[4];
    unsigned i, l, f;
    const unsigned via[3] = {0, 1, 2};
    char *text = NULL;
    uint8_t *v = NULL;
    size_t vlen = 0;
    nh_prepare(ns, 4, base);
    for (i = 0; i < 4; i++) {
        ns[i].wire = P2PRAFT_WIRE_HASHICORP;
    }
    for (i = 0; i < 3; i++) {
        nh_start(ns, 3, i, true);
    }
    l = nh_wait_leader(ns, 3, nh_scale(10000));
    f = (l + 1) % 3;
    ASSERT_OK(p2praft_node_set(ns[f].node, "before", "1", 1, err,
                               sizeof(err)));
    /* Sent to a follower, carried out by the leader. */
    ASSERT_OK(p2praft_node_add(ns[f].node, ns[3].peer_addr, err,
                               sizeof(err)));
    start_join(ns, 3, via, 3);
    WAIT_MEMBER(&ns[0], ns[3].id, "voter", 4, 20000);
    ASSERT_OK(p2praft_node_peers(ns[1].node, &text, err, sizeof(err)));
    snprintf(line, sizeof(line), "%s voter follower", ns[3].id);
    ASSERT(strstr(text, line) != NULL);
    ASSERT(strstr(text, "/ip4/") == NULL); /* every address: a peer ID */
    p2praft_free(text);
    nh_wait_field(&ns[3], "caught_up", "yes", nh_scale(10000));
    ASSERT_OK(p2praft_node_get(ns[3].node, "before", false, &v, &vlen, err,
                               sizeof(err)));
    ASSERT(vlen == 1 && v[0] == '1');
    p2praft_free(v);
    /* Its vote counts: with one of the first three stopped (not the
     * leader), writes still commit, 3 of 4. */
    p2praft_node_stop(ns[f].node);
    ns[f].node = NULL;
    ASSERT_OK(p2praft_node_set(ns[l].node, "after", "2", 1, err,
                               sizeof(err)));
    ASSERT_OK(p2praft_node_get(ns[3].node, "after", true, &v, &vlen, err,
                               sizeof(err)));
    ASSERT(vlen == 1 && v[0] == '2');
    p2praft_free(v);
    ASSERT_OK(p2praft_node_remove(ns[l].node, ns[3].id, err, sizeof(err)));
    WAIT_MEMBER(&ns[l], ns[3].id, "", 3, 10000);
    nh_wait_field(&ns[3], "removed", "yes", nh_scale(10000));
    nh_teardown(ns, 4, base);
}
