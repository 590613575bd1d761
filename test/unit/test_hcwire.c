/*
 * hashicorp wire codec (src/raft/hcwire.c) against bytes captured from real
 * go-libp2p-raft nodes (test/vectors/hashicorp/, see its README): every
 * vector decodes from a guarded buffer (an over-read faults), re-encodes
 * byte for byte, and every proper prefix asks for more input; the decoded
 * fields are checked against what the real nodes meant; bad bytes give
 * clear errors; an OOM sweep.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lp2p.h"
#include "oom.h"
#include "raft/hcwire.h"
#include "test.h"
#include "util/buf.h"

#define VDIR "test/vectors/hashicorp/"
#define MAXMSG (1u << 20)

/* The rpc type a vector belongs to, from its name. */
static int type_of(const char *name)
{
    if (strncmp(name, "ae-", 3) == 0) {
        return P2PRAFT__HC_APPEND_ENTRIES;
    }
    if (strncmp(name, "rv-", 3) == 0) {
        return P2PRAFT__HC_REQUEST_VOTE;
    }
    if (strncmp(name, "install-snapshot", 16) == 0) {
        return P2PRAFT__HC_INSTALL_SNAPSHOT;
    }
    if (strncmp(name, "timeout-now", 11) == 0) {
        return P2PRAFT__HC_TIMEOUT_NOW;
    }
    if (strncmp(name, "prevote-", 8) == 0 || strncmp(name, "error-", 6) == 0) {
        return P2PRAFT__HC_REQUEST_PRE_VOTE;
    }
    return -1;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static uint8_t *load(const char *dir, const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), VDIR "%s/%s", dir, name);
    return test__read_file(path, len);
}

/* Decode, re-encode, compare, and try every prefix: the round trip of one
 * vector file. Returns the number of messages checked (1). */
static void round_trip(const char *dir, const char *name)
{
    size_t len, used = 0, i;
    uint8_t *raw = load(dir, name, &len);
    uint8_t *g = test__guarded(raw, len);
    struct lp2p_buf out;
    bool is_req = ends_with(name, ".req");
    int type = type_of(name);
    int rv;
    ASSERT(type >= 0);
    lp2p__buf_init(&out);
    if (is_req) {
        struct p2praft__hc_req req;
        rv = p2praft__hc_req_decode(g, len, MAXMSG, &req, &used);
        if (rv != 0) {
            test__fail(__FILE__, __LINE__, "%s/%s: %s", dir, name,
                       lp2p_errname(rv));
        }
        ASSERT_EQ(req.type, type);
        ASSERT_OK(p2praft__hc_req_encode(&req, &out));
        p2praft__hc_req_release(&req);
    } else {
        struct p2praft__hc_resp resp;
        rv = p2praft__hc_resp_decode((uint8_t)type, g, len, MAXMSG, &resp,
                                     &used);
        if (rv != 0) {
            test__fail(__FILE__, __LINE__, "%s/%s: %s", dir, name,
                       lp2p_errname(rv));
        }
        ASSERT_OK(p2praft__hc_resp_encode(&resp, &out));
        p2praft__hc_resp_release(&resp);
    }
    ASSERT_EQ(used, len);
    if (out.len != len || memcmp(out.data, raw, len) != 0) {
        test__fail(__FILE__, __LINE__, "%s/%s: re-encoded %zu bytes differ",
                   dir, name, out.len);
    }
    lp2p__buf_free(&out);
    test__guarded_free(g, len);
    /* Every proper prefix: more input needed, never an error. */
    for (i = 0; i < len; i += (len > 4096 ? 97 : 1)) {
        uint8_t *p = test__guarded(raw, i);
        if (is_req) {
            struct p2praft__hc_req req;
            ASSERT_ERR(p2praft__hc_req_decode(p, i, MAXMSG, &req, &used),
                       LP2P_EAGAIN);
        } else {
            struct p2praft__hc_resp resp;
            ASSERT_ERR(p2praft__hc_resp_decode((uint8_t)type, p, i, MAXMSG,
                                               &resp, &used),
                       LP2P_EAGAIN);
        }
        test__guarded_free(p, i);
    }
    free(raw);
}

static int round_trip_dir(const char *dir)
{
    char path[256];
    DIR *d;
    struct dirent *e;
    int n = 0;
    snprintf(path, sizeof(path), VDIR "%s", dir);
    d = opendir(path);
    if (d == NULL) {
        test__fail(__FILE__, __LINE__, "cannot open %s", path);
    }
    while ((e = readdir(d)) != NULL) {
        if (ends_with(e->d_name, ".req") || ends_with(e->d_name, ".resp")) {
            round_trip(dir, e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

TEST(hcwire, vectors_v161_round_trip)
{
    ASSERT_EQ(round_trip_dir("raft-v1.6.1"), 30);
}

TEST(hcwire, vectors_v173_round_trip)
{
    ASSERT_EQ(round_trip_dir("raft-v1.7.3"), 34);
}

TEST(hcwire, vectors_synthetic_round_trip)
{
    ASSERT_EQ(round_trip_dir("synthetic"), 9);
}

/* ---- what the decoded vectors say ---------------------------------------- */

static void decode_req_file(const char *dir, const char *name,
                            struct p2praft__hc_req *req, uint8_t **raw)
{
    size_t len, used;
    *raw = load(dir, name, &len);
    ASSERT_OK(p2praft__hc_req_decode(*raw, len, MAXMSG, req, &used));
    ASSERT_EQ(used, len);
}

static void decode_resp_file(const char *dir, const char *name, uint8_t type,
                             struct p2praft__hc_resp *resp, uint8_t **raw)
{
    size_t len, used;
    *raw = load(dir, name, &len);
    ASSERT_OK(p2praft__hc_resp_decode(type, *raw, len, MAXMSG, resp, &used));
    ASSERT_EQ(used, len);
}

static bool bytes_eq(const struct p2praft__hc_bytes *a,
                     const struct p2praft__hc_bytes *b)
{
    return (a->p == NULL) == (b->p == NULL) && a->len == b->len &&
           (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static bool bytes_is(const struct p2praft__hc_bytes *a, const char *s)
{
    return a->p != NULL && a->len == strlen(s) && memcmp(a->p, s, a->len) == 0;
}

/* A go-libp2p-raft header: protocol 3, ID == Addr, a peer ID. */
static void check_header(const struct p2praft__hc_header *h)
{
    ASSERT_EQ(h->protocol_version, 3);
    ASSERT(h->id.p != NULL && h->id.len > 40);
    ASSERT(bytes_eq(&h->id, &h->addr));
    ASSERT(memcmp(h->id.p, "12D3KooW", 8) == 0);
}

TEST(hcwire, heartbeat_is_prev_zero_nil_entries)
{
    const char *dirs[] = {"raft-v1.6.1", "raft-v1.7.3"};
    int i;
    for (i = 0; i < 2; i++) {
        struct p2praft__hc_req req;
        struct p2praft__hc_resp resp;
        uint8_t *raw, *raw2;
        decode_req_file(dirs[i], "ae-heartbeat.req", &req, &raw);
        check_header(&req.append_entries.header);
        ASSERT(req.append_entries.term > 0);
        ASSERT(bytes_eq(&req.append_entries.leader,
                        &req.append_entries.header.addr));
        ASSERT_EQ(req.append_entries.prev_log_entry, 0);
        ASSERT_EQ(req.append_entries.prev_log_term, 0);
        ASSERT_EQ(req.append_entries.leader_commit_index, 0);
        ASSERT_EQ(req.append_entries.n_entries, 0);
        ASSERT(req.append_entries.entries_nil);
        decode_resp_file(dirs[i], "ae-heartbeat.resp", 0, &resp, &raw2);
        ASSERT_EQ(resp.error.len, 0);
        ASSERT(resp.error.p != NULL);
        ASSERT(!resp.nil);
        ASSERT(resp.append_entries.success);
        ASSERT_EQ(resp.append_entries.term, req.append_entries.term);
        check_header(&resp.append_entries.header);
        p2praft__hc_req_release(&req);
        p2praft__hc_resp_release(&resp);
        free(raw);
        free(raw2);
    }
}

TEST(hcwire, pipeline_no_entries_is_empty_not_nil)
{
    struct p2praft__hc_req req;
    uint8_t *raw;
    decode_req_file("raft-v1.6.1", "ae-no-entries.req", &req, &raw);
    ASSERT_EQ(req.append_entries.n_entries, 0);
    ASSERT(!req.append_entries.entries_nil);
    ASSERT(req.append_entries.prev_log_entry > 0);
    ASSERT(req.append_entries.leader_commit_index > 0);
    p2praft__hc_req_release(&req);
    free(raw);
}

/* The entry of type `type` in a vector, with its time and data checked. */
static const struct p2praft__hc_log *find_entry(
    const struct p2praft__hc_append_entries *ae, uint64_t type)
{
    size_t i;
    for (i = 0; i < ae->n_entries; i++) {
        /* Indexes follow PrevLogEntry one by one. */
        ASSERT_EQ_U64(ae->entries[i].index, ae->prev_log_entry + 1 + i);
        ASSERT(ae->entries[i].term > 0 && ae->entries[i].term <= ae->term);
        ASSERT(ae->entries[i].extensions.p == NULL);
        ASSERT_EQ(ae->entries[i].appended_at.form, P2PRAFT__HC_TIME_RAW);
        ASSERT_EQ(ae->entries[i].appended_at.len, 15);
        if (ae->entries[i].type == type) {
            return &ae->entries[i];
        }
    }
    test__fail(__FILE__, __LINE__, "no entry of type %llu",
               (unsigned long long)type);
}

TEST(hcwire, entry_types)
{
    const char *dirs[] = {"raft-v1.6.1", "raft-v1.7.3"};
    int i;
    for (i = 0; i < 2; i++) {
        struct p2praft__hc_req r1, r2, r3;
        uint8_t *b1, *b2, *b3;
        const struct p2praft__hc_log *e;
        decode_req_file(dirs[i], "ae-command.req", &r1, &b1);
        e = find_entry(&r1.append_entries, P2PRAFT__HC_LOG_COMMAND);
        /* CommitState(raftState{Value: n}), 1 <= n <= 10: {"Value": n}. */
        ASSERT_EQ(e->data.len, 8);
        ASSERT_MEM_EQ(e->data.p, "\x81\xa5Value", 7);
        ASSERT(e->data.p[7] >= 1 && e->data.p[7] <= 10);
        ASSERT(!p2praft__hc_time_is_zero(&e->appended_at));
        decode_req_file(dirs[i], "ae-noop.req", &r2, &b2);
        e = find_entry(&r2.append_entries, P2PRAFT__HC_LOG_NOOP);
        ASSERT(e->data.p == NULL);
        decode_req_file(dirs[i], "ae-barrier.req", &r3, &b3);
        e = find_entry(&r3.append_entries, P2PRAFT__HC_LOG_BARRIER);
        ASSERT(e->data.p == NULL);
        p2praft__hc_req_release(&r1);
        p2praft__hc_req_release(&r2);
        p2praft__hc_req_release(&r3);
        free(b1);
        free(b2);
        free(b3);
    }
}

TEST(hcwire, bootstrap_configuration_entry)
{
    struct p2praft__hc_req req;
    struct p2praft__hc_configuration conf;
    const struct p2praft__hc_log *e;
    struct lp2p_buf out;
    uint8_t *raw;
    /* ae-several: a staging node catching up from index 1, the bootstrap
     * LogConfiguration {A voter, B voter, C staging} with the zero time. */
    decode_req_file("raft-v1.6.1", "ae-several.req", &req, &raw);
    ASSERT_EQ(req.append_entries.prev_log_entry, 0);
    ASSERT(req.append_entries.n_entries >= 2);
    e = &req.append_entries.entries[0];
    ASSERT_EQ(e->index, 1);
    ASSERT_EQ(e->term, 1);
    ASSERT_EQ(e->type, P2PRAFT__HC_LOG_CONFIGURATION);
    ASSERT(p2praft__hc_time_is_zero(&e->appended_at));
    ASSERT_OK(p2praft__hc_conf_decode(e->data.p, e->data.len, &conf));
    ASSERT_EQ(conf.n, 3);
    ASSERT_EQ(conf.servers[0].suffrage, P2PRAFT__HC_VOTER);
    ASSERT_EQ(conf.servers[1].suffrage, P2PRAFT__HC_VOTER);
    ASSERT_EQ(conf.servers[2].suffrage, P2PRAFT__HC_STAGING);
    ASSERT(bytes_eq(&conf.servers[0].id, &conf.servers[0].address));
    ASSERT(bytes_eq(&conf.servers[0].id, &req.append_entries.leader) ||
           bytes_eq(&conf.servers[1].id, &req.append_entries.leader));
    lp2p__buf_init(&out);
    ASSERT_OK(p2praft__hc_conf_encode(&conf, &out));
    ASSERT_EQ(out.len, e->data.len);
    ASSERT_MEM_EQ(out.data, e->data.p, out.len);
    lp2p__buf_free(&out);
    p2praft__hc_conf_release(&conf);
    p2praft__hc_req_release(&req);
    free(raw);
}

TEST(hcwire, install_snapshot_fields)
{
    const char *dirs[] = {"raft-v1.6.1", "raft-v1.7.3"};
    int i;
    for (i = 0; i < 2; i++) {
        struct p2praft__hc_req req;
        struct p2praft__hc_resp resp;
        struct p2praft__hc_configuration conf;
        const struct p2praft__hc_install_snapshot *is;
        struct lp2p_buf peers;
        size_t dlen;
        uint8_t *raw, *raw2, *data;
        decode_req_file(dirs[i], "install-snapshot.req", &req, &raw);
        is = &req.install_snapshot;
        check_header(&is->header);
        ASSERT_EQ(is->snapshot_version, 1);
        ASSERT(is->last_log_index > 0 && is->last_log_term > 0);
        ASSERT(is->configuration_index > 0 &&
               is->configuration_index <= is->last_log_index);
        data = load(dirs[i], "install-snapshot.data", &dlen);
        ASSERT_EQ(is->size, (int64_t)dlen);
        /* The FSM's EncodeSnapshot of raftState{Value: 6}. */
        ASSERT_EQ(dlen, 8);
        ASSERT_MEM_EQ(data, "\x81\xa5Value\x06", 8);
        ASSERT_OK(p2praft__hc_conf_decode(is->configuration.p,
                                          is->configuration.len, &conf));
        ASSERT_EQ(conf.n, 4); /* A, B voters, C staging, D nonvoter */
        ASSERT_EQ(conf.servers[3].suffrage, P2PRAFT__HC_NONVOTER);
        /* Peers is encodePeers(configuration): the voters' addresses. */
        lp2p__buf_init(&peers);
        ASSERT_OK(p2praft__hc_peers_encode(&conf, &peers));
        ASSERT_EQ(peers.len, is->peers.len);
        ASSERT_MEM_EQ(peers.data, is->peers.p, peers.len);
        lp2p__buf_free(&peers);
        p2praft__hc_conf_release(&conf);
        decode_resp_file(dirs[i], "install-snapshot.resp", 2, &resp, &raw2);
        ASSERT(resp.install_snapshot.success);
        /* hashicorp leaves this header empty. */
        ASSERT_EQ(resp.install_snapshot.header.protocol_version, 0);
        ASSERT(resp.install_snapshot.header.id.p == NULL);
        ASSERT(resp.install_snapshot.header.addr.p == NULL);
        p2praft__hc_resp_release(&resp);
        p2praft__hc_req_release(&req);
        free(raw);
        free(raw2);
        free(data);
    }
}

TEST(hcwire, votes_and_transfer)
{
    struct p2praft__hc_req req;
    struct p2praft__hc_resp resp;
    uint8_t *raw, *raw2;
    decode_req_file("raft-v1.6.1", "rv-transfer.req", &req, &raw);
    check_header(&req.request_vote.header);
    ASSERT(req.request_vote.leadership_transfer);
    ASSERT(bytes_eq(&req.request_vote.candidate, &req.request_vote.header.addr));
    p2praft__hc_req_release(&req);
    free(raw);
    decode_resp_file("raft-v1.6.1", "rv-denied.resp", 1, &resp, &raw2);
    ASSERT(!resp.request_vote.granted);
    ASSERT(resp.request_vote.peers.p == NULL); /* protocol 3: no Peers */
    p2praft__hc_resp_release(&resp);
    free(raw2);
    decode_req_file("raft-v1.6.1", "timeout-now.req", &req, &raw);
    check_header(&req.timeout_now.header);
    p2praft__hc_req_release(&req);
    free(raw);
    decode_resp_file("raft-v1.6.1", "timeout-now.resp", 3, &resp, &raw2);
    ASSERT_EQ(resp.timeout_now.header.protocol_version, 0);
    ASSERT(resp.timeout_now.header.id.p == NULL);
    free(raw2);
}

TEST(hcwire, prevote)
{
    struct p2praft__hc_req req;
    struct p2praft__hc_resp resp;
    uint8_t *raw, *raw2;
    decode_req_file("raft-v1.7.3", "prevote-granted.req", &req, &raw);
    ASSERT_EQ(req.type, P2PRAFT__HC_REQUEST_PRE_VOTE);
    check_header(&req.request_pre_vote.header);
    ASSERT(req.request_pre_vote.term > 0);
    decode_resp_file("raft-v1.7.3", "prevote-granted.resp", 4, &resp, &raw2);
    ASSERT(resp.request_pre_vote.granted);
    ASSERT_EQ(resp.request_pre_vote.term, req.request_pre_vote.term);
    p2praft__hc_req_release(&req);
    free(raw);
    free(raw2);
    decode_resp_file("raft-v1.7.3", "prevote-denied.resp", 4, &resp, &raw2);
    ASSERT(!resp.request_pre_vote.granted);
    free(raw2);
}

TEST(hcwire, rejection_response)
{
    struct p2praft__hc_resp resp;
    uint8_t *raw;
    decode_resp_file("raft-v1.6.1", "ae-rejected.resp", 0, &resp, &raw);
    ASSERT(!resp.append_entries.success);
    ASSERT(resp.append_entries.no_retry_backoff);
    free(raw);
}

TEST(hcwire, synthetic_edges)
{
    struct p2praft__hc_req req;
    struct p2praft__hc_resp resp;
    const struct p2praft__hc_append_entries *ae;
    uint8_t *raw;
    decode_req_file("synthetic", "ae-edges.req", &req, &raw);
    ae = &req.append_entries;
    ASSERT_EQ(ae->n_entries, 17);
    ASSERT_EQ(ae->entries[1].data.len, 40);
    ASSERT(p2praft__hc_time_is_zero(&ae->entries[2].appended_at));
    ASSERT(bytes_is(&ae->entries[3].extensions, "ext"));
    ASSERT(ae->entries[4].data.p != NULL && ae->entries[4].data.len == 0);
    ASSERT(ae->entries[5].data.p == NULL);
    p2praft__hc_req_release(&req);
    free(raw);

    decode_req_file("synthetic", "ae-big-data.req", &req, &raw);
    ASSERT_EQ_U64(req.append_entries.term, UINT64_MAX);
    ASSERT_EQ(req.append_entries.entries[0].data.len, 70000);
    p2praft__hc_req_release(&req);
    free(raw);

    decode_req_file("synthetic", "ae-newtime.req", &req, &raw);
    ae = &req.append_entries;
    ASSERT_EQ(ae->entries[0].appended_at.len, 4);
    ASSERT_EQ(ae->entries[1].appended_at.len, 8);
    ASSERT_EQ(ae->entries[2].appended_at.len, 12);
    ASSERT_EQ(ae->entries[3].appended_at.form, P2PRAFT__HC_TIME_NIL);
    p2praft__hc_req_release(&req);
    free(raw);

    decode_req_file("synthetic", "install-snapshot-big.req", &req, &raw);
    ASSERT_EQ(req.install_snapshot.size, (int64_t)1 << 40);
    p2praft__hc_req_release(&req);
    free(raw);

    decode_resp_file("synthetic", "error-unexpected-command.resp", 4, &resp,
                     &raw);
    ASSERT(resp.nil);
    ASSERT(bytes_is(&resp.error, "unexpected command"));
    p2praft__hc_resp_release(&resp);
    free(raw);
}

/* ---- bad input ------------------------------------------------------------ */

static int decode_hex_req(const char *hex, size_t max)
{
    size_t len, used;
    uint8_t *b = test__unhex(hex, &len);
    uint8_t *g = test__guarded(b, len);
    struct p2praft__hc_req req;
    int rv = p2praft__hc_req_decode(g, len, max, &req, &used);
    if (rv == 0) {
        p2praft__hc_req_release(&req);
    }
    test__guarded_free(g, len);
    free(b);
    return rv;
}

TEST(hcwire, bad_requests)
{
    /* Unknown rpc type (hashicorp: "unknown rpc type", stream closed). */
    ASSERT_ERR(decode_hex_req("0580", MAXMSG), LP2P_EUNSUPPORTED);
    /* A request that is not a map; 0xc1 is never valid. */
    ASSERT_ERR(decode_hex_req("0001", MAXMSG), LP2P_ETYPE);
    ASSERT_ERR(decode_hex_req("00c1", MAXMSG), LP2P_EMALFORMED);
    /* AppendEntries {Term: "1"}, {Term: -1}, {Term: nil}. */
    ASSERT_ERR(decode_hex_req("0081a45465726da131", MAXMSG), LP2P_ETYPE);
    ASSERT_ERR(decode_hex_req("0081a45465726dff", MAXMSG), LP2P_EOVERFLOW);
    ASSERT_ERR(decode_hex_req("0081a45465726dc0", MAXMSG), LP2P_ETYPE);
    /* Duplicate key; a key that is not a string. */
    ASSERT_ERR(decode_hex_req("0082a45465726d01a45465726d02", MAXMSG),
               LP2P_EMALFORMED);
    ASSERT_ERR(decode_hex_req("00810101", MAXMSG), LP2P_ETYPE);
    /* Unknown keys are skipped, however nested (TimeoutNow has no Term). */
    ASSERT_OK(decode_hex_req("0381a45465726d9191919181a17891c0", MAXMSG));
    /* A map or array announcing more than the bytes can hold: more input
     * needed, or too big for the limit. */
    ASSERT_ERR(decode_hex_req("00deffff", MAXMSG), LP2P_EAGAIN);
    ASSERT_ERR(decode_hex_req("00deffff", 64), LP2P_ETOOBIG);
    ASSERT_ERR(decode_hex_req("0081a7456e7472696573dcffff", MAXMSG),
               LP2P_EAGAIN);
    ASSERT_ERR(decode_hex_req("0081a7456e7472696573dcffff", 4096),
               LP2P_ETOOBIG);
    ASSERT_ERR(decode_hex_req("0081a7456e7472696573ddffffffff", MAXMSG),
               LP2P_ETOOBIG);
    /* A string longer than the limit. */
    ASSERT_ERR(decode_hex_req("0081a441646472db00100000", 4096),
               LP2P_ETOOBIG);
    /* Entries that are not maps. */
    ASSERT_ERR(decode_hex_req("0081a7456e747269657391c3", MAXMSG), LP2P_ETYPE);
    /* AppendedAt: 5 raw bytes, or an extension of another type. */
    ASSERT_ERR(decode_hex_req("0081a7456e74726965739181aa417070656e646564"
                              "4174a50102030405",
                              MAXMSG),
               LP2P_EMALFORMED);
    ASSERT_ERR(decode_hex_req("0081a7456e74726965739181aa417070656e646564"
                              "4174d60100000000",
                              MAXMSG),
               LP2P_ETYPE);
    /* A 15-byte AppendedAt must be MarshalBinary version 1. */
    ASSERT_ERR(decode_hex_req("0081a7456e74726965739181aa417070656e646564"
                              "4174af020000000000000000000000000000",
                              MAXMSG),
               LP2P_EMALFORMED);
    /* InstallSnapshot with a negative Size. */
    ASSERT_ERR(decode_hex_req("0281a453697a65ff", MAXMSG), LP2P_EMALFORMED);
}

TEST(hcwire, framing_keeps_what_follows)
{
    /* Two pipelined requests back to back: the first decode consumes only
     * the first. */
    size_t len, used;
    uint8_t *b = test__unhex("0381a24944c00381a24944c0", &len);
    struct p2praft__hc_req req;
    ASSERT_OK(p2praft__hc_req_decode(b, len, MAXMSG, &req, &used));
    ASSERT_EQ(used, 6);
    ASSERT_EQ(req.type, P2PRAFT__HC_TIMEOUT_NOW);
    ASSERT(req.timeout_now.header.id.p == NULL);
    ASSERT_OK(p2praft__hc_req_decode(b + used, len - used, MAXMSG, &req,
                                     &used));
    ASSERT_EQ(used, 6);
    free(b);
}

TEST(hcwire, bad_responses)
{
    size_t len, used;
    uint8_t *b;
    struct p2praft__hc_resp resp;
    /* A nil error string is not what Go writes. */
    b = test__unhex("c0c0", &len);
    ASSERT_ERR(p2praft__hc_resp_decode(0, b, len, MAXMSG, &resp, &used),
               LP2P_ETYPE);
    free(b);
    /* Error string, then nothing yet. */
    b = test__unhex("a0", &len);
    ASSERT_ERR(p2praft__hc_resp_decode(0, b, len, MAXMSG, &resp, &used),
               LP2P_EAGAIN);
    free(b);
    /* A response to an unknown rpc type. */
    b = test__unhex("a0c0", &len);
    ASSERT_ERR(p2praft__hc_resp_decode(9, b, len, MAXMSG, &resp, &used),
               LP2P_EINVAL);
    free(b);
}

TEST(hcwire, configuration_trailing_bytes)
{
    struct p2praft__hc_configuration conf;
    size_t len;
    uint8_t *b = test__unhex("81a7536572766572739000", &len);
    ASSERT_ERR(p2praft__hc_conf_decode(b, len, &conf), LP2P_ETRAILING);
    ASSERT_OK(p2praft__hc_conf_decode(b, len - 1, &conf));
    ASSERT_EQ(conf.n, 0);
    ASSERT(!conf.servers_nil);
    p2praft__hc_conf_release(&conf);
    free(b);
}

TEST(hcwire, time_zero_form)
{
    struct p2praft__hc_time t;
    struct lp2p_buf out;
    p2praft__hc_time_zero(&t);
    ASSERT(p2praft__hc_time_is_zero(&t));
    /* One LogNoop entry with the zero time, encoded as Go does. */
    {
        struct p2praft__hc_log e;
        struct p2praft__hc_req req;
        uint8_t *want;
        size_t wlen;
        memset(&e, 0, sizeof(e));
        memset(&req, 0, sizeof(req));
        e.index = 2;
        e.term = 1;
        e.type = P2PRAFT__HC_LOG_NOOP;
        e.appended_at = t;
        req.type = P2PRAFT__HC_APPEND_ENTRIES;
        req.append_entries.entries = &e;
        req.append_entries.n_entries = 1;
        lp2p__buf_init(&out);
        ASSERT_OK(p2praft__hc_req_encode(&req, &out));
        want = test__unhex(
            "0089a441646472c0a7456e74726965739186aa417070656e6465644174af"
            "01000000000000000000000000ffffa444617461c0aa457874656e73696f"
            "6e73c0a5496e64657802a45465726d01a45479706501a24944c0a64c6561"
            "646572c0b14c6561646572436f6d6d6974496e64657800ac507265764c6f"
            "67456e74727900ab507265764c6f675465726d00af50726f746f636f6c56"
            "657273696f6e00a45465726d00",
            &wlen);
        ASSERT_EQ(out.len, wlen);
        ASSERT_MEM_EQ(out.data, want, wlen);
        free(want);
        lp2p__buf_free(&out);
    }
}

/* ---- OOM ------------------------------------------------------------------ */

static int oom_body(void *ctx)
{
    const uint8_t *raw = ctx;
    struct p2praft__hc_req req;
    struct p2praft__hc_configuration conf;
    struct lp2p_buf out;
    size_t used;
    int rv;
    /* ae-several: bytes in a file read before the sweep (ctx). */
    rv = p2praft__hc_req_decode(raw + sizeof(size_t),
                                *(const size_t *)raw, MAXMSG, &req, &used);
    if (rv != 0) {
        return rv;
    }
    rv = p2praft__hc_conf_decode(req.append_entries.entries[0].data.p,
                                 req.append_entries.entries[0].data.len,
                                 &conf);
    if (rv != 0) {
        p2praft__hc_req_release(&req);
        return rv;
    }
    lp2p__buf_init(&out);
    rv = p2praft__hc_req_encode(&req, &out);
    if (rv == 0) {
        rv = p2praft__hc_conf_encode(&conf, &out);
    }
    if (rv == 0) {
        rv = p2praft__hc_peers_encode(&conf, &out);
    }
    lp2p__buf_free(&out);
    p2praft__hc_conf_release(&conf);
    p2praft__hc_req_release(&req);
    return rv;
}

TEST(hcwire, oom_sweep)
{
    size_t len;
    uint8_t *raw = load("raft-v1.6.1", "ae-several.req", &len);
    uint8_t *ctx = malloc(sizeof(size_t) + len);
    memcpy(ctx, &len, sizeof(size_t));
    memcpy(ctx + sizeof(size_t), raw, len);
    ASSERT(test__oom_sweep(oom_body, ctx) >= 3);
    free(ctx);
    free(raw);
}
