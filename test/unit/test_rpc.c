/*
 * The raft message codec (src/raft/rpc.c): every message type round trips
 * in any chunking, decoded messages own exactly what libraft expects,
 * malformed and oversized frames are refused with the right code, input
 * is never over-read, and an OOM sweep frees everything.
 */
#include <raft.h>
#include <stdlib.h>
#include <string.h>

#include "oom.h"
#include "p2praft.h"
#include "raft/rpc.h"
#include "test.h"
#include "util/heap.h"

/* Encode m (header + payload) into a malloc'd buffer. */
static uint8_t *encode(const struct raft_message *m, size_t *len)
{
    size_t h;
    uint64_t pl;
    uint8_t *out;
    unsigned i;
    ASSERT_OK(p2praft__rpc_header_len(m, &h));
    pl = p2praft__rpc_payload_len(m);
    out = malloc(h + (size_t)pl + 1);
    ASSERT(out != NULL);
    p2praft__rpc_header_write(m, out);
    *len = h;
    if (m->type == RAFT_APPEND_ENTRIES) {
        for (i = 0; i < m->append_entries.n_entries; i++) {
            const struct raft_buffer *b = &m->append_entries.entries[i].buf;
            if (b->len > 0) {
                memcpy(out + *len, b->base, b->len);
            }
            *len += b->len;
        }
    } else if (m->type == RAFT_INSTALL_SNAPSHOT && pl > 0) {
        memcpy(out + *len, m->install_snapshot.data.base, (size_t)pl);
        *len += (size_t)pl;
    }
    return out;
}

/* Decode all of buf in chunks of `chunk` bytes (0: all at once), expecting
 * exactly one message. */
static void decode_one(const uint8_t *buf, size_t len, size_t chunk,
                       struct raft_message *out)
{
    struct p2praft__rpc_dec d;
    size_t off = 0, used;
    int got = 0, rv;
    p2praft__rpc_dec_init(&d, 1u << 30);
    while (off < len || !got) {
        size_t n = chunk == 0 || len - off < chunk ? len - off : chunk;
        uint8_t *g = test__guarded(buf + off, n);
        rv = p2praft__rpc_dec_feed(&d, g, n, &used, out);
        test__guarded_free(g, n);
        ASSERT(rv == 0 || rv == 1);
        ASSERT(used <= n);
        off += used;
        if (rv == 1) {
            ASSERT(!got);
            got = 1;
        } else {
            ASSERT_EQ(used, n);
            ASSERT(off < len || n == 0);
            if (n == 0) {
                break;
            }
        }
    }
    ASSERT(got);
    ASSERT_EQ(off, len);
    ASSERT(p2praft__rpc_dec_idle(&d));
    p2praft__rpc_dec_close(&d);
}

static const size_t chunks[] = {0, 1, 2, 3, 7, 13, 64};

TEST(rpc, small_messages_round_trip)
{
    struct raft_message m[5], out;
    unsigned i, c;
    memset(m, 0, sizeof(m));
    m[0].type = RAFT_APPEND_ENTRIES_RESULT;
    m[0].append_entries_result.version = 2;
    m[0].append_entries_result.term = 0x0102030405060708ull;
    m[0].append_entries_result.rejected = 77;
    m[0].append_entries_result.last_log_index = 1ull << 40;
    m[0].append_entries_result.features = 1;
    m[0].append_entries_result.capacity = 65535;
    m[1].type = RAFT_REQUEST_VOTE;
    m[1].request_vote.version = 2;
    m[1].request_vote.term = 9;
    m[1].request_vote.candidate_id = 12345; /* not on the wire */
    m[1].request_vote.last_log_index = 8;
    m[1].request_vote.last_log_term = 7;
    m[1].request_vote.disrupt_leader = true;
    m[1].request_vote.pre_vote = true;
    m[2].type = RAFT_REQUEST_VOTE_RESULT;
    m[2].request_vote_result.version = 2;
    m[2].request_vote_result.term = 9;
    m[2].request_vote_result.vote_granted = true;
    m[2].request_vote_result.pre_vote = false;
    m[2].request_vote_result.features = 1;
    m[2].request_vote_result.capacity = 4096;
    m[3].type = RAFT_TIMEOUT_NOW;
    m[3].timeout_now.term = 3;
    m[3].timeout_now.last_log_index = 2;
    m[3].timeout_now.last_log_term = 1;
    m[4].type = RAFT_APPEND_ENTRIES; /* heartbeat */
    m[4].append_entries.term = 5;
    m[4].append_entries.prev_log_index = 10;
    m[4].append_entries.prev_log_term = 4;
    m[4].append_entries.leader_commit = 9;
    for (i = 0; i < 5; i++) {
        size_t len;
        uint8_t *buf = encode(&m[i], &len);
        ASSERT(len <= P2PRAFT__RPC_SMALL_MAX);
        for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
            decode_one(buf, len, chunks[c], &out);
            ASSERT_EQ(out.type, m[i].type);
            ASSERT_EQ_U64(out.server_id, 0);
            ASSERT(out.server_address == NULL);
            switch (out.type) {
            case RAFT_APPEND_ENTRIES_RESULT:
                ASSERT_MEM_EQ(&out.append_entries_result.term,
                              &m[i].append_entries_result.term, 8);
                ASSERT_EQ(out.append_entries_result.version, 2);
                ASSERT_EQ_U64(out.append_entries_result.rejected, 77);
                ASSERT_EQ_U64(out.append_entries_result.last_log_index,
                              1ull << 40);
                ASSERT_EQ(out.append_entries_result.features, 1);
                ASSERT_EQ(out.append_entries_result.capacity, 65535);
                break;
            case RAFT_REQUEST_VOTE:
                ASSERT_EQ_U64(out.request_vote.term, 9);
                ASSERT_EQ_U64(out.request_vote.candidate_id, 0);
                ASSERT_EQ_U64(out.request_vote.last_log_index, 8);
                ASSERT_EQ_U64(out.request_vote.last_log_term, 7);
                ASSERT(out.request_vote.disrupt_leader);
                ASSERT(out.request_vote.pre_vote);
                ASSERT_EQ(out.request_vote.version, 2);
                break;
            case RAFT_REQUEST_VOTE_RESULT:
                ASSERT_EQ_U64(out.request_vote_result.term, 9);
                ASSERT(out.request_vote_result.vote_granted);
                ASSERT(!out.request_vote_result.pre_vote);
                ASSERT_EQ(out.request_vote_result.capacity, 4096);
                ASSERT_EQ(out.request_vote_result.features, 1);
                break;
            case RAFT_TIMEOUT_NOW:
                ASSERT_EQ_U64(out.timeout_now.term, 3);
                ASSERT_EQ_U64(out.timeout_now.last_log_index, 2);
                ASSERT_EQ_U64(out.timeout_now.last_log_term, 1);
                break;
            case RAFT_APPEND_ENTRIES:
                ASSERT_EQ_U64(out.append_entries.term, 5);
                ASSERT_EQ_U64(out.append_entries.prev_log_index, 10);
                ASSERT_EQ_U64(out.append_entries.prev_log_term, 4);
                ASSERT_EQ_U64(out.append_entries.leader_commit, 9);
                ASSERT_EQ(out.append_entries.n_entries, 0);
                ASSERT(out.append_entries.entries == NULL);
                break;
            default:
                ASSERT(0);
            }
            p2praft__rpc_message_release(&out);
        }
        free(buf);
    }
}

TEST(rpc, append_entries_one_batch)
{
    struct raft_entry e[4];
    struct raft_message m, out;
    char big[3000];
    uint8_t *buf;
    size_t len;
    unsigned c, i;
    memset(&m, 0, sizeof(m));
    memset(big, 'z', sizeof(big));
    e[0].term = 2;
    e[0].type = RAFT_COMMAND;
    e[0].buf.base = (void *)"hello";
    e[0].buf.len = 5;
    e[1].term = 2;
    e[1].type = RAFT_BARRIER;
    e[1].buf.base = NULL;
    e[1].buf.len = 0;
    e[2].term = 3;
    e[2].type = RAFT_CHANGE;
    e[2].buf.base = big;
    e[2].buf.len = sizeof(big);
    e[3].term = 3;
    e[3].type = RAFT_COMMAND;
    e[3].buf.base = (void *)"!";
    e[3].buf.len = 1;
    m.type = RAFT_APPEND_ENTRIES;
    m.append_entries.term = 3;
    m.append_entries.prev_log_index = 0;
    m.append_entries.prev_log_term = 0;
    m.append_entries.leader_commit = 1;
    m.append_entries.entries = e;
    m.append_entries.n_entries = 4;
    ASSERT_EQ_U64(p2praft__rpc_payload_len(&m), 5 + 0 + 3000 + 1);
    buf = encode(&m, &len);
    for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        decode_one(buf, len, chunks[c], &out);
        ASSERT_EQ(out.append_entries.n_entries, 4);
        for (i = 0; i < 4; i++) {
            ASSERT_EQ_U64(out.append_entries.entries[i].term, e[i].term);
            ASSERT_EQ(out.append_entries.entries[i].type, e[i].type);
            ASSERT_EQ(out.append_entries.entries[i].buf.len, e[i].buf.len);
            ASSERT(out.append_entries.entries[i].batch ==
                   out.append_entries.entries[0].batch);
            if (e[i].buf.len > 0) {
                ASSERT_MEM_EQ(out.append_entries.entries[i].buf.base,
                              e[i].buf.base, e[i].buf.len);
            }
        }
        /* One contiguous batch, in order. */
        ASSERT((char *)out.append_entries.entries[3].buf.base ==
               (char *)out.append_entries.entries[0].batch + 5 + 3000);
        p2praft__rpc_message_release(&out);
    }
    free(buf);

    /* All entries empty: the batch still exists (libraft frees it). */
    e[0].buf.len = 0;
    e[2].buf.len = 0;
    e[3].buf.len = 0;
    buf = encode(&m, &len);
    decode_one(buf, len, 1, &out);
    ASSERT(out.append_entries.entries[0].batch != NULL);
    p2praft__rpc_message_release(&out);
    free(buf);
}

TEST(rpc, install_snapshot)
{
    struct raft_message m, out;
    uint8_t data[5000];
    uint8_t *buf;
    size_t len, i;
    unsigned c;
    memset(&m, 0, sizeof(m));
    for (i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 7);
    }
    m.type = RAFT_INSTALL_SNAPSHOT;
    m.install_snapshot.term = 4;
    m.install_snapshot.last_index = 100;
    m.install_snapshot.last_term = 3;
    m.install_snapshot.conf_index = 1;
    raft_configuration_init(&m.install_snapshot.conf);
    ASSERT_OK(raft_configuration_add(&m.install_snapshot.conf, 11, "alpha",
                                     RAFT_VOTER));
    ASSERT_OK(raft_configuration_add(&m.install_snapshot.conf, 22, "beta",
                                     RAFT_STANDBY));
    ASSERT_OK(raft_configuration_add(&m.install_snapshot.conf, 33, "gamma",
                                     RAFT_SPARE));
    m.install_snapshot.data.base = data;
    m.install_snapshot.data.len = sizeof(data);
    buf = encode(&m, &len);
    for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        decode_one(buf, len, chunks[c], &out);
        ASSERT_EQ(out.type, RAFT_INSTALL_SNAPSHOT);
        ASSERT_EQ_U64(out.install_snapshot.term, 4);
        ASSERT_EQ_U64(out.install_snapshot.last_index, 100);
        ASSERT_EQ_U64(out.install_snapshot.last_term, 3);
        ASSERT_EQ_U64(out.install_snapshot.conf_index, 1);
        ASSERT_EQ(out.install_snapshot.conf.n, 3);
        ASSERT_EQ_U64(out.install_snapshot.conf.servers[1].id, 22);
        ASSERT_STR_EQ(out.install_snapshot.conf.servers[2].address, "gamma");
        ASSERT_EQ(out.install_snapshot.conf.servers[1].role, RAFT_STANDBY);
        ASSERT_EQ(out.install_snapshot.data.len, sizeof(data));
        ASSERT_MEM_EQ(out.install_snapshot.data.base, data, sizeof(data));
        p2praft__rpc_message_release(&out);
    }
    free(buf);
    raft_configuration_close(&m.install_snapshot.conf);
}

TEST(rpc, back_to_back_frames)
{
    struct raft_message m, out;
    struct p2praft__rpc_dec d;
    uint8_t *one, *all;
    size_t len, off = 0, used;
    int n = 0, rv;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_TIMEOUT_NOW;
    m.timeout_now.term = 1;
    one = encode(&m, &len);
    all = malloc(len * 3);
    ASSERT(all != NULL);
    memcpy(all, one, len);
    memcpy(all + len, one, len);
    memcpy(all + 2 * len, one, len);
    p2praft__rpc_dec_init(&d, 1024);
    while (off < 3 * len) {
        rv = p2praft__rpc_dec_feed(&d, all + off, 3 * len - off, &used, &out);
        ASSERT_EQ(rv, 1);
        ASSERT_EQ(used, len);
        off += used;
        n++;
    }
    ASSERT_EQ(n, 3);
    p2praft__rpc_dec_close(&d);
    free(one);
    free(all);
}

/* Feed buf whole and return the decoder's answer. */
static int feed_all(const uint8_t *buf, size_t len, uint64_t max_payload)
{
    struct p2praft__rpc_dec d;
    struct raft_message out;
    size_t used;
    uint8_t *g = test__guarded(buf, len);
    int rv;
    p2praft__rpc_dec_init(&d, max_payload);
    rv = p2praft__rpc_dec_feed(&d, g, len, &used, &out);
    if (rv == 1) {
        p2praft__rpc_message_release(&out);
    }
    p2praft__rpc_dec_close(&d);
    test__guarded_free(g, len);
    return rv;
}

static void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

TEST(rpc, malformed_refused)
{
    struct raft_entry e;
    struct raft_message m;
    uint8_t *buf;
    size_t len;
    uint8_t tiny[6] = {0, 0, 0, 2, 9, 0};

    /* Unknown type; header shorter than type + version. */
    ASSERT_ERR(feed_all(tiny, sizeof(tiny), 1024), LP2P_EMALFORMED);
    tiny[3] = 1;
    ASSERT_ERR(feed_all(tiny, 5, 1024), LP2P_EMALFORMED);

    /* A TimeoutNow with a byte too many / too few in its header. */
    memset(&m, 0, sizeof(m));
    m.type = RAFT_TIMEOUT_NOW;
    buf = encode(&m, &len);
    ASSERT_EQ(feed_all(buf, len, 1024), 1);
    put32be(buf, 25);
    ASSERT_ERR(feed_all(buf, len - 1, 1024), LP2P_EMALFORMED);
    free(buf);

    /* RequestVote with unknown flag bits. */
    m.type = RAFT_REQUEST_VOTE;
    buf = encode(&m, &len);
    buf[len - 1] = 4;
    ASSERT_ERR(feed_all(buf, len, 1024), LP2P_EMALFORMED);
    free(buf);

    /* AppendEntries: prev_log_term without prev_log_index; zero entry term;
     * unknown entry type; payload over the limit. */
    memset(&m, 0, sizeof(m));
    m.type = RAFT_APPEND_ENTRIES;
    m.append_entries.prev_log_term = 1;
    buf = encode(&m, &len);
    ASSERT_ERR(feed_all(buf, len, 1024), LP2P_EMALFORMED);
    free(buf);
    m.append_entries.prev_log_term = 0;
    e.term = 0;
    e.type = RAFT_COMMAND;
    e.buf.base = (void *)"abc";
    e.buf.len = 3;
    e.batch = NULL;
    m.append_entries.entries = &e;
    m.append_entries.n_entries = 1;
    buf = encode(&m, &len);
    ASSERT_ERR(feed_all(buf, len, 1024), LP2P_EMALFORMED);
    free(buf);
    e.term = 1;
    e.type = (enum raft_entry_type)9;
    buf = encode(&m, &len);
    ASSERT_ERR(feed_all(buf, len, 1024), LP2P_EMALFORMED);
    free(buf);
    e.type = RAFT_COMMAND;
    buf = encode(&m, &len);
    ASSERT_EQ(feed_all(buf, len, 3), 1);
    ASSERT_ERR(feed_all(buf, len, 2), LP2P_ETOOBIG);
    /* n says 2 entries, the header holds 1. */
    buf[4 + 37] = 2;
    ASSERT_ERR(feed_all(buf, len, 1024), LP2P_EMALFORMED);
    free(buf);

    /* Header length over the limit, refused before anything is allocated. */
    {
        uint8_t hdr[4];
        put32be(hdr, P2PRAFT__RPC_HEADER_MAX + 1);
        ASSERT_ERR(feed_all(hdr, 4, 1024), LP2P_ETOOBIG);
    }
}

TEST(rpc, install_snapshot_malformed)
{
    struct raft_message m;
    uint8_t *buf;
    size_t len;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_INSTALL_SNAPSHOT;
    m.install_snapshot.term = 1;
    m.install_snapshot.last_index = 5;
    m.install_snapshot.last_term = 1;
    raft_configuration_init(&m.install_snapshot.conf);
    /* Empty configuration. */
    buf = encode(&m, &len);
    ASSERT_ERR(feed_all(buf, len, 1024), LP2P_EMALFORMED);
    free(buf);
    ASSERT_OK(raft_configuration_add(&m.install_snapshot.conf, 7, "a",
                                     RAFT_VOTER));
    ASSERT_OK(raft_configuration_add(&m.install_snapshot.conf, 8, "b",
                                     RAFT_VOTER));
    buf = encode(&m, &len);
    ASSERT_EQ(feed_all(buf, len, 1024), 1);
    /* Duplicate ID: the second server's ID (u64 at its start) := 7. */
    buf[4 + 46 + 12 + 7] = 7;
    ASSERT_ERR(feed_all(buf, len, 1024), LP2P_EMALFORMED);
    buf[4 + 46 + 12 + 7] = 8;
    /* Bad role. */
    buf[4 + 46 + 8] = 9;
    ASSERT_ERR(feed_all(buf, len, 1024), LP2P_EMALFORMED);
    buf[4 + 46 + 8] = RAFT_VOTER;
    /* NUL inside an address. */
    buf[4 + 46 + 11] = 0;
    ASSERT_ERR(feed_all(buf, len, 1024), LP2P_EMALFORMED);
    buf[4 + 46 + 11] = 'a';
    /* Index 0. */
    buf[4 + 2 + 15] = 0;
    ASSERT_ERR(feed_all(buf, len, 1024), LP2P_EMALFORMED);
    free(buf);
    /* Data over the limit. */
    m.install_snapshot.data.base = (void *)"0123456789";
    m.install_snapshot.data.len = 10;
    buf = encode(&m, &len);
    ASSERT_EQ(feed_all(buf, len, 10), 1);
    ASSERT_ERR(feed_all(buf, len, 9), LP2P_ETOOBIG);
    free(buf);
    raft_configuration_close(&m.install_snapshot.conf);
}

TEST(rpc, encode_refuses)
{
    struct raft_message m;
    size_t len;
    memset(&m, 0, sizeof(m));
    m.type = (enum raft_message_type)42;
    ASSERT_ERR(p2praft__rpc_header_len(&m, &len), LP2P_EINVAL);
    m.type = RAFT_APPEND_ENTRIES;
    m.append_entries.n_entries = P2PRAFT__RPC_ENTRIES_MAX + 1;
    ASSERT_ERR(p2praft__rpc_header_len(&m, &len), LP2P_EINVAL);
}

/* ---- OOM sweep: raft's heap goes through the counting lp2p heap ---- */

static void *rh_malloc(void *data, size_t size)
{
    (void)data;
    return lp2p__malloc(size);
}
static void rh_free(void *data, void *ptr)
{
    (void)data;
    lp2p__free(ptr);
}
static void *rh_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    return lp2p__calloc(n, size);
}
static void *rh_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    return lp2p__realloc(ptr, size);
}
static void *rh_aligned_alloc(void *data, size_t alignment, size_t size)
{
    (void)data;
    (void)alignment;
    return lp2p__malloc(size);
}
static void rh_aligned_free(void *data, size_t alignment, void *ptr)
{
    (void)data;
    (void)alignment;
    lp2p__free(ptr);
}
static struct raft_heap counting_raft_heap = {
    NULL, rh_malloc, rh_free, rh_calloc, rh_realloc, rh_aligned_alloc,
    rh_aligned_free};

struct oom_ctx {
    uint8_t *buf;
    size_t len;
};

/* Decode ctx's frames byte by byte: 0, or the decoder's error. */
static int oom_body(void *ctx)
{
    struct oom_ctx *o = ctx;
    struct p2praft__rpc_dec d;
    struct raft_message out;
    size_t off = 0, used;
    int rv = 0, n = 0;
    p2praft__rpc_dec_init(&d, 1u << 20);
    while (off < o->len) {
        rv = p2praft__rpc_dec_feed(&d, o->buf + off, 1, &used, &out);
        if (rv < 0) {
            break;
        }
        off += used;
        if (rv == 1) {
            p2praft__rpc_message_release(&out);
            n++;
            rv = 0;
        }
    }
    p2praft__rpc_dec_close(&d);
    if (rv == 0 && n != 2) {
        return LP2P_EINVAL;
    }
    return rv;
}

TEST(rpc, oom_sweep)
{
    struct raft_entry e[2];
    struct raft_message a, s;
    struct oom_ctx o;
    uint8_t *b1, *b2;
    size_t l1, l2;
    long swept;
    memset(&a, 0, sizeof(a));
    memset(&s, 0, sizeof(s));
    e[0].term = 1;
    e[0].type = RAFT_COMMAND;
    e[0].buf.base = (void *)"xyz";
    e[0].buf.len = 3;
    e[1] = e[0];
    a.type = RAFT_APPEND_ENTRIES;
    a.append_entries.entries = e;
    a.append_entries.n_entries = 2;
    s.type = RAFT_INSTALL_SNAPSHOT;
    s.install_snapshot.term = 2;
    s.install_snapshot.last_index = 9;
    s.install_snapshot.last_term = 2;
    raft_configuration_init(&s.install_snapshot.conf);
    ASSERT_OK(raft_configuration_add(&s.install_snapshot.conf, 1, "one",
                                     RAFT_VOTER));
    ASSERT_OK(raft_configuration_add(&s.install_snapshot.conf, 2, "two",
                                     RAFT_VOTER));
    s.install_snapshot.data.base = (void *)"snapshot";
    s.install_snapshot.data.len = 8;
    b1 = encode(&a, &l1);
    b2 = encode(&s, &l2);
    o.len = l1 + l2;
    o.buf = malloc(o.len);
    ASSERT(o.buf != NULL);
    memcpy(o.buf, b1, l1);
    memcpy(o.buf + l1, b2, l2);
    raft_heap_set(&counting_raft_heap);
    swept = test__oom_sweep(oom_body, &o);
    raft_heap_set_default();
    ASSERT(swept >= 6);
    free(o.buf);
    free(b1);
    free(b2);
    raft_configuration_close(&s.install_snapshot.conf);
}
