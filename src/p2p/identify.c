/*
 * /ipfs/id/1.0.0 (libp2p identify spec).
 *
 * Responder: one uvarint-length-prefixed Identify protobuf {1 publicKey,
 * 2 listenAddrs (binary multiaddrs), 3 protocols, 4 observedAddr, 5
 * protocolVersion, 6 agentVersion}, then FIN.
 *
 * Initiator: reads every message until EOF (go may split its answer in
 * two), at most ID_MAX_MSGS messages of at most ID_MAX_MSG bytes each, and
 * merges them: scalar fields take the last value, repeated ones
 * accumulate. The publicKey, if present, must hash to the peer ID that the
 * Noise handshake proved (LP2P_EPEERID otherwise).
 */
#include <string.h>

#include "host.h"
#include "key.h"
#include "pb.h"
#include "../util/heap.h"
#include "../util/log.h"
#include "../util/varint.h"

#define MOD "identify"
#define ID_MAX_MSG 8192
#define ID_MAX_MSGS 10
#define ID_MAX_ITEMS 256
#define ID_TIMEOUT_MS 10000
#define ID_PROTOCOL_VERSION "ipfs/0.1.0"

int lp2p__maddr_to_bytes(const char *text, struct lp2p_buf *out)
{
    struct lp2p_multiaddr ma;
    int rv;
    lp2p_multiaddr_init(&ma);
    rv = lp2p_multiaddr_parse(&ma, text, NULL, 0);
    if (rv != 0) {
        return rv;
    }
    rv = lp2p__buf_append(out, ma.bytes, ma.len);
    lp2p_multiaddr_free(&ma);
    return rv;
}

int lp2p__maddr_to_text(const uint8_t *p, size_t len, char *out, size_t cap)
{
    struct lp2p_multiaddr ma;
    int rv;
    lp2p_multiaddr_init(&ma);
    rv = lp2p_multiaddr_from_bytes(&ma, p, len, NULL, 0);
    if (rv != 0) {
        return rv;
    }
    rv = lp2p_multiaddr_to_string(&ma, out, cap);
    lp2p_multiaddr_free(&ma);
    if (rv < 0) {
        return rv;
    }
    return (size_t)rv < cap ? 0 : LP2P_EOVERFLOW;
}

static int put_maddr(struct lp2p_buf *b, uint32_t num, const char *text)
{
    struct lp2p_buf tmp;
    int rv;
    lp2p__buf_init(&tmp);
    rv = lp2p__maddr_to_bytes(text, &tmp);
    if (rv == 0) {
        rv = lp2p__pb_put_bytes(b, num, tmp.data, tmp.len);
    } else {
        rv = 0; /* skip an address we cannot encode */
    }
    lp2p__buf_free(&tmp);
    return rv;
}

/* The Identify message of `host` for a stream whose peer sees us through
 * `remote_addr` (NULL: omitted), length-prefixed. */
static int build_identify(struct lp2p_host *host, const char *remote_addr,
                          struct lp2p_buf *out)
{
    struct lp2p_buf msg;
    uint8_t pk[36];
    size_t i;
    int rv;
    const char *la;
    lp2p__buf_init(&msg);
    lp2p__pubkey_pb_encode(host->key.pub, pk);
    rv = lp2p__pb_put_bytes(&msg, 1, pk, sizeof(pk));
    for (i = 0; rv == 0 && (la = lp2p__listen_addr(host, i)) != NULL; i++) {
        rv = put_maddr(&msg, 2, la);
    }
    for (i = 0; rv == 0 && i < host->n_handlers; i++) {
        rv = lp2p__pb_put_string(&msg, 3, host->handlers[i].protocol);
    }
    if (rv == 0 && remote_addr != NULL && remote_addr[0] != '\0') {
        rv = put_maddr(&msg, 4, remote_addr);
    }
    if (rv == 0) {
        rv = lp2p__pb_put_string(&msg, 5, ID_PROTOCOL_VERSION);
    }
    if (rv == 0) {
        rv = lp2p__pb_put_string(&msg, 6, host->agent);
    }
    if (rv == 0) {
        rv = lp2p__buf_append_varint(out, msg.len);
    }
    if (rv == 0) {
        rv = lp2p__buf_append(out, msg.data, msg.len);
    }
    lp2p__buf_free(&msg);
    return rv;
}

static void resp_closed(struct lp2p_stream *s, void *data)
{
    (void)s;
    lp2p__free(data);
}

void lp2p__identify_handler(struct lp2p_stream *s, void *data)
{
    struct lp2p_buf out;
    size_t len;
    uint8_t *p;
    (void)data;
    lp2p__buf_init(&out);
    if (build_identify(s->host, s->conn != NULL ? s->conn->remote_addr : NULL,
                       &out) != 0) {
        lp2p__buf_free(&out);
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    p = lp2p__buf_detach(&out, &len);
    if (lp2p_stream_write(s, p, len, NULL, NULL) != 0) {
        lp2p_stream_reset(s);
    }
    /* close: FIN after the write; `p` lives until the stream is gone. */
    lp2p_stream_close(s, resp_closed, p);
}

/* ---------------------------------------------------------------------
 * Initiator
 */
struct id_req {
    struct lp2p_host *host;
    struct lp2p_peer_id peer;
    lp2p_identify_cb cb;
    void *data;
    struct lp2p_stream *s;
    struct lp2p_buf in;
    int done;
};

struct id_result {
    char *protocol_version;
    char *agent_version;
    char **protocols;
    size_t n_protocols;
    char **addrs;
    size_t n_addrs;
    char *observed;
    int has_pubkey;
    uint8_t pubkey[32];
};

static void result_free(struct id_result *r)
{
    size_t i;
    lp2p__free(r->protocol_version);
    lp2p__free(r->agent_version);
    for (i = 0; i < r->n_protocols; i++) {
        lp2p__free(r->protocols[i]);
    }
    lp2p__free(r->protocols);
    for (i = 0; i < r->n_addrs; i++) {
        lp2p__free(r->addrs[i]);
    }
    lp2p__free(r->addrs);
    lp2p__free(r->observed);
}

static char *dup_n(const uint8_t *p, size_t n)
{
    char *s = lp2p__malloc(n + 1);
    if (s != NULL) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static int push(char ***arr, size_t *n, char *s)
{
    char **na;
    if (s == NULL) {
        return LP2P_ENOMEM;
    }
    if (*n >= ID_MAX_ITEMS) {
        lp2p__free(s);
        return 0; /* ignore beyond the cap */
    }
    na = lp2p__realloc(*arr, (*n + 1) * sizeof(*na));
    if (na == NULL) {
        lp2p__free(s);
        return LP2P_ENOMEM;
    }
    na[(*n)++] = s;
    *arr = na;
    return 0;
}

static int set_str(char **dst, const uint8_t *p, size_t n)
{
    char *s = dup_n(p, n);
    if (s == NULL) {
        return LP2P_ENOMEM;
    }
    lp2p__free(*dst);
    *dst = s;
    return 0;
}

/* Merge one Identify message into `r`. */
static int parse_one(const struct lp2p_peer_id *peer, const uint8_t *p,
                     size_t len, struct id_result *r)
{
    struct lp2p_pb_reader rd;
    struct lp2p_pb_field f;
    char text[LP2P_MULTIADDR_STRMAX];
    int rv;
    lp2p__pb_reader_init(&rd, p, len);
    while ((rv = lp2p__pb_next(&rd, &f)) == 1) {
        if (f.wire != LP2P_PB_LEN) {
            continue;
        }
        switch (f.num) {
        case 1: {
            struct lp2p_peer_id id;
            rv = lp2p__pubkey_pb_decode(f.data, f.len, r->pubkey);
            if (rv != 0) {
                return LP2P_EBADKEY;
            }
            rv = lp2p_peer_id_from_pubkey_pb(f.data, f.len, &id);
            if (rv != 0 || !lp2p_peer_id_equal(&id, peer)) {
                return LP2P_EPEERID;
            }
            r->has_pubkey = 1;
            break;
        }
        case 2:
            if (lp2p__maddr_to_text(f.data, f.len, text, sizeof(text)) == 0) {
                rv = push(&r->addrs, &r->n_addrs, lp2p__strdup(text));
                if (rv != 0) {
                    return rv;
                }
            }
            break;
        case 3:
            rv = push(&r->protocols, &r->n_protocols, dup_n(f.data, f.len));
            if (rv != 0) {
                return rv;
            }
            break;
        case 4:
            if (lp2p__maddr_to_text(f.data, f.len, text, sizeof(text)) == 0) {
                rv = set_str(&r->observed, (const uint8_t *)text,
                             strlen(text));
                if (rv != 0) {
                    return rv;
                }
            }
            break;
        case 5:
            rv = set_str(&r->protocol_version, f.data, f.len);
            if (rv != 0) {
                return rv;
            }
            break;
        case 6:
            rv = set_str(&r->agent_version, f.data, f.len);
            if (rv != 0) {
                return rv;
            }
            break;
        default:
            break;
        }
    }
    return rv < 0 ? LP2P_EPROTO : 0;
}

/* Parse every length-prefixed message of `p`. */
int lp2p__identify_parse(const struct lp2p_peer_id *peer, const uint8_t *p,
                         size_t len, struct id_result *r);
int lp2p__identify_parse(const struct lp2p_peer_id *peer, const uint8_t *p,
                         size_t len, struct id_result *r)
{
    int msgs = 0, rv;
    while (len > 0) {
        uint64_t n;
        int k = lp2p__varint_decode(p, len, &n);
        if (k < 0 || n > ID_MAX_MSG || n > len - (size_t)k ||
            ++msgs > ID_MAX_MSGS) {
            return LP2P_EPROTO;
        }
        rv = parse_one(peer, p + k, (size_t)n, r);
        if (rv != 0) {
            return rv;
        }
        p += (size_t)k + (size_t)n;
        len -= (size_t)k + (size_t)n;
    }
    return 0;
}

int lp2p__identify_check(const struct lp2p_peer_id *peer, const uint8_t *p,
                         size_t len, size_t *n_protocols, size_t *n_addrs)
{
    struct id_result r;
    int rv;
    memset(&r, 0, sizeof(r));
    rv = lp2p__identify_parse(peer, p, len, &r);
    *n_protocols = r.n_protocols;
    *n_addrs = r.n_addrs;
    result_free(&r);
    return rv;
}

/* Build our own Identify response (tests and fuzz seeds). */
int lp2p__identify_build(struct lp2p_host *host, const char *observed,
                         struct lp2p_buf *out)
{
    return build_identify(host, observed, out);
}

static void id_closed(struct lp2p_stream *s, void *data)
{
    struct id_req *q = data;
    (void)s;
    lp2p__buf_free(&q->in);
    lp2p__free(q);
}

static void id_finish(struct id_req *q, int status)
{
    struct id_result r;
    struct lp2p_identify_info info;
    if (q->done) {
        return;
    }
    q->done = 1;
    memset(&r, 0, sizeof(r));
    memset(&info, 0, sizeof(info));
    if (status == 0) {
        status = lp2p__identify_parse(&q->peer, q->in.data, q->in.len, &r);
    }
    if (status == 0) {
        size_t i;
        uint64_t now = uv_now(q->host->loop);
        char **protos = NULL;
        size_t np = 0;
        char *agent = r.agent_version ? lp2p__strdup(r.agent_version) : NULL;
        for (i = 0; i < r.n_addrs; i++) {
            lp2p__ps_add_addr(&q->host->ps, &q->peer, r.addrs[i], now,
                              LP2P_TTL_CONNECTED);
        }
        if (r.n_protocols > 0) {
            protos = lp2p__calloc(r.n_protocols, sizeof(*protos));
        }
        for (i = 0; protos != NULL && i < r.n_protocols; i++) {
            protos[np] = lp2p__strdup(r.protocols[i]);
            if (protos[np] != NULL) {
                np++;
            }
        }
        if (lp2p__ps_set_identity(&q->host->ps, &q->peer, agent, protos, np) !=
            0) {
            for (i = 0; i < np; i++) {
                lp2p__free(protos[i]);
            }
            lp2p__free(protos);
            lp2p__free(agent);
        }
        info.protocol_version = r.protocol_version;
        info.agent_version = r.agent_version;
        info.protocols = (const char *const *)r.protocols;
        info.n_protocols = r.n_protocols;
        info.listen_addrs = (const char *const *)r.addrs;
        info.n_listen_addrs = r.n_addrs;
        info.observed_addr = r.observed;
        if (r.has_pubkey) {
            memcpy(info.pubkey, r.pubkey, 32);
        } else {
            lp2p_peerstore_pubkey(q->host, &q->peer, info.pubkey);
        }
    }
    q->cb(q->host, status, status == 0 ? &info : NULL, q->data);
    result_free(&r);
    if (q->s != NULL) {
        lp2p_stream_close(q->s, id_closed, q);
    } else {
        lp2p__buf_free(&q->in);
        lp2p__free(q);
    }
}

static void id_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                    size_t len)
{
    struct id_req *q = lp2p_stream_data(s);
    if (status != 0) {
        id_finish(q, status == LP2P_EEOF ? 0 : status);
        return;
    }
    if (q->in.len + len > ID_MAX_MSGS * (ID_MAX_MSG + 2)) {
        id_finish(q, LP2P_EPROTO);
        return;
    }
    if (lp2p__buf_append(&q->in, buf, len) != 0) {
        id_finish(q, LP2P_ENOMEM);
    }
}

static void id_open(struct lp2p_stream *s, int status, void *data)
{
    struct id_req *q = data;
    int rv;
    if (status != 0) {
        id_finish(q, status);
        return;
    }
    q->s = s;
    lp2p_stream_set_data(s, q);
    rv = lp2p_stream_set_deadline(s, ID_TIMEOUT_MS);
    if (rv == 0) {
        rv = lp2p_stream_close_write(s);
    }
    if (rv == 0) {
        rv = lp2p_stream_read_start(s, id_read);
    }
    if (rv != 0) {
        id_finish(q, rv);
    }
}

int lp2p_host_identify(struct lp2p_host *host,
                       const struct lp2p_peer_id *peer, lp2p_identify_cb cb,
                       void *data)
{
    static const char *const protos[] = {LP2P_IDENTIFY_PROTOCOL};
    struct id_req *q;
    int rv;
    if (host == NULL || peer == NULL || cb == NULL) {
        return LP2P_EINVAL;
    }
    q = lp2p__calloc(1, sizeof(*q));
    if (q == NULL) {
        return LP2P_ENOMEM;
    }
    q->host = host;
    q->peer = *peer;
    q->cb = cb;
    q->data = data;
    lp2p__buf_init(&q->in);
    rv = lp2p_stream_open(host, peer, protos, 1, id_open, q);
    if (rv != 0) {
        lp2p__free(q);
    }
    return rv;
}
