/*
 * /ipfs/ping/1.0.0 (libp2p ping spec): the dialer writes 32 random bytes,
 * the listener echoes them, on one stream, until the dialer closes.
 *
 * Responder: echoes in 32-byte units; at most PING_BUF unechoed bytes are
 * buffered (reading stops beyond that), so a peer that never reads our
 * echoes holds bounded memory. Initiator: one stream per lp2p_host_ping(),
 * 10 s deadline; an echo that differs is LP2P_EPROTO.
 */
#include <openssl/rand.h>
#include <string.h>

#include "host.h"
#include "../util/heap.h"
#include "../util/log.h"

#define PING_SIZE 32
#define PING_BUF 1024
#define PING_TIMEOUT_MS 10000

/* ---------------------------------------------------------------------
 * Responder
 */
struct ping_srv {
    struct lp2p_buf in;
    uint8_t out[PING_SIZE];
    int writing;
    int stopped;
    int closed;
};

static void srv_closed(struct lp2p_stream *s, void *data)
{
    struct ping_srv *p = data;
    (void)s;
    lp2p__buf_free(&p->in);
    lp2p__free(p);
}

static void srv_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                     size_t len);

static void srv_close(struct lp2p_stream *s, struct ping_srv *p)
{
    if (!p->closed) {
        p->closed = 1;
        lp2p_stream_close(s, srv_closed, p);
    }
}

static void srv_written(struct lp2p_stream *s, int status, void *data);

static void srv_echo(struct lp2p_stream *s, struct ping_srv *p)
{
    if (p->writing || p->closed || p->in.len < PING_SIZE) {
        return;
    }
    memcpy(p->out, p->in.data, PING_SIZE);
    lp2p__buf_consume(&p->in, PING_SIZE);
    if (lp2p_stream_write(s, p->out, PING_SIZE, srv_written, p) != 0) {
        srv_close(s, p);
        return;
    }
    p->writing = 1;
    if (p->stopped && p->in.len < PING_BUF) {
        p->stopped = 0;
        lp2p_stream_read_start(s, srv_read);
    }
}

static void srv_written(struct lp2p_stream *s, int status, void *data)
{
    struct ping_srv *p = data;
    p->writing = 0;
    if (status != 0) {
        srv_close(s, p);
        return;
    }
    srv_echo(s, p);
}

static void srv_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                     size_t len)
{
    struct ping_srv *p = lp2p_stream_data(s);
    if (status != 0) {
        srv_close(s, p);
        return;
    }
    if (lp2p__buf_append(&p->in, buf, len) != 0) {
        srv_close(s, p);
        return;
    }
    if (p->in.len >= PING_BUF) {
        p->stopped = 1;
        lp2p_stream_read_stop(s);
    }
    srv_echo(s, p);
}

void lp2p__ping_handler(struct lp2p_stream *s, void *data)
{
    struct ping_srv *p = lp2p__calloc(1, sizeof(*p));
    (void)data;
    if (p == NULL) {
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    lp2p__buf_init(&p->in);
    lp2p_stream_set_data(s, p);
    if (lp2p_stream_read_start(s, srv_read) != 0) {
        srv_close(s, p);
    }
}

void lp2p__ping_free_all(struct lp2p_host *host)
{
    (void)host; /* ping streams are ordinary streams: nothing to free */
}

/* ---------------------------------------------------------------------
 * Initiator
 */
struct ping_req {
    struct lp2p_host *host;
    lp2p_ping_cb cb;
    void *data;
    struct lp2p_stream *s;
    uint8_t sent[PING_SIZE];
    uint8_t got[PING_SIZE];
    size_t n;
    uint64_t t0;
    int done;
};

static void req_closed(struct lp2p_stream *s, void *data)
{
    (void)s;
    lp2p__free(data);
}

static void req_finish(struct ping_req *r, int status, uint64_t rtt)
{
    if (r->done) {
        return;
    }
    r->done = 1;
    r->cb(r->host, status, rtt, r->data);
    if (r->s != NULL) {
        lp2p_stream_close(r->s, req_closed, r);
    } else {
        lp2p__free(r);
    }
}

static void req_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                     size_t len)
{
    struct ping_req *r = lp2p_stream_data(s);
    size_t take;
    if (status != 0) {
        req_finish(r, status == LP2P_EEOF ? LP2P_EPROTO : status, 0);
        return;
    }
    take = PING_SIZE - r->n < len ? PING_SIZE - r->n : len;
    memcpy(r->got + r->n, buf, take);
    r->n += take;
    if (r->n == PING_SIZE) {
        uint64_t rtt = uv_hrtime() - r->t0;
        req_finish(r,
                   memcmp(r->got, r->sent, PING_SIZE) == 0 ? 0 : LP2P_EPROTO,
                   rtt);
    }
}

static void req_open(struct lp2p_stream *s, int status, void *data)
{
    struct ping_req *r = data;
    int rv;
    if (status != 0) {
        req_finish(r, status, 0);
        return;
    }
    r->s = s;
    lp2p_stream_set_data(s, r);
    rv = lp2p_stream_set_deadline(s, PING_TIMEOUT_MS);
    if (rv == 0) {
        rv = lp2p_stream_read_start(s, req_read);
    }
    r->t0 = uv_hrtime();
    if (rv == 0) {
        rv = lp2p_stream_write(s, r->sent, PING_SIZE, NULL, NULL);
    }
    if (rv != 0) {
        req_finish(r, rv, 0);
    }
}

int lp2p_host_ping(struct lp2p_host *host, const struct lp2p_peer_id *peer,
                   lp2p_ping_cb cb, void *data)
{
    static const char *const protos[] = {LP2P_PING_PROTOCOL};
    struct ping_req *r;
    int rv;
    if (host == NULL || peer == NULL || cb == NULL) {
        return LP2P_EINVAL;
    }
    r = lp2p__calloc(1, sizeof(*r));
    if (r == NULL) {
        return LP2P_ENOMEM;
    }
    r->host = host;
    r->cb = cb;
    r->data = data;
    if (RAND_bytes(r->sent, PING_SIZE) != 1) {
        lp2p__free(r);
        return LP2P_ECRYPTO;
    }
    rv = lp2p_stream_open(host, peer, protos, 1, req_open, r);
    if (rv != 0) {
        lp2p__free(r);
    }
    return rv;
}
