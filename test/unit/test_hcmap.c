/*
 * hashicorp <-> libraft message translation (src/raft/hcmap.c), on the
 * captured vectors of test/vectors/hashicorp/ and on hand-made edge cases.
 * The mapping under test is the one doc/hashicorp-wire.md specifies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p.h"
#include "oom.h"
#include "p2praft.h"
#include "raft/hcmap.h"
#include "raft/hcwire.h"
#include "test.h"
#include "util/buf.h"
#include "util/heap.h"

#define VDIR "test/vectors/hashicorp/"
#define MAXMSG (1u << 20)

static const char *dirs[] = {"raft-v1.6.1", "raft-v1.7.3"};

struct vec {
    uint8_t *raw;
    size_t len;
    struct p2praft__hc_req req;
    struct p2praft__hc_resp resp;
    char from[128]; /* the sender's peer ID (its header Addr) */
    raft_id from_id;
};

static void load(const char *dir, const char *name, uint8_t **raw,
                 size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), VDIR "%s/%s", dir, name);
    *raw = test__read_file(path, len);
}

static void set_from(struct vec *v, const struct p2praft__hc_bytes *id)
{
    uint64_t x;
    ASSERT(id->p != NULL && id->len < sizeof(v->from));
    memcpy(v->from, id->p, id->len);
    v->from[id->len] = '\0';
    ASSERT_OK(p2praft_server_id_parse(v->from, &x));
    v->from_id = x;
}

static void load_req(const char *dir, const char *name, struct vec *v)
{
    size_t used;
    memset(v, 0, sizeof(*v));
    load(dir, name, &v->raw, &v->len);
    ASSERT_OK(p2praft__hc_req_decode(v->raw, v->len, MAXMSG, &v->req, &used));
    set_from(v, &v->req.append_entries.header.addr);
}

static void load_resp(const char *dir, const char *name, uint8_t type,
                      struct vec *v)
{
    size_t used;
    memset(v, 0, sizeof(*v));
    load(dir, name, &v->raw, &v->len);
    ASSERT_OK(p2praft__hc_resp_decode(type, v->raw, v->len, MAXMSG, &v->resp,
                                      &used));
}

static void vec_free(struct vec *v)
{
    p2praft__hc_req_release(&v->req);
    p2praft__hc_resp_release(&v->resp);
    free(v->raw);
}

static struct p2praft__hc_map map_as(const char *local)
{
    struct p2praft__hc_map m;
    memset(&m, 0, sizeof(m));
    m.local_id = local;
    return m;
}

static raft_id id_of(const struct p2praft__hc_bytes *b)
{
    char s[128];
    uint64_t x;
    ASSERT(b->len < sizeof(s));
    memcpy(s, b->p, b->len);
    s[b->len] = '\0';
    ASSERT_OK(p2praft_server_id_parse(s, &x));
    return x;
}

/* ---- roles ----------------------------------------------------------------- */

TEST(hcmap, suffrage_role_bijection)
{
    int64_t s;
    int role;
    ASSERT_OK(p2praft__hc_role_of(P2PRAFT__HC_VOTER, &role));
    ASSERT_EQ(role, RAFT_VOTER);
    ASSERT_OK(p2praft__hc_role_of(P2PRAFT__HC_NONVOTER, &role));
    ASSERT_EQ(role, RAFT_STANDBY);
    ASSERT_OK(p2praft__hc_role_of(P2PRAFT__HC_STAGING, &role));
    ASSERT_EQ(role, RAFT_SPARE);
    ASSERT_ERR(p2praft__hc_role_of(3, &role), LP2P_EUNSUPPORTED);
    ASSERT_ERR(p2praft__hc_role_of(-1, &role), LP2P_EUNSUPPORTED);
    for (role = RAFT_STANDBY; role <= RAFT_SPARE; role++) {
        int back;
        ASSERT_OK(p2praft__hc_suffrage_of(role, &s));
        ASSERT_OK(p2praft__hc_role_of(s, &back));
        ASSERT_EQ(back, role);
    }
    ASSERT_ERR(p2praft__hc_suffrage_of(7, &s), LP2P_EUNSUPPORTED);
}

/* ---- Go -> C -> Go: AppendEntries ---------------------------------------------- */

/* Check libraft's view of one translated entry against hashicorp's. */
static void check_entry(const struct p2praft__hc_log *l,
                        const struct raft_entry *e)
{
    ASSERT_EQ_U64(e->term, l->term);
    ASSERT(e->batch != NULL);
    switch (l->type) {
    case P2PRAFT__HC_LOG_COMMAND:
        ASSERT_EQ(e->type, RAFT_COMMAND);
        ASSERT_EQ(e->buf.len, l->data.len);
        ASSERT_MEM_EQ(e->buf.base, l->data.p, l->data.len);
        break;
    case P2PRAFT__HC_LOG_NOOP:
        /* libraft's own no-op: 8 zero bytes. */
        ASSERT_EQ(e->type, RAFT_BARRIER);
        ASSERT_EQ(e->buf.len, 8);
        ASSERT_MEM_EQ(e->buf.base, "\0\0\0\0\0\0\0\0", 8);
        break;
    case P2PRAFT__HC_LOG_BARRIER:
        ASSERT_EQ(e->type, RAFT_BARRIER);
        ASSERT_EQ(e->buf.len, 8);
        ASSERT_MEM_EQ(e->buf.base, "\1\0\0\0\0\0\0\0", 8);
        break;
    case P2PRAFT__HC_LOG_CONFIGURATION: {
        struct p2praft__hc_configuration hc;
        struct raft_configuration conf;
        size_t i;
        ASSERT_EQ(e->type, RAFT_CHANGE);
        ASSERT_OK(p2praft__hc_conf_decode(l->data.p, l->data.len, &hc));
        ASSERT_EQ(raft_configuration_decode(&e->buf, &conf), 0);
        ASSERT_EQ(conf.n, hc.n);
        for (i = 0; i < hc.n; i++) {
            int role;
            ASSERT_EQ_U64(conf.servers[i].id, id_of(&hc.servers[i].id));
            ASSERT_EQ(strlen(conf.servers[i].address), hc.servers[i].address.len);
            ASSERT_MEM_EQ(conf.servers[i].address, hc.servers[i].address.p,
                          hc.servers[i].address.len);
            ASSERT_OK(p2praft__hc_role_of(hc.servers[i].suffrage, &role));
            ASSERT_EQ(conf.servers[i].role, role);
        }
        raft_configuration_close(&conf);
        p2praft__hc_conf_release(&hc);
        break;
    }
    default:
        test__fail(__FILE__, __LINE__, "unexpected type");
    }
}

/*
 * A request a Go node sent, through libraft and back out as a C node
 * would send it: the bytes must be the Go node's, except each entry's
 * AppendedAt (libraft keeps none; we send the zero time), which is put back
 * before comparing. Returns whether AppendedAt had to be put back.
 */
static bool go_c_go(const char *dir, const char *name)
{
    struct vec v;
    struct raft_message msg;
    struct p2praft__hc_pending q, p;
    struct p2praft__hc_map m;
    struct p2praft__hc_local local = {9, 99, 9};
    struct lp2p_buf wire, again;
    struct p2praft__hc_req req2;
    size_t used, i;
    bool patched = false;
    uint8_t *snap = NULL;
    size_t snap_len = 0;
    load_req(dir, name, &v);
    if (v.req.type == P2PRAFT__HC_INSTALL_SNAPSHOT) {
        load(dir, "install-snapshot.data", &snap, &snap_len);
    }
    m = map_as(v.from);
    ASSERT_OK(p2praft__hc_decode_request(&m, &v.req, snap, snap_len, &local,
                                         v.from_id, v.from, &msg, &q));
    ASSERT_EQ_U64(msg.server_id, v.from_id);
    ASSERT_EQ(q.type, v.req.type);
    if (v.req.type == P2PRAFT__HC_APPEND_ENTRIES) {
        const struct p2praft__hc_append_entries *h = &v.req.append_entries;
        ASSERT_EQ(msg.type, RAFT_APPEND_ENTRIES);
        ASSERT_EQ_U64(msg.append_entries.term, h->term);
        ASSERT_EQ_U64(msg.append_entries.prev_log_index, h->prev_log_entry);
        ASSERT_EQ_U64(msg.append_entries.prev_log_term, h->prev_log_term);
        ASSERT_EQ_U64(msg.append_entries.leader_commit, h->leader_commit_index);
        ASSERT_EQ(msg.append_entries.n_entries, h->n_entries);
        for (i = 0; i < h->n_entries; i++) {
            check_entry(&h->entries[i], &msg.append_entries.entries[i]);
        }
        ASSERT_EQ(q.prev_log_index, h->prev_log_entry);
        ASSERT_EQ(q.n_entries, h->n_entries);
    }
    /* Back out, as the same node would send it from C. */
    lp2p__buf_init(&wire);
    ASSERT_OK(p2praft__hc_encode_request(&m, &msg, &wire, &p));
    ASSERT_EQ(p.type, q.type);
    ASSERT_EQ_U64(p.term, v.req.type == P2PRAFT__HC_TIMEOUT_NOW ? 9 : q.term);
    ASSERT_OK(p2praft__hc_req_decode(wire.data, wire.len, MAXMSG, &req2, &used));
    ASSERT_EQ(used, wire.len);
    if (req2.type == P2PRAFT__HC_APPEND_ENTRIES) {
        for (i = 0; i < req2.append_entries.n_entries; i++) {
            struct p2praft__hc_time *t = &req2.append_entries.entries[i].appended_at;
            ASSERT(p2praft__hc_time_is_zero(t));
            if (!p2praft__hc_time_is_zero(&v.req.append_entries.entries[i].appended_at)) {
                patched = true;
            }
            *t = v.req.append_entries.entries[i].appended_at;
        }
    }
    lp2p__buf_init(&again);
    ASSERT_OK(p2praft__hc_req_encode(&req2, &again));
    if (again.len != v.len || memcmp(again.data, v.raw, v.len) != 0) {
        test__fail(__FILE__, __LINE__, "%s/%s: Go -> C -> Go differs", dir,
                   name);
    }
    lp2p__buf_free(&again);
    lp2p__buf_free(&wire);
    p2praft__hc_req_release(&req2);
    p2praft__hc_message_release(&msg);
    free(snap);
    vec_free(&v);
    return patched;
}

TEST(hcmap, go_c_go_append_entries)
{
    static const char *names[] = {
        "ae-heartbeat.req",      "ae-no-entries.req",      "ae-command.req",
        "ae-noop.req",           "ae-barrier.req",         "ae-config-voter.req",
        "ae-config-nonvoter.req", "ae-config-staging.req", "ae-several.req",
        "ae-rejected.req"};
    size_t d, i;
    for (d = 0; d < 2; d++) {
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            bool patched = go_c_go(dirs[d], names[i]);
            /* Entry-less requests need no patching at all. */
            if (strcmp(names[i], "ae-heartbeat.req") == 0 ||
                strcmp(names[i], "ae-no-entries.req") == 0) {
                ASSERT(!patched);
            }
        }
    }
}

TEST(hcmap, go_c_go_other_requests)
{
    size_t d;
    for (d = 0; d < 2; d++) {
        ASSERT(!go_c_go(dirs[d], "rv-granted.req"));
        ASSERT(!go_c_go(dirs[d], "rv-denied.req"));
        ASSERT(!go_c_go(dirs[d], "rv-transfer.req"));
        ASSERT(!go_c_go(dirs[d], "timeout-now.req"));
        /* Peers and Configuration rebuilt from libraft's configuration. */
        ASSERT(!go_c_go(dirs[d], "install-snapshot.req"));
    }
    ASSERT(!go_c_go("raft-v1.7.3", "prevote-granted.req"));
    ASSERT(!go_c_go("raft-v1.7.3", "prevote-denied.req"));
}

TEST(hcmap, bootstrap_entry_is_exact)
{
    /* hashicorp's bootstrap LogConfiguration carries the zero time: the
     * whole entry, time included, comes back byte for byte. */
    struct vec v;
    struct raft_message msg;
    struct p2praft__hc_pending q;
    struct p2praft__hc_map m;
    struct lp2p_buf wire;
    struct p2praft__hc_req req2;
    size_t used;
    load_req("raft-v1.6.1", "ae-several.req", &v);
    m = map_as(v.from);
    ASSERT_OK(p2praft__hc_decode_request(&m, &v.req, NULL, 0, NULL, v.from_id,
                                         v.from, &msg, &q));
    lp2p__buf_init(&wire);
    ASSERT_OK(p2praft__hc_encode_request(&m, &msg, &wire, &q));
    ASSERT_OK(p2praft__hc_req_decode(wire.data, wire.len, MAXMSG, &req2, &used));
    ASSERT_EQ(req2.append_entries.entries[0].type, P2PRAFT__HC_LOG_CONFIGURATION);
    ASSERT_EQ(req2.append_entries.entries[0].data.len,
              v.req.append_entries.entries[0].data.len);
    ASSERT_MEM_EQ(req2.append_entries.entries[0].data.p,
                  v.req.append_entries.entries[0].data.p,
                  req2.append_entries.entries[0].data.len);
    ASSERT(p2praft__hc_time_is_zero(&v.req.append_entries.entries[0].appended_at));
    p2praft__hc_req_release(&req2);
    lp2p__buf_free(&wire);
    p2praft__hc_message_release(&msg);
    vec_free(&v);
}

TEST(hcmap, install_snapshot_to_raft)
{
    struct vec v;
    struct raft_message msg;
    struct p2praft__hc_pending q;
    struct p2praft__hc_map m;
    uint8_t *snap;
    size_t snap_len;
    load_req("raft-v1.6.1", "install-snapshot.req", &v);
    load("raft-v1.6.1", "install-snapshot.data", &snap, &snap_len);
    m = map_as(v.from);
    ASSERT_OK(p2praft__hc_decode_request(&m, &v.req, snap, snap_len, NULL,
                                         v.from_id, v.from, &msg, &q));
    ASSERT_EQ(msg.type, RAFT_INSTALL_SNAPSHOT);
    ASSERT_EQ_U64(msg.install_snapshot.last_index,
                  v.req.install_snapshot.last_log_index);
    ASSERT_EQ_U64(msg.install_snapshot.last_term,
                  v.req.install_snapshot.last_log_term);
    ASSERT_EQ_U64(msg.install_snapshot.conf_index,
                  v.req.install_snapshot.configuration_index);
    ASSERT_EQ(msg.install_snapshot.conf.n, 4);
    ASSERT_EQ(msg.install_snapshot.conf.servers[0].role, RAFT_VOTER);
    ASSERT_EQ(msg.install_snapshot.conf.servers[2].role, RAFT_SPARE);
    ASSERT_EQ(msg.install_snapshot.conf.servers[3].role, RAFT_STANDBY);
    ASSERT_EQ(msg.install_snapshot.data.len, snap_len);
    ASSERT_MEM_EQ(msg.install_snapshot.data.base, snap, snap_len);
    ASSERT_EQ_U64(q.last_index, v.req.install_snapshot.last_log_index);
    /* Size must match what followed. */
    p2praft__hc_message_release(&msg);
    ASSERT_ERR(p2praft__hc_decode_request(&m, &v.req, snap, snap_len - 1, NULL,
                                          v.from_id, v.from, &msg, &q),
               LP2P_EINVAL);
    free(snap);
    vec_free(&v);
}

TEST(hcmap, timeout_now_takes_local_position)
{
    struct vec v;
    struct raft_message msg;
    struct p2praft__hc_pending q;
    struct p2praft__hc_map m;
    struct p2praft__hc_local local = {12, 340, 11};
    load_req("raft-v1.6.1", "timeout-now.req", &v);
    m = map_as("12D3KooWSomebodyElse");
    ASSERT_OK(p2praft__hc_decode_request(&m, &v.req, NULL, 0, &local,
                                         v.from_id, v.from, &msg, &q));
    ASSERT_EQ(msg.type, RAFT_TIMEOUT_NOW);
    ASSERT_EQ_U64(msg.timeout_now.term, 12);
    ASSERT_EQ_U64(msg.timeout_now.last_log_index, 340);
    ASSERT_EQ_U64(msg.timeout_now.last_log_term, 11);
    ASSERT_ERR(p2praft__hc_decode_request(&m, &v.req, NULL, 0, NULL, v.from_id,
                                          v.from, &msg, &q),
               LP2P_EINVAL);
    vec_free(&v);
}

/* ---- responses: C answers Go exactly as a Go node does ------------------------- */

/* Answer the captured request `req_name` from libraft's `result` as the
 * node that really answered; the bytes must be that node's response. With
 * `lastlog_from_go`, an AppendEntries success's LastLog is first set to
 * the Go follower's: hashicorp reports its last index from before the
 * append, libraft the index the request proved, and hashicorp leaders read
 * LastLog only in rejections. */
static void c_answers_go(const char *dir, const char *req_name,
                         const char *resp_name, struct raft_message *result,
                         const struct p2praft__hc_local *local,
                         bool lastlog_from_go)
{
    struct vec rq, rs;
    struct raft_message msg;
    struct p2praft__hc_pending q;
    struct p2praft__hc_map m;
    struct lp2p_buf wire;
    char me[128];
    uint8_t *snap = NULL;
    size_t snap_len = 0;
    load_req(dir, req_name, &rq);
    load_resp(dir, resp_name, rq.req.type, &rs);
    if (rq.req.type == P2PRAFT__HC_INSTALL_SNAPSHOT) {
        load(dir, "install-snapshot.data", &snap, &snap_len);
    }
    m = map_as(rq.from);
    ASSERT_OK(p2praft__hc_decode_request(&m, &rq.req, snap, snap_len, local,
                                         rq.from_id, rq.from, &msg, &q));
    p2praft__hc_message_release(&msg);
    /* We are the responder: its identity from the captured header (empty
     * for InstallSnapshot, whose response has none: any ID will do). */
    if (rs.resp.append_entries.header.id.p != NULL) {
        memcpy(me, rs.resp.append_entries.header.id.p,
               rs.resp.append_entries.header.id.len);
        me[rs.resp.append_entries.header.id.len] = '\0';
    } else {
        strcpy(me, rq.from);
    }
    m = map_as(me);
    if (!p2praft__hc_reply_matches(&q, result)) {
        test__fail(__FILE__, __LINE__, "%s/%s: result does not match", dir,
                   req_name);
    }
    lp2p__buf_init(&wire);
    ASSERT_OK(p2praft__hc_encode_reply(&m, &q, result, local, &wire));
    if (lastlog_from_go) {
        struct p2praft__hc_resp mine;
        struct lp2p_buf patched;
        size_t used;
        ASSERT_OK(p2praft__hc_resp_decode(0, wire.data, wire.len, MAXMSG,
                                          &mine, &used));
        ASSERT(mine.append_entries.success);
        ASSERT_EQ_U64(mine.append_entries.last_log,
                      result->append_entries_result.last_log_index);
        mine.append_entries.last_log = rs.resp.append_entries.last_log;
        lp2p__buf_init(&patched);
        /* mine borrows from wire: encode before wire goes. */
        ASSERT_OK(p2praft__hc_resp_encode(&mine, &patched));
        lp2p__buf_free(&wire);
        wire = patched;
    }
    if (wire.len != rs.len || memcmp(wire.data, rs.raw, rs.len) != 0) {
        char a[1024], b[1024];
        test__hex(wire.data, wire.len < 500 ? wire.len : 500, a);
        test__hex(rs.raw, rs.len < 500 ? rs.len : 500, b);
        test__fail(__FILE__, __LINE__, "%s/%s: C reply differs from Go's:\n%s\n%s",
                   dir, resp_name, a, b);
    }
    lp2p__buf_free(&wire);
    free(snap);
    vec_free(&rq);
    vec_free(&rs);
}

static struct raft_message ae_result(raft_term term, raft_index rejected,
                                     raft_index last)
{
    struct raft_message r;
    memset(&r, 0, sizeof(r));
    r.type = RAFT_APPEND_ENTRIES_RESULT;
    r.append_entries_result.version = 2;
    r.append_entries_result.term = term;
    r.append_entries_result.rejected = rejected;
    r.append_entries_result.last_log_index = last;
    return r;
}

static struct raft_message rv_result(raft_term term, bool granted, bool pre)
{
    struct raft_message r;
    memset(&r, 0, sizeof(r));
    r.type = RAFT_REQUEST_VOTE_RESULT;
    r.request_vote_result.version = 2;
    r.request_vote_result.term = term;
    r.request_vote_result.vote_granted = granted;
    r.request_vote_result.pre_vote = pre;
    return r;
}

TEST(hcmap, c_replies_as_go_does)
{
    size_t d;
    for (d = 0; d < 2; d++) {
        struct vec rs;
        struct raft_message r;
        /* AppendEntries successes: libraft's result says what the request
         * proved (PrevLogEntry + entries). */
        const char *ok[] = {"ae-heartbeat", "ae-command", "ae-noop",
                            "ae-barrier", "ae-no-entries"};
        size_t i;
        for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
            char rq[64], rp[64];
            struct vec v;
            raft_index proved, prev;
            snprintf(rq, sizeof(rq), "%s.req", ok[i]);
            snprintf(rp, sizeof(rp), "%s.resp", ok[i]);
            load_req(dirs[d], rq, &v);
            prev = v.req.append_entries.prev_log_entry;
            proved = prev + v.req.append_entries.n_entries;
            vec_free(&v);
            load_resp(dirs[d], rp, 0, &rs);
            ASSERT(rs.resp.append_entries.success);
            r = ae_result(rs.resp.append_entries.term, 0, proved);
            /* Entry-less requests: hashicorp's LastLog is then >= what
             * they prove, and libraft may report it: same bytes. */
            if (proved == prev &&
                rs.resp.append_entries.last_log >= proved) {
                r.append_entries_result.last_log_index =
                    rs.resp.append_entries.last_log;
                vec_free(&rs);
                c_answers_go(dirs[d], rq, rp, &r, NULL, false);
            } else {
                vec_free(&rs);
                c_answers_go(dirs[d], rq, rp, &r, NULL, true);
            }
        }
        /* A log mismatch: rejected = PrevLogEntry, NoRetryBackoff. */
        {
            struct vec rq;
            load_req(dirs[d], "ae-rejected.req", &rq);
            load_resp(dirs[d], "ae-rejected.resp", 0, &rs);
            ASSERT(!rs.resp.append_entries.success);
            r = ae_result(rs.resp.append_entries.term,
                          rq.req.append_entries.prev_log_entry,
                          rs.resp.append_entries.last_log);
            vec_free(&rs);
            vec_free(&rq);
            c_answers_go(dirs[d], "ae-rejected.req", "ae-rejected.resp", &r,
                         NULL, false);
        }
        /* Votes. */
        load_resp(dirs[d], "rv-granted.resp", 1, &rs);
        r = rv_result(rs.resp.request_vote.term, true, false);
        vec_free(&rs);
        c_answers_go(dirs[d], "rv-granted.req", "rv-granted.resp", &r, NULL,
                     false);
        load_resp(dirs[d], "rv-denied.resp", 1, &rs);
        r = rv_result(rs.resp.request_vote.term, false, false);
        vec_free(&rs);
        c_answers_go(dirs[d], "rv-denied.req", "rv-denied.resp", &r, NULL,
                     false);
        /* InstallSnapshot: libraft answers with an AppendEntries result. */
        {
            struct vec rq;
            load_req(dirs[d], "install-snapshot.req", &rq);
            r = ae_result(rq.req.install_snapshot.term, 0,
                          rq.req.install_snapshot.last_log_index);
            vec_free(&rq);
            c_answers_go(dirs[d], "install-snapshot.req",
                         "install-snapshot.resp", &r, NULL, false);
        }
    }
    /* Pre-votes: libraft echoes the request's term, as hashicorp does when
     * it grants. */
    {
        struct vec rq, rs;
        struct raft_message r;
        load_req("raft-v1.7.3", "prevote-granted.req", &rq);
        r = rv_result(rq.req.request_pre_vote.term, true, true);
        c_answers_go("raft-v1.7.3", "prevote-granted.req",
                     "prevote-granted.resp", &r, NULL, false);
        vec_free(&rq);
        load_resp("raft-v1.7.3", "prevote-denied.resp", 4, &rs);
        load_req("raft-v1.7.3", "prevote-denied.req", &rq);
        /* hashicorp denied with its own (older) term; libraft would echo the
         * request's. Only when they agree are the bytes the same. */
        if (rs.resp.request_pre_vote.term == rq.req.request_pre_vote.term) {
            r = rv_result(rq.req.request_pre_vote.term, false, true);
            c_answers_go("raft-v1.7.3", "prevote-denied.req",
                         "prevote-denied.resp", &r, NULL, false);
        }
        vec_free(&rq);
        vec_free(&rs);
    }
    /* TimeoutNow: an empty response, at once. */
    {
        struct vec rs;
        struct lp2p_buf wire;
        load_resp("raft-v1.6.1", "timeout-now.resp", 3, &rs);
        lp2p__buf_init(&wire);
        ASSERT_OK(p2praft__hc_encode_timeout_now_reply(&wire));
        ASSERT_EQ(wire.len, rs.len);
        ASSERT_MEM_EQ(wire.data, rs.raw, rs.len);
        lp2p__buf_free(&wire);
        vec_free(&rs);
    }
}

TEST(hcmap, error_replies_as_hashicorp)
{
    struct lp2p_buf wire;
    uint8_t *raw;
    size_t len;
    lp2p__buf_init(&wire);
    ASSERT_OK(p2praft__hc_encode_error_reply(P2PRAFT__HC_REQUEST_PRE_VOTE,
                                             LP2P_EPROTO, &wire));
    load("synthetic", "error-unexpected-command.resp", &raw, &len);
    ASSERT_EQ(wire.len, len);
    ASSERT_MEM_EQ(wire.data, raw, len);
    free(raw);
    wire.len = 0;
    ASSERT_OK(p2praft__hc_encode_error_reply(P2PRAFT__HC_APPEND_ENTRIES,
                                             LP2P_EUNSUPPORTED, &wire));
    load("synthetic", "error-unsupported-protocol.resp", &raw, &len);
    ASSERT_EQ(wire.len, len);
    ASSERT_MEM_EQ(wire.data, raw, len);
    free(raw);
    lp2p__buf_free(&wire);
}

/* ---- responses Go sends to a C node ------------------------------------------ */

static struct p2praft__hc_resp hc_ae_resp(uint64_t term, uint64_t last,
                                          bool success)
{
    struct p2praft__hc_resp r;
    memset(&r, 0, sizeof(r));
    r.type = P2PRAFT__HC_APPEND_ENTRIES;
    r.error.p = (const uint8_t *)"";
    r.append_entries.term = term;
    r.append_entries.last_log = last;
    r.append_entries.success = success;
    return r;
}

TEST(hcmap, go_append_entries_response_to_raft)
{
    struct p2praft__hc_pending p = {P2PRAFT__HC_APPEND_ENTRIES, 5, 10, 3, 0};
    struct p2praft__hc_resp r;
    struct raft_message out;
    bool deliver;
    /* Success: last_log_index is what this request proved (10 + 3), not the
     * follower's LastLog (which may count a stale suffix). */
    r = hc_ae_resp(5, 40, true);
    ASSERT_OK(p2praft__hc_decode_response(&p, &r, 7, "peer", &out, &deliver));
    ASSERT(deliver);
    ASSERT_EQ(out.type, RAFT_APPEND_ENTRIES_RESULT);
    ASSERT_EQ_U64(out.server_id, 7);
    ASSERT_STR_EQ(out.server_address, "peer");
    ASSERT_EQ_U64(out.append_entries_result.rejected, 0);
    ASSERT_EQ_U64(out.append_entries_result.last_log_index, 13);
    ASSERT_EQ_U64(out.append_entries_result.term, 5);
    /* Log mismatch: rejected = PrevLogEntry; the hint stays below it. */
    r = hc_ae_resp(5, 40, false);
    ASSERT_OK(p2praft__hc_decode_response(&p, &r, 7, "peer", &out, &deliver));
    ASSERT(deliver);
    ASSERT_EQ_U64(out.append_entries_result.rejected, 10);
    ASSERT_EQ_U64(out.append_entries_result.last_log_index, 9);
    r = hc_ae_resp(5, 4, false);
    ASSERT_OK(p2praft__hc_decode_response(&p, &r, 7, "peer", &out, &deliver));
    ASSERT_EQ_U64(out.append_entries_result.last_log_index, 4);
    /* Stale leader: the higher term is what matters. */
    r = hc_ae_resp(8, 40, false);
    ASSERT_OK(p2praft__hc_decode_response(&p, &r, 7, "peer", &out, &deliver));
    ASSERT(deliver);
    ASSERT_EQ_U64(out.append_entries_result.term, 8);
    ASSERT(out.append_entries_result.rejected != 0 ||
           out.append_entries_result.term > p.term);
    /* A heartbeat (PrevLogEntry 0) refused at the same term is not a log
     * mismatch: nothing to tell libraft (rejected 0 would read as success). */
    {
        struct p2praft__hc_pending hb = {P2PRAFT__HC_APPEND_ENTRIES, 5, 0, 0, 0};
        r = hc_ae_resp(5, 40, false);
        ASSERT_OK(p2praft__hc_decode_response(&hb, &r, 7, "peer", &out,
                                              &deliver));
        ASSERT(!deliver);
    }
    /* Error responses carry nothing. */
    r = hc_ae_resp(5, 40, true);
    r.error.p = (const uint8_t *)"boom";
    r.error.len = 4;
    ASSERT_OK(p2praft__hc_decode_response(&p, &r, 7, "peer", &out, &deliver));
    ASSERT(!deliver);
    r.error.len = 0;
    r.nil = true;
    ASSERT_OK(p2praft__hc_decode_response(&p, &r, 7, "peer", &out, &deliver));
    ASSERT(!deliver);
    /* A response of another rpc type is a caller bug. */
    r = hc_ae_resp(5, 40, true);
    r.type = P2PRAFT__HC_REQUEST_VOTE;
    ASSERT_ERR(p2praft__hc_decode_response(&p, &r, 7, "peer", &out, &deliver),
               LP2P_EINVAL);
}

TEST(hcmap, go_snapshot_and_vote_responses_to_raft)
{
    struct p2praft__hc_pending is = {P2PRAFT__HC_INSTALL_SNAPSHOT, 4, 0, 0, 77};
    struct p2praft__hc_pending pv = {P2PRAFT__HC_REQUEST_PRE_VOTE, 6, 0, 0, 0};
    struct p2praft__hc_pending tn = {P2PRAFT__HC_TIMEOUT_NOW, 6, 0, 0, 0};
    struct p2praft__hc_resp r;
    struct raft_message out;
    bool deliver;
    memset(&r, 0, sizeof(r));
    r.type = P2PRAFT__HC_INSTALL_SNAPSHOT;
    r.error.p = (const uint8_t *)"";
    r.install_snapshot.term = 4;
    r.install_snapshot.success = true;
    ASSERT_OK(p2praft__hc_decode_response(&is, &r, 7, "peer", &out, &deliver));
    ASSERT(deliver);
    ASSERT_EQ(out.type, RAFT_APPEND_ENTRIES_RESULT);
    ASSERT_EQ_U64(out.append_entries_result.rejected, 0);
    ASSERT_EQ_U64(out.append_entries_result.last_log_index, 77);
    r.install_snapshot.success = false;
    ASSERT_OK(p2praft__hc_decode_response(&is, &r, 7, "peer", &out, &deliver));
    ASSERT_EQ_U64(out.append_entries_result.rejected, 77);
    ASSERT(out.append_entries_result.last_log_index < 77);

    memset(&r, 0, sizeof(r));
    r.type = P2PRAFT__HC_REQUEST_PRE_VOTE;
    r.error.p = (const uint8_t *)"";
    r.request_pre_vote.term = 6;
    r.request_pre_vote.granted = true;
    ASSERT_OK(p2praft__hc_decode_response(&pv, &r, 7, "peer", &out, &deliver));
    ASSERT(deliver);
    ASSERT(out.request_vote_result.pre_vote);
    ASSERT(out.request_vote_result.vote_granted);
    ASSERT_EQ(out.request_vote_result.version, 2);
    /* A grant in a later term than asked would trip libraft's assert: it
     * becomes the denial that carries the newer term. */
    r.request_pre_vote.term = 9;
    ASSERT_OK(p2praft__hc_decode_response(&pv, &r, 7, "peer", &out, &deliver));
    ASSERT(!out.request_vote_result.vote_granted);
    ASSERT_EQ_U64(out.request_vote_result.term, 9);
    /* "unexpected command": hashicorp 1.7 counts it as granted; so do we. */
    memset(&r, 0, sizeof(r));
    r.type = P2PRAFT__HC_REQUEST_PRE_VOTE;
    r.nil = true;
    r.error.p = (const uint8_t *)"unexpected command";
    r.error.len = strlen("unexpected command");
    ASSERT_OK(p2praft__hc_decode_response(&pv, &r, 7, "peer", &out, &deliver));
    ASSERT(deliver);
    ASSERT(out.request_vote_result.vote_granted);
    ASSERT_EQ_U64(out.request_vote_result.term, 6);
    /* TimeoutNow responses carry nothing for libraft. */
    memset(&r, 0, sizeof(r));
    r.type = P2PRAFT__HC_TIMEOUT_NOW;
    r.error.p = (const uint8_t *)"";
    ASSERT_OK(p2praft__hc_decode_response(&tn, &r, 7, "peer", &out, &deliver));
    ASSERT(!deliver);
}

/* ---- which libraft result answers which pending request ---------------------- */

TEST(hcmap, reply_matching)
{
    struct p2praft__hc_pending hb = {P2PRAFT__HC_APPEND_ENTRIES, 3, 0, 0, 0};
    struct p2praft__hc_pending a = {P2PRAFT__HC_APPEND_ENTRIES, 3, 10, 2, 0};
    struct p2praft__hc_pending b = {P2PRAFT__HC_APPEND_ENTRIES, 3, 12, 5, 0};
    struct p2praft__hc_pending is = {P2PRAFT__HC_INSTALL_SNAPSHOT, 3, 0, 0, 50};
    struct p2praft__hc_pending rv = {P2PRAFT__HC_REQUEST_VOTE, 3, 0, 0, 0};
    struct p2praft__hc_pending pv = {P2PRAFT__HC_REQUEST_PRE_VOTE, 4, 0, 0, 0};
    struct raft_message r;
    /* A heartbeat answered by libraft's synchronous reply. */
    r = ae_result(3, 0, 0);
    ASSERT(p2praft__hc_reply_matches(&hb, &r));
    ASSERT(!p2praft__hc_reply_matches(&a, &r));
    /* Persisted up to 12: a (10+2) is answered, b (12+5) waits. */
    r = ae_result(3, 0, 12);
    ASSERT(p2praft__hc_reply_matches(&a, &r));
    ASSERT(!p2praft__hc_reply_matches(&b, &r));
    r = ae_result(3, 0, 17);
    ASSERT(p2praft__hc_reply_matches(&b, &r));
    /* A rejection answers the request with that PrevLogEntry only. */
    r = ae_result(3, 12, 11);
    ASSERT(p2praft__hc_reply_matches(&b, &r));
    ASSERT(!p2praft__hc_reply_matches(&a, &r));
    /* A stale leader's heartbeat: libraft rejects with rejected = 0 and a
     * higher term; that is a rejection, not a success. */
    r = ae_result(5, 0, 0);
    ASSERT(p2praft__hc_reply_matches(&hb, &r));
    {
        struct p2praft__hc_map m = map_as("12D3KooWx");
        struct p2praft__hc_local local = {5, 33, 5};
        struct lp2p_buf wire;
        struct p2praft__hc_resp resp;
        size_t used;
        lp2p__buf_init(&wire);
        ASSERT_OK(p2praft__hc_encode_reply(&m, &hb, &r, &local, &wire));
        ASSERT_OK(p2praft__hc_resp_decode(0, wire.data, wire.len, MAXMSG,
                                          &resp, &used));
        ASSERT(!resp.append_entries.success);
        ASSERT(!resp.append_entries.no_retry_backoff);
        ASSERT_EQ_U64(resp.append_entries.term, 5);
        ASSERT_EQ_U64(resp.append_entries.last_log, 33);
        lp2p__buf_free(&wire);
    }
    /* Snapshots: answered by the AppendEntries result that follows. */
    r = ae_result(3, 0, 49);
    ASSERT(!p2praft__hc_reply_matches(&is, &r));
    r = ae_result(3, 0, 50);
    ASSERT(p2praft__hc_reply_matches(&is, &r));
    r = ae_result(3, 50, 0);
    ASSERT(p2praft__hc_reply_matches(&is, &r));
    /* Votes and pre-votes do not answer each other. */
    r = rv_result(3, true, false);
    ASSERT(p2praft__hc_reply_matches(&rv, &r));
    ASSERT(!p2praft__hc_reply_matches(&pv, &r));
    r = rv_result(4, false, true);
    ASSERT(p2praft__hc_reply_matches(&pv, &r));
    ASSERT(!p2praft__hc_reply_matches(&rv, &r));
    ASSERT(!p2praft__hc_reply_matches(&a, &r));
    {
        struct p2praft__hc_map m = map_as("12D3KooWx");
        struct lp2p_buf wire;
        lp2p__buf_init(&wire);
        ASSERT_ERR(p2praft__hc_encode_reply(&m, &rv, &r, NULL, &wire),
                   LP2P_EINVAL);
        ASSERT_EQ(wire.len, 0);
        lp2p__buf_free(&wire);
    }
}

/* ---- C leader -> Go: what libraft sends ---------------------------------------- */

/* A real peer ID for hand-made messages: a captured vector's sender. */
static void some_peer(char *out, size_t cap, raft_id *id)
{
    struct vec v;
    load_req("raft-v1.6.1", "ae-heartbeat.req", &v);
    ASSERT(strlen(v.from) < cap);
    strcpy(out, v.from);
    *id = v.from_id;
    vec_free(&v);
}

static void encode_and_decode(const struct p2praft__hc_map *m,
                              const struct raft_message *msg,
                              struct p2praft__hc_req *req,
                              struct lp2p_buf *wire)
{
    struct p2praft__hc_pending p;
    size_t used;
    lp2p__buf_init(wire);
    ASSERT_OK(p2praft__hc_encode_request(m, msg, wire, &p));
    ASSERT_OK(p2praft__hc_req_decode(wire->data, wire->len, MAXMSG, req, &used));
    ASSERT_EQ(used, wire->len);
}

TEST(hcmap, c_leader_entries)
{
    char me[128];
    raft_id my_id;
    struct p2praft__hc_map m;
    struct raft_entry e[4];
    struct raft_message msg;
    struct p2praft__hc_req req;
    struct lp2p_buf wire;
    struct raft_configuration conf;
    struct raft_buffer cbuf;
    uint8_t cmd[] = {0x81, 0xa5, 'V', 'a', 'l', 'u', 'e', 0x07};
    uint8_t zeros[8] = {0};
    uint8_t junk[8] = {0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab};
    struct p2praft__hc_configuration hc;
    some_peer(me, sizeof(me), &my_id);
    m = map_as(me);
    raft_configuration_init(&conf);
    ASSERT_EQ(raft_configuration_add(&conf, my_id, me, RAFT_VOTER), 0);
    ASSERT_EQ(raft_configuration_encode(&conf, &cbuf), 0);
    memset(e, 0, sizeof(e));
    e[0].term = 2; e[0].type = RAFT_BARRIER;   /* libraft's election no-op */
    e[0].buf.base = zeros; e[0].buf.len = 8;
    e[1].term = 2; e[1].type = RAFT_COMMAND;
    e[1].buf.base = cmd; e[1].buf.len = sizeof(cmd);
    e[2].term = 3; e[2].type = RAFT_BARRIER;   /* raft_barrier(): any bytes */
    e[2].buf.base = junk; e[2].buf.len = 8;
    e[3].term = 3; e[3].type = RAFT_CHANGE;
    e[3].buf = cbuf;
    memset(&msg, 0, sizeof(msg));
    msg.type = RAFT_APPEND_ENTRIES;
    msg.append_entries.term = 3;
    msg.append_entries.prev_log_index = 5;
    msg.append_entries.prev_log_term = 1;
    msg.append_entries.leader_commit = 100; /* capped to 5 + 4 */
    msg.append_entries.entries = e;
    msg.append_entries.n_entries = 4;
    encode_and_decode(&m, &msg, &req, &wire);
    ASSERT_EQ_U64(req.append_entries.leader_commit_index, 9);
    ASSERT(!req.append_entries.entries_nil);
    ASSERT_EQ(req.append_entries.n_entries, 4);
    ASSERT_EQ(req.append_entries.entries[0].type, P2PRAFT__HC_LOG_NOOP);
    ASSERT(req.append_entries.entries[0].data.p == NULL);
    ASSERT_EQ(req.append_entries.entries[1].type, P2PRAFT__HC_LOG_COMMAND);
    ASSERT_EQ(req.append_entries.entries[1].data.len, sizeof(cmd));
    ASSERT_EQ(req.append_entries.entries[2].type, P2PRAFT__HC_LOG_BARRIER);
    ASSERT_EQ(req.append_entries.entries[3].type,
              P2PRAFT__HC_LOG_CONFIGURATION);
    ASSERT_EQ_U64(req.append_entries.entries[3].index, 9);
    ASSERT_EQ_U64(req.append_entries.entries[3].term, 3);
    ASSERT(p2praft__hc_time_is_zero(&req.append_entries.entries[3].appended_at));
    ASSERT(req.append_entries.entries[3].extensions.p == NULL);
    ASSERT_OK(p2praft__hc_conf_decode(req.append_entries.entries[3].data.p,
                                      req.append_entries.entries[3].data.len,
                                      &hc));
    ASSERT_EQ(hc.n, 1);
    ASSERT_EQ(hc.servers[0].suffrage, P2PRAFT__HC_VOTER);
    ASSERT_EQ(hc.servers[0].id.len, strlen(me));
    ASSERT_MEM_EQ(hc.servers[0].id.p, me, strlen(me));
    p2praft__hc_conf_release(&hc);
    p2praft__hc_req_release(&req);
    lp2p__buf_free(&wire);
    /* And back through the Go side's eyes: LogBarrier -> barrier payload 1,
     * distinct from the no-op. */
    {
        struct raft_message back;
        struct p2praft__hc_pending q;
        struct p2praft__hc_req r2;
        encode_and_decode(&m, &msg, &r2, &wire);
        ASSERT_OK(p2praft__hc_decode_request(&m, &r2, NULL, 0, NULL, my_id, me,
                                             &back, &q));
        ASSERT_MEM_EQ(back.append_entries.entries[0].buf.base, zeros, 8);
        ASSERT_MEM_EQ(back.append_entries.entries[2].buf.base,
                      "\1\0\0\0\0\0\0\0", 8);
        ASSERT_EQ(back.append_entries.entries[3].type, RAFT_CHANGE);
        ASSERT_EQ(back.append_entries.entries[3].buf.len, cbuf.len);
        ASSERT_MEM_EQ(back.append_entries.entries[3].buf.base, cbuf.base,
                      cbuf.len);
        p2praft__hc_message_release(&back);
        p2praft__hc_req_release(&r2);
        lp2p__buf_free(&wire);
    }
    /* A configuration whose address does not name its ID cannot be said in
     * hashicorp's terms (ServerID == ServerAddress). */
    raft_free(cbuf.base);
    raft_configuration_close(&conf);
    raft_configuration_init(&conf);
    ASSERT_EQ(raft_configuration_add(&conf, my_id + 1, me, RAFT_VOTER), 0);
    ASSERT_EQ(raft_configuration_encode(&conf, &cbuf), 0);
    e[3].buf = cbuf;
    lp2p__buf_init(&wire);
    {
        struct p2praft__hc_pending p;
        ASSERT_ERR(p2praft__hc_encode_request(&m, &msg, &wire, &p),
                   LP2P_EPROTO);
        ASSERT_EQ(wire.len, 0);
    }
    lp2p__buf_free(&wire);
    raft_free(cbuf.base);
    raft_configuration_close(&conf);
}

TEST(hcmap, c_leader_heartbeat_shapes)
{
    char me[128];
    raft_id my_id;
    struct p2praft__hc_map m;
    struct raft_message msg;
    struct p2praft__hc_req req;
    struct lp2p_buf wire;
    some_peer(me, sizeof(me), &my_id);
    m = map_as(me);
    memset(&msg, 0, sizeof(msg));
    msg.type = RAFT_APPEND_ENTRIES;
    msg.append_entries.term = 2;
    /* The shape of a Go heartbeat: nil Entries. */
    encode_and_decode(&m, &msg, &req, &wire);
    ASSERT(req.append_entries.entries_nil);
    lp2p__buf_free(&wire);
    /* libraft's heartbeats carry its log position: an empty array. */
    msg.append_entries.prev_log_index = 7;
    msg.append_entries.prev_log_term = 2;
    msg.append_entries.leader_commit = 7;
    encode_and_decode(&m, &msg, &req, &wire);
    ASSERT(!req.append_entries.entries_nil);
    ASSERT_EQ_U64(req.append_entries.leader_commit_index, 7);
    lp2p__buf_free(&wire);
    msg.append_entries.leader_commit = 9; /* beyond what this proves */
    encode_and_decode(&m, &msg, &req, &wire);
    ASSERT_EQ_U64(req.append_entries.leader_commit_index, 7);
    lp2p__buf_free(&wire);
    /* Results are replies, not requests. */
    msg.type = RAFT_APPEND_ENTRIES_RESULT;
    lp2p__buf_init(&wire);
    {
        struct p2praft__hc_pending p;
        ASSERT_ERR(p2praft__hc_encode_request(&m, &msg, &wire, &p),
                   LP2P_EINVAL);
    }
    lp2p__buf_free(&wire);
}

TEST(hcmap, c_candidate_votes)
{
    char me[128];
    raft_id my_id;
    struct p2praft__hc_map m;
    struct raft_message msg;
    struct p2praft__hc_req req;
    struct lp2p_buf wire;
    some_peer(me, sizeof(me), &my_id);
    m = map_as(me);
    memset(&msg, 0, sizeof(msg));
    msg.type = RAFT_REQUEST_VOTE;
    msg.request_vote.term = 4;
    msg.request_vote.candidate_id = my_id;
    msg.request_vote.last_log_index = 20;
    msg.request_vote.last_log_term = 3;
    msg.request_vote.disrupt_leader = true;
    encode_and_decode(&m, &msg, &req, &wire);
    ASSERT_EQ(req.type, P2PRAFT__HC_REQUEST_VOTE);
    ASSERT(req.request_vote.leadership_transfer);
    ASSERT_EQ(req.request_vote.candidate.len, strlen(me));
    ASSERT_EQ_U64(req.request_vote.last_log_index, 20);
    lp2p__buf_free(&wire);
    msg.request_vote.pre_vote = true;
    msg.request_vote.disrupt_leader = false;
    encode_and_decode(&m, &msg, &req, &wire);
    ASSERT_EQ(req.type, P2PRAFT__HC_REQUEST_PRE_VOTE);
    ASSERT_EQ_U64(req.request_pre_vote.term, 4);
    ASSERT_EQ_U64(req.request_pre_vote.last_log_term, 3);
    lp2p__buf_free(&wire);
}

/* ---- refusals: what libraft must never see ---------------------------------------- */

static int decode_patched(const char *name,
                          void (*patch)(struct p2praft__hc_req *),
                          const char *from_override)
{
    struct vec v;
    struct raft_message msg;
    struct p2praft__hc_pending q;
    struct p2praft__hc_map m;
    struct p2praft__hc_local local = {1, 1, 1};
    int rv;
    load_req("raft-v1.6.1", name, &v);
    m = map_as(v.from);
    if (patch != NULL) {
        patch(&v.req);
    }
    rv = p2praft__hc_decode_request(
        &m, &v.req, NULL, 0, &local, v.from_id,
        from_override != NULL ? from_override : v.from, &msg, &q);
    if (rv == 0) {
        p2praft__hc_message_release(&msg);
    } else {
        ASSERT_EQ(msg.type, 0);
    }
    vec_free(&v);
    return rv;
}

static void p_version1(struct p2praft__hc_req *r) { r->append_entries.header.protocol_version = 1; }
static void p_gap(struct p2praft__hc_req *r) { r->append_entries.entries[0].index++; }
static void p_term0(struct p2praft__hc_req *r) { r->append_entries.entries[0].term = 0; }
static void p_future(struct p2praft__hc_req *r) { r->append_entries.entries[0].term = r->append_entries.term + 1; }
static void p_backwards(struct p2praft__hc_req *r) { r->append_entries.entries[0].term = r->append_entries.prev_log_term - 1; }
static void p_prevterm(struct p2praft__hc_req *r) { r->append_entries.prev_log_term = 0; }
static void p_heartbeat_term(struct p2praft__hc_req *r) { r->append_entries.prev_log_term = 1; }
static void p_ext(struct p2praft__hc_req *r)
{
    r->append_entries.entries[0].extensions.p = (const uint8_t *)"x";
    r->append_entries.entries[0].extensions.len = 1;
}
static void p_noop_data(struct p2praft__hc_req *r)
{
    r->append_entries.entries[0].data.p = (const uint8_t *)"x";
    r->append_entries.entries[0].data.len = 1;
}
static void p_type(struct p2praft__hc_req *r) { r->append_entries.entries[0].type = 9; }
static void p_leader(struct p2praft__hc_req *r) { r->append_entries.leader.len--; }
static void p_snapver(struct p2praft__hc_req *r) { r->install_snapshot.snapshot_version = 0; }
static void p_candidate(struct p2praft__hc_req *r) { r->request_vote.candidate.len--; }

TEST(hcmap, refusals)
{
    ASSERT_ERR(decode_patched("ae-command.req", p_version1, NULL),
               LP2P_EUNSUPPORTED);
    /* Another peer's stream cannot speak for this one. */
    ASSERT_ERR(decode_patched("ae-command.req", NULL, "12D3KooWNotTheSender"),
               LP2P_EPEERID);
    ASSERT_ERR(decode_patched("ae-command.req", p_leader, NULL), LP2P_EPEERID);
    ASSERT_ERR(decode_patched("rv-granted.req", p_candidate, NULL),
               LP2P_EPEERID);
    ASSERT_ERR(decode_patched("ae-command.req", p_gap, NULL), LP2P_EPROTO);
    ASSERT_ERR(decode_patched("ae-command.req", p_term0, NULL), LP2P_EPROTO);
    ASSERT_ERR(decode_patched("ae-command.req", p_future, NULL), LP2P_EPROTO);
    ASSERT_ERR(decode_patched("ae-command.req", p_backwards, NULL), LP2P_EPROTO);
    ASSERT_ERR(decode_patched("ae-command.req", p_prevterm, NULL), LP2P_EPROTO);
    ASSERT_ERR(decode_patched("ae-heartbeat.req", p_heartbeat_term, NULL),
               LP2P_EPROTO);
    ASSERT_ERR(decode_patched("ae-command.req", p_ext, NULL), LP2P_EUNSUPPORTED);
    ASSERT_ERR(decode_patched("ae-noop.req", p_noop_data, NULL),
               LP2P_EUNSUPPORTED);
    ASSERT_ERR(decode_patched("ae-command.req", p_type, NULL),
               LP2P_EUNSUPPORTED);
    ASSERT_ERR(decode_patched("install-snapshot.req", p_snapver, NULL),
               LP2P_EUNSUPPORTED);
    /* The unpatched ones pass (the refusals above are the patches). */
    ASSERT_OK(decode_patched("ae-command.req", NULL, NULL));
    ASSERT_OK(decode_patched("ae-heartbeat.req", NULL, NULL));
}

TEST(hcmap, refuses_deprecated_entries)
{
    struct vec v;
    struct raft_message msg;
    struct p2praft__hc_pending q;
    struct p2praft__hc_map m;
    load_req("synthetic", "ae-deprecated-type.req", &v);
    m = map_as(v.from);
    ASSERT_ERR(p2praft__hc_decode_request(&m, &v.req, NULL, 0, NULL, v.from_id,
                                          v.from, &msg, &q),
               LP2P_EUNSUPPORTED);
    vec_free(&v);
}

TEST(hcmap, configuration_must_name_ids)
{
    struct p2praft__hc_map m = map_as("x");
    struct p2praft__hc_server s[2];
    struct p2praft__hc_configuration hc;
    struct raft_configuration conf;
    char me[128];
    raft_id my_id;
    some_peer(me, sizeof(me), &my_id);
    memset(s, 0, sizeof(s));
    memset(&hc, 0, sizeof(hc));
    hc.servers = s;
    hc.n = 1;
    s[0].id.p = (const uint8_t *)me;
    s[0].id.len = strlen(me);
    s[0].address = s[0].id;
    ASSERT_OK(p2praft__hc_conf_to_raft(&m, &hc, &conf));
    ASSERT_EQ(conf.n, 1);
    ASSERT_EQ_U64(conf.servers[0].id, my_id);
    raft_configuration_close(&conf);
    /* ID != Address */
    s[0].address.len--;
    ASSERT_ERR(p2praft__hc_conf_to_raft(&m, &hc, &conf), LP2P_EPROTO);
    ASSERT_EQ(conf.n, 0);
    /* Not a peer ID. */
    s[0].id.p = (const uint8_t *)"node1";
    s[0].id.len = 5;
    s[0].address = s[0].id;
    ASSERT_ERR(p2praft__hc_conf_to_raft(&m, &hc, &conf), LP2P_EPROTO);
    /* The same server twice. */
    s[0].id.p = (const uint8_t *)me;
    s[0].id.len = strlen(me);
    s[0].address = s[0].id;
    s[1] = s[0];
    hc.n = 2;
    ASSERT_ERR(p2praft__hc_conf_to_raft(&m, &hc, &conf), LP2P_EPROTO);
    /* An unknown suffrage. */
    hc.n = 1;
    s[0].suffrage = 5;
    ASSERT_ERR(p2praft__hc_conf_to_raft(&m, &hc, &conf), LP2P_EPROTO);
}

/* A peer ID from a fixed seed (its string into out, its raft ID). */
static void seeded_peer(uint8_t seed_byte, char *out, size_t cap, raft_id *id)
{
    struct lp2p_key k;
    struct lp2p_peer_id pid;
    uint8_t seed[32];
    memset(seed, seed_byte, sizeof(seed));
    ASSERT_OK(lp2p_key_from_seed(&k, seed));
    ASSERT_OK(lp2p_peer_id_from_key(&k, &pid));
    ASSERT_OK(lp2p_peer_id_to_string(&pid, out, cap));
    *id = p2praft_server_id(&pid);
}

/* What a C leader tells Go nodes about its servers: ServerID = ServerAddress
 * = exactly the peer ID string, whether the server's raft address is that
 * string (a bootstrapped member, or one added on the hashicorp wire) or a
 * multiaddr (a member added with its address on p2praft's own wire, or
 * restored so): go-libp2p-raft dials an Address as a peer ID. */
TEST(hcmap, configuration_addresses_are_peer_ids)
{
    char a[128], b[128], c[128], ma_b[256], ma_c[256];
    raft_id ida, idb, idc;
    struct p2praft__hc_map m;
    struct raft_configuration conf, back;
    struct p2praft__hc_configuration hc, dec;
    struct raft_entry e;
    struct raft_message msg;
    struct p2praft__hc_req req;
    struct lp2p_buf wire;
    struct raft_buffer cbuf;
    const char *want[3];
    unsigned i;
    seeded_peer(1, a, sizeof(a), &ida);
    seeded_peer(2, b, sizeof(b), &idb);
    seeded_peer(3, c, sizeof(c), &idc);
    snprintf(ma_b, sizeof(ma_b), "/ip4/127.0.0.1/tcp/4001/p2p/%s", b);
    snprintf(ma_c, sizeof(ma_c), "/ip6/::1/tcp/4002/p2p/%s", c);
    want[0] = a;
    want[1] = b;
    want[2] = c;
    m = map_as(a);
    raft_configuration_init(&conf);
    ASSERT_EQ(raft_configuration_add(&conf, ida, a, RAFT_VOTER), 0);
    ASSERT_EQ(raft_configuration_add(&conf, idb, ma_b, RAFT_STANDBY), 0);
    ASSERT_EQ(raft_configuration_add(&conf, idc, ma_c, RAFT_SPARE), 0);

    ASSERT_OK(p2praft__hc_conf_from_raft(&m, &conf, &hc));
    ASSERT_EQ(hc.n, 3);
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(hc.servers[i].id.len, strlen(want[i]));
        ASSERT_MEM_EQ(hc.servers[i].id.p, want[i], strlen(want[i]));
        ASSERT_EQ(hc.servers[i].address.len, strlen(want[i]));
        ASSERT_MEM_EQ(hc.servers[i].address.p, want[i], strlen(want[i]));
    }
    ASSERT_EQ(hc.servers[1].suffrage, P2PRAFT__HC_NONVOTER);
    ASSERT_EQ(hc.servers[2].suffrage, P2PRAFT__HC_STAGING);
    p2praft__hc_conf_release(&hc);

    /* On the wire, in a LogConfiguration entry of an AppendEntries: the
     * Configuration bytes decode to the same, and a Go node's configuration
     * (through the C side again) has the peer IDs as addresses. */
    ASSERT_EQ(raft_configuration_encode(&conf, &cbuf), 0);
    memset(&e, 0, sizeof(e));
    e.term = 2;
    e.type = RAFT_CHANGE;
    e.buf = cbuf;
    memset(&msg, 0, sizeof(msg));
    msg.type = RAFT_APPEND_ENTRIES;
    msg.append_entries.term = 2;
    msg.append_entries.prev_log_index = 1;
    msg.append_entries.prev_log_term = 1;
    msg.append_entries.leader_commit = 1;
    msg.append_entries.entries = &e;
    msg.append_entries.n_entries = 1;
    encode_and_decode(&m, &msg, &req, &wire);
    ASSERT_EQ(req.append_entries.n_entries, 1);
    ASSERT_EQ(req.append_entries.entries[0].type,
              P2PRAFT__HC_LOG_CONFIGURATION);
    ASSERT_OK(p2praft__hc_conf_decode(req.append_entries.entries[0].data.p,
                                      req.append_entries.entries[0].data.len,
                                      &dec));
    ASSERT_EQ(dec.n, 3);
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(dec.servers[i].id.len, strlen(want[i]));
        ASSERT_MEM_EQ(dec.servers[i].id.p, want[i], strlen(want[i]));
        ASSERT_EQ(dec.servers[i].address.len, strlen(want[i]));
        ASSERT_MEM_EQ(dec.servers[i].address.p, want[i], strlen(want[i]));
    }
    ASSERT_OK(p2praft__hc_conf_to_raft(&m, &dec, &back));
    ASSERT_EQ(back.n, 3);
    for (i = 0; i < 3; i++) {
        ASSERT_EQ_U64(back.servers[i].id, conf.servers[i].id);
        ASSERT_EQ(back.servers[i].role, conf.servers[i].role);
        ASSERT(strcmp(back.servers[i].address, want[i]) == 0);
    }
    raft_configuration_close(&back);
    p2praft__hc_conf_release(&dec);
    p2praft__hc_req_release(&req);
    lp2p__buf_free(&wire);
    raft_free(cbuf.base);

    /* Addresses that name no peer, or another peer than the server's ID,
     * cannot be said: refused, nothing allocated. */
    {
        const char *bad[] = {"/ip4/127.0.0.1/tcp/4001", "/p2p", "/p2p/",
                             "/ip4/127.0.0.1/tcp/4001/p2p/notapeer", ma_c,
                             "x/p2p/", ""};
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            struct raft_configuration one;
            raft_configuration_init(&one);
            ASSERT_EQ(raft_configuration_add(&one, idb, bad[i], RAFT_VOTER),
                      0);
            ASSERT_ERR(p2praft__hc_conf_from_raft(&m, &one, &hc),
                       LP2P_EPROTO);
            ASSERT(hc.servers == NULL && hc.n == 0);
            raft_configuration_close(&one);
        }
    }
    raft_configuration_close(&conf);
}

/* ---- OOM ------------------------------------------------------------------------ */

static void *oom_malloc(void *data, size_t size)
{
    (void)data;
    return lp2p__malloc(size);
}
static void oom_free(void *data, void *ptr)
{
    (void)data;
    lp2p__free(ptr);
}
static void *oom_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    return lp2p__calloc(n, size);
}
static void *oom_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    return lp2p__realloc(ptr, size);
}

struct oom_ctx {
    struct vec several, snap;
    uint8_t *data;
    size_t data_len;
};

static int oom_body(void *arg)
{
    struct oom_ctx *c = arg;
    struct p2praft__hc_map m = map_as(c->several.from);
    struct raft_message msg;
    struct p2praft__hc_pending q;
    struct lp2p_buf wire;
    int rv;
    lp2p__buf_init(&wire);
    rv = p2praft__hc_decode_request(&m, &c->several.req, NULL, 0, NULL,
                                    c->several.from_id, c->several.from, &msg,
                                    &q);
    if (rv != 0) {
        return rv;
    }
    rv = p2praft__hc_encode_request(&m, &msg, &wire, &q);
    p2praft__hc_message_release(&msg);
    if (rv != 0) {
        lp2p__buf_free(&wire);
        return rv;
    }
    m = map_as(c->snap.from);
    rv = p2praft__hc_decode_request(&m, &c->snap.req, c->data, c->data_len,
                                    NULL, c->snap.from_id, c->snap.from, &msg,
                                    &q);
    if (rv == 0) {
        rv = p2praft__hc_encode_request(&m, &msg, &wire, &q);
        p2praft__hc_message_release(&msg);
    }
    lp2p__buf_free(&wire);
    return rv;
}

TEST(hcmap, oom_sweep)
{
    struct raft_heap heap = {NULL,       oom_malloc, oom_free, oom_calloc,
                             oom_realloc, NULL,       NULL};
    struct oom_ctx c;
    long n;
    load_req("raft-v1.6.1", "ae-several.req", &c.several);
    load_req("raft-v1.6.1", "install-snapshot.req", &c.snap);
    load("raft-v1.6.1", "install-snapshot.data", &c.data, &c.data_len);
    raft_heap_set(&heap);
    n = test__oom_sweep(oom_body, &c);
    raft_heap_set_default();
    ASSERT(n > 10);
    vec_free(&c.several);
    vec_free(&c.snap);
    free(c.data);
}
