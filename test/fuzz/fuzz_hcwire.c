/*
 * Fuzz the hashicorp raft wire (src/raft/hcwire.c) and its translation to
 * libraft messages (src/raft/hcmap.c). The first byte picks what the rest
 * is: 0 a stream of requests as a node receives them (pipelined, each
 * InstallSnapshot followed by its snapshot bytes), 1..5 a stream of
 * responses to requests of rpc type 0..4, 6 a Configuration. Whatever
 * decodes must re-encode to bytes that decode and re-encode identically
 * (the encoding is a fixed point), translate to a raft_message or fail
 * with a code, and free everything.
 *
 * The corpus (test/fuzz/corpus/hcwire/) is seeded from the captured
 * vectors of test/vectors/hashicorp/: mode byte + a .req (with .data after
 * install-snapshot) or + a .resp, and the configuration bytes of a
 * captured InstallSnapshot; and mixed-c-*: a Go node's requests to a
 * p2praft node on the hashicorp wire and that node's responses (written by
 * hctransport.c/hcmap.c), recorded by raftnode -record in a 2 Go + 1 C
 * cluster and cut by `go-raftnode split`.
 */
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"
#include "raft/hcmap.h"
#include "raft/hcwire.h"
#include "util/buf.h"

#define MAXMSG (1u << 20)

/* Any non-empty ID resolves (an FNV hash), to reach past identity checks. */
static int any_id(void *ctx, const uint8_t *id, size_t len, raft_id *out)
{
    uint64_t h = 1469598103934665603ull;
    size_t i;
    (void)ctx;
    if (len == 0 || memchr(id, 0, len) != NULL) {
        return LP2P_EPROTO;
    }
    for (i = 0; i < len; i++) {
        h = (h ^ id[i]) * 1099511628211ull;
    }
    *out = h | 1;
    return 0;
}

static void check_req_fixed_point(const struct p2praft__hc_req *req)
{
    struct lp2p_buf a, b;
    struct p2praft__hc_req again;
    size_t used;
    lp2p__buf_init(&a);
    lp2p__buf_init(&b);
    FUZZ_CHECK(p2praft__hc_req_encode(req, &a) == 0);
    FUZZ_CHECK(p2praft__hc_req_decode(a.data, a.len, MAXMSG + a.len, &again,
                                      &used) == 0);
    FUZZ_CHECK(used == a.len);
    FUZZ_CHECK(p2praft__hc_req_encode(&again, &b) == 0);
    FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    p2praft__hc_req_release(&again);
    lp2p__buf_free(&a);
    lp2p__buf_free(&b);
}

static void translate(const struct p2praft__hc_req *req, const uint8_t *snap,
                      size_t snap_len)
{
    struct p2praft__hc_map m;
    struct p2praft__hc_local local = {3, 10, 2};
    struct p2praft__hc_pending q, p;
    struct raft_message msg;
    struct lp2p_buf wire;
    char from[128] = "peer";
    const struct p2praft__hc_bytes *addr = &req->append_entries.header.addr;
    raft_id from_id = 1;
    int rv;
    if (addr->p != NULL && addr->len > 0 && addr->len < sizeof(from) &&
        memchr(addr->p, 0, addr->len) == NULL) {
        memcpy(from, addr->p, addr->len);
        from[addr->len] = '\0';
        (void)any_id(NULL, addr->p, addr->len, &from_id);
    }
    memset(&m, 0, sizeof(m));
    m.local_id = from;
    m.resolve = any_id;
    rv = p2praft__hc_decode_request(&m, req, snap, snap_len, &local, from_id,
                                    from, &msg, &q);
    if (rv != 0) {
        FUZZ_CHECK(rv < 0);
        return;
    }
    FUZZ_CHECK(q.type == req->type);
    if (msg.type == RAFT_APPEND_ENTRIES) {
        unsigned i;
        for (i = 0; i < msg.append_entries.n_entries; i++) {
            FUZZ_CHECK(msg.append_entries.entries[i].term != 0);
            FUZZ_CHECK(msg.append_entries.entries[i].batch != NULL);
        }
    }
    /* And out again, as this node would send it. */
    lp2p__buf_init(&wire);
    rv = p2praft__hc_encode_request(&m, &msg, &wire, &p);
    FUZZ_CHECK(rv == 0 || rv == LP2P_EPROTO || rv == LP2P_ENOMEM);
    if (rv == 0) {
        struct p2praft__hc_req back;
        size_t used;
        FUZZ_CHECK(p2praft__hc_req_decode(wire.data, wire.len,
                                          MAXMSG + wire.len, &back,
                                          &used) == 0);
        FUZZ_CHECK(back.type == req->type);
        p2praft__hc_req_release(&back);
    }
    lp2p__buf_free(&wire);
    p2praft__hc_message_release(&msg);
}

static void requests(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        struct p2praft__hc_req req;
        size_t used = 0, snap_len = 0;
        int rv = p2praft__hc_req_decode(data + pos, size - pos, MAXMSG, &req,
                                        &used);
        if (rv != 0) {
            FUZZ_CHECK(rv < 0);
            return;
        }
        FUZZ_CHECK(used > 0 && used <= size - pos);
        pos += used;
        check_req_fixed_point(&req);
        if (req.type == P2PRAFT__HC_INSTALL_SNAPSHOT) {
            FUZZ_CHECK(req.install_snapshot.size >= 0);
            if ((uint64_t)req.install_snapshot.size > size - pos) {
                p2praft__hc_req_release(&req);
                return; /* the snapshot bytes have not all arrived */
            }
            snap_len = (size_t)req.install_snapshot.size;
        }
        translate(&req, data + pos, snap_len);
        pos += snap_len;
        p2praft__hc_req_release(&req);
    }
}

static void responses(uint8_t type, const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        struct p2praft__hc_resp resp, again;
        struct p2praft__hc_pending p;
        struct raft_message msg;
        struct lp2p_buf a, b;
        size_t used = 0;
        bool deliver;
        int rv = p2praft__hc_resp_decode(type, data + pos, size - pos, MAXMSG,
                                         &resp, &used);
        if (rv != 0) {
            FUZZ_CHECK(rv < 0);
            return;
        }
        FUZZ_CHECK(used > 0 && used <= size - pos);
        pos += used;
        lp2p__buf_init(&a);
        lp2p__buf_init(&b);
        FUZZ_CHECK(p2praft__hc_resp_encode(&resp, &a) == 0);
        FUZZ_CHECK(p2praft__hc_resp_decode(type, a.data, a.len, MAXMSG + a.len,
                                           &again, &used) == 0);
        FUZZ_CHECK(used == a.len);
        FUZZ_CHECK(p2praft__hc_resp_encode(&again, &b) == 0);
        FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        p2praft__hc_resp_release(&again);
        lp2p__buf_free(&a);
        lp2p__buf_free(&b);
        /* As the answer to a request we sent (no allocation). */
        memset(&p, 0, sizeof(p));
        p.type = type;
        p.term = 3;
        p.prev_log_index = 5;
        p.n_entries = 2;
        p.last_index = 9;
        FUZZ_CHECK(p2praft__hc_decode_response(&p, &resp, 2, "peer", &msg,
                                               &deliver) == 0);
        if (deliver && msg.type == RAFT_REQUEST_VOTE_RESULT &&
            msg.request_vote_result.pre_vote && msg.request_vote_result.term > p.term) {
            FUZZ_CHECK(!msg.request_vote_result.vote_granted);
        }
        if (deliver && msg.type == RAFT_APPEND_ENTRIES_RESULT &&
            msg.append_entries_result.rejected > 0) {
            FUZZ_CHECK(msg.append_entries_result.last_log_index <
                       msg.append_entries_result.rejected);
        }
        p2praft__hc_resp_release(&resp);
    }
}

static void configuration(const uint8_t *data, size_t size)
{
    struct p2praft__hc_configuration conf;
    struct lp2p_buf a;
    int rv = p2praft__hc_conf_decode(data, size, &conf);
    if (rv != 0) {
        FUZZ_CHECK(rv < 0);
        return;
    }
    lp2p__buf_init(&a);
    FUZZ_CHECK(p2praft__hc_conf_encode(&conf, &a) == 0);
    FUZZ_CHECK(p2praft__hc_peers_encode(&conf, &a) == 0);
    lp2p__buf_free(&a);
    p2praft__hc_conf_release(&conf);
}

FUZZ_TARGET(hcwire)
{
    if (size < 1) {
        return 0;
    }
    if (data[0] == 0) {
        requests(data + 1, size - 1);
    } else if (data[0] <= 5) {
        responses((uint8_t)(data[0] - 1), data + 1, size - 1);
    } else if (data[0] == 6) {
        configuration(data + 1, size - 1);
    }
    return 0;
}
