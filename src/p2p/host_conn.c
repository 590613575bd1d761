/*
 * The upgrade pipeline of one connection: the host drives the sans-I/O
 * machines and moves bytes between them and the socket.
 *
 *   raw TCP bytes --> multistream "/noise" --> Noise XX handshake
 *     --> Noise transport (decrypt) --> [multistream "/yamux/1.0.0"
 *         unless the muxer was inlined in the handshake] --> Yamux
 *
 * and the reverse for output: Yamux frames are pulled, encrypted into
 * Noise transport messages and written. Input may arrive in any chunking;
 * bytes left over by one stage (a peer that pipelines) go to the next.
 *
 * Failure modes: any machine error closes the connection with that error
 * (LP2P_ENOPROTO when the peer offers no /noise, LP2P_EPEERID when the
 * Noise identity is not the one dialed, LP2P_ECRYPTO on a bad tag,
 * LP2P_EPROTO for garbage...). The handshake timer (host_tcp.c) bounds a
 * peer that stalls. Memory per connection is bounded: the read buffer is
 * shared, the plaintext buffer holds at most one read's worth, Yamux
 * bounds itself, and output is only pulled while the socket's queue is
 * below conn_write_buffer.
 */
#include <string.h>

#include "host.h"
#include "../util/heap.h"
#include "../util/log.h"

#define MOD "conn"

static const char *const noise_protos[] = {LP2P_NOISE_PROTOCOL};
static const char *const yamux_protos[] = {"/yamux/1.0.0"};


static int flush_raw(struct lp2p_conn *c)
{
    struct lp2p_sec *sec = c->sec;
    int rv = 0;
    if (sec->out.len > 0) {
        rv = lp2p__conn_write(c, sec->out.data, sec->out.len);
        sec->out.len = 0;
    }
    return rv;
}

static int send_plain(struct lp2p_conn *c, const uint8_t *p, size_t len)
{
    int rv = lp2p__noise_transport_encrypt(&c->sec->tr, p, len, &c->sec->out);
    if (rv != 0) {
        return rv;
    }
    return flush_raw(c);
}

/* Pull Yamux output, encrypt, write, while the socket queue has room. */
static int flush_yamux(struct lp2p_conn *c)
{
    struct lp2p_sec *sec = c->sec;
    uint64_t limit = c->host->cfg.conn_write_buffer;
    int rv = 0;
    if (sec == NULL || sec->ymx == NULL || c->state == LP2P_CONN_S_CLOSING) {
        return 0;
    }
    if (sec->in_feed || sec->dirty < 0) {
        sec->dirty = 1;
        return 0;
    }
    sec->dirty = -1; /* re-entrancy guard: WRITABLE fires inside pull */
    while (c->write_queued < limit && lp2p__yamux_want_write(sec->ymx)) {
        size_t n = lp2p__yamux_pull(sec->ymx, sec->pull, sizeof(sec->pull));
        if (n == 0) {
            break;
        }
        rv = lp2p__noise_transport_encrypt(&sec->tr, sec->pull, n, &sec->out);
        if (rv != 0) {
            break;
        }
        if (sec->out.len >= 256 * 1024) {
            rv = flush_raw(c);
            if (rv != 0 || c->state == LP2P_CONN_S_CLOSING) {
                break;
            }
        }
    }
    if (rv == 0) {
        rv = flush_raw(c);
    }
    sec->dirty = 0;
    if (rv != 0 && c->state != LP2P_CONN_S_CLOSING) {
        /* Streams call this from API calls: never close under them. */
        lp2p__conn_fail(c, rv);
    }
    return rv;
}

/* Streams call this after touching the session. */
void lp2p__conn_kick(struct lp2p_conn *c)
{
    if (c != NULL && c->sec != NULL) {
        flush_yamux(c);
    }
}

int lp2p__conn_ping(struct lp2p_conn *c)
{
    int rv;
    if (c->sec == NULL || c->sec->ymx == NULL ||
        c->state != LP2P_CONN_S_READY) {
        return LP2P_ESTATE;
    }
    rv = lp2p__yamux_ping(c->sec->ymx, NULL);
    if (rv == 0) {
        flush_yamux(c);
    }
    return rv;
}

void lp2p__conn_writable(struct lp2p_conn *c)
{
    lp2p__conn_kick(c);
}

static void on_yamux_event(void *ud, const struct lp2p__yamux_event *ev)
{
    struct lp2p_conn *c = ud;
    struct lp2p_stream *s = NULL;
    if (c->state == LP2P_CONN_S_CLOSING) {
        return;
    }
    if (ev->stream != NULL) {
        s = lp2p__yamux_stream_user(ev->stream);
    }
    switch (ev->type) {
    case LP2P__YAMUX_EV_STREAM_OPENED:
        lp2p__stream_inbound(c, ev->stream);
        break;
    case LP2P__YAMUX_EV_STREAM_ACKED:
        break;
    case LP2P__YAMUX_EV_DATA:
        if (s != NULL) {
            lp2p__stream_on_data(s, ev->data, ev->len);
        } else {
            lp2p__yamux_stream_consume(ev->stream, ev->len);
        }
        break;
    case LP2P__YAMUX_EV_FIN:
        if (s != NULL) {
            lp2p__stream_on_fin(s);
        }
        break;
    case LP2P__YAMUX_EV_RESET:
        if (s != NULL) {
            lp2p__stream_on_reset(s);
        } else {
            lp2p__yamux_stream_release(ev->stream);
        }
        break;
    case LP2P__YAMUX_EV_WRITABLE:
        if (s != NULL) {
            lp2p__stream_on_writable(s);
        }
        break;
    case LP2P__YAMUX_EV_GO_AWAY:
        LOG_DEBUG(MOD, "%s sent GO_AWAY (%u)", c->remote_addr, ev->value);
        lp2p__conn_drain(c);
        break;
    case LP2P__YAMUX_EV_PING_ACK:
        c->ping_outstanding = 0;
        break;
    case LP2P__YAMUX_EV_ERROR:
        LOG_INFO(MOD, "yamux session with %s failed: %s", c->remote_addr,
                 lp2p_strerror(ev->error));
        break;
    }
}

static int start_yamux(struct lp2p_conn *c)
{
    struct lp2p_host *host = c->host;
    struct lp2p__yamux_config ycfg;
    int rv;
    lp2p__yamux_config_init(&ycfg);
    ycfg.max_inbound_streams = host->cfg.max_inbound_streams;
    ycfg.max_outbound_streams = host->cfg.max_outbound_streams;
    ycfg.max_window = host->cfg.stream_window;
    if (ycfg.window_budget < ycfg.max_window) {
        ycfg.window_budget = ycfg.max_window;
    }
    if (ycfg.max_backlog > ycfg.max_inbound_streams) {
        ycfg.max_backlog = ycfg.max_inbound_streams;
    }
    rv = lp2p__yamux_session_new(&c->sec->ymx, !c->inbound, &ycfg,
                                 on_yamux_event, c);
    if (rv != 0) {
        return rv;
    }
    c->sec->phase = LP2P_SEC_MUXED;
    c->state = LP2P_CONN_S_READY;
    LOG_DEBUG(MOD, "%s conn with %s ready (yamux %s)",
              c->inbound ? "inbound" : "outbound", c->remote_addr,
              c->sec->inlined ? "inlined" : "negotiated");
    lp2p__host_conn_ready(c);
    return 0;
}

/* Set up the handshake and write our first message (initiator) to
 * sec->out without sending it. */
static int noise_begin(struct lp2p_conn *c)
{
    struct lp2p_sec *sec = c->sec;
    struct lp2p_noise_config ncfg;
    int rv;
    memset(&ncfg, 0, sizeof(ncfg));
    ncfg.identity = &c->host->key;
    ncfg.expected = c->has_expected ? &c->expected : NULL;
    ncfg.muxers = yamux_protos;
    ncfg.nmuxers = c->host->cfg.no_inline_muxer ? 0 : 1;
    sec->hs_init = 1;
    rv = lp2p__noise_hs_init(&sec->hs, !c->inbound, &ncfg);
    if (rv != 0) {
        return rv;
    }
    return lp2p__noise_hs_start(&sec->hs, &sec->out);
}

static int start_noise(struct lp2p_conn *c)
{
    int rv = 0;
    c->sec->phase = LP2P_SEC_NOISE;
    if (!c->sec->hs_init) {
        rv = noise_begin(c);
    }
    if (rv == 0) {
        rv = flush_raw(c);
    }
    return rv;
}

static int noise_done(struct lp2p_conn *c)
{
    struct lp2p_sec *sec = c->sec;
    struct lp2p_buf msg;
    const char *muxer;
    int rv;
    c->peer = *lp2p__noise_hs_remote_id(&sec->hs);
    lp2p__ps_set_pubkey(&c->host->ps, &c->peer, sec->hs.remote_pub);
    muxer = lp2p__noise_hs_muxer(&sec->hs);
    rv = lp2p__noise_hs_split(&sec->hs, &sec->tr);
    if (rv != 0) {
        return rv;
    }
    sec->tr_init = 1;
    lp2p__noise_hs_close(&sec->hs);
    sec->hs_init = 0;
    if (lp2p_peer_id_equal(&c->peer, &c->host->id)) {
        LOG_WARN(MOD, "%s has our own identity", c->remote_addr);
        return LP2P_EINVAL;
    }
    if (muxer != NULL) {
        sec->inlined = 1;
        return start_yamux(c);
    }
    /* No inlined muxer: negotiate /yamux/1.0.0 inside Noise. */
    if (c->inbound) {
        rv = lp2p__mss_init_responder(&sec->mss, yamux_protos, 1, NULL, NULL);
    } else {
        rv = lp2p__mss_init_initiator(&sec->mss, yamux_protos, 1);
    }
    if (rv != 0) {
        return rv;
    }
    sec->phase = LP2P_SEC_MUX_MSS;
    lp2p__buf_init(&msg);
    rv = lp2p__mss_start(&sec->mss, &msg);
    if (rv == 0 && msg.len > 0) {
        rv = send_plain(c, msg.data, msg.len);
    }
    lp2p__buf_free(&msg);
    return rv;
}

int lp2p__conn_upgrade_start(struct lp2p_conn *c)
{
    struct lp2p_sec *sec = lp2p__calloc(1, sizeof(*sec));
    int rv;
    if (sec == NULL) {
        return LP2P_ENOMEM;
    }
    lp2p__buf_init(&sec->out);
    lp2p__buf_init(&sec->plain);
    c->sec = sec;
    sec->phase = LP2P_SEC_MSS;
    if (c->inbound) {
        rv = lp2p__mss_init_responder(&sec->mss, noise_protos, 1, NULL, NULL);
    } else {
        rv = lp2p__mss_init_initiator(&sec->mss, noise_protos, 1);
    }
    if (rv != 0) {
        return rv;
    }
    rv = lp2p__mss_start(&sec->mss, &sec->out);
    if (rv == 0 && !c->inbound) {
        /* Pipeline Noise message 1 behind the /noise proposal: we speak
         * nothing else, and it saves a round trip. A responder that
         * accepts /noise finds it right after the protocol line. */
        rv = noise_begin(c);
    }
    if (rv != 0) {
        return rv;
    }
    return flush_raw(c);
}

/* Decrypted bytes: the muxer negotiation, then Yamux. */
static int process_plain(struct lp2p_conn *c)
{
    struct lp2p_sec *sec = c->sec;
    int rv;
    if (sec->phase == LP2P_SEC_MUX_MSS && sec->plain.len > 0) {
        struct lp2p_buf msg;
        int n;
        lp2p__buf_init(&msg);
        n = lp2p__mss_feed(&sec->mss, sec->plain.data, sec->plain.len, &msg);
        rv = n < 0 ? n : 0;
        if (rv == 0 && msg.len > 0) {
            rv = send_plain(c, msg.data, msg.len);
        }
        lp2p__buf_free(&msg);
        if (rv != 0) {
            return rv;
        }
        lp2p__buf_consume(&sec->plain, (size_t)n);
        if (!lp2p__mss_done(&sec->mss)) {
            return 0;
        }
        rv = start_yamux(c);
        if (rv != 0) {
            return rv;
        }
    }
    if (sec->phase != LP2P_SEC_MUXED || sec->plain.len == 0 ||
        c->state == LP2P_CONN_S_CLOSING) {
        return 0;
    }
    sec->in_feed = 1;
    rv = lp2p__yamux_feed(sec->ymx, sec->plain.data, sec->plain.len);
    sec->in_feed = 0;
    sec->plain.len = 0;
    if (c->state == LP2P_CONN_S_CLOSING) {
        return 0;
    }
    /* Send what the session queued (also its GO_AWAY after an error). */
    sec->dirty = 0;
    flush_yamux(c);
    return rv;
}

int lp2p__conn_feed(struct lp2p_conn *c, const uint8_t *p, size_t len)
{
    struct lp2p_sec *sec = c->sec;
    int n, rv;
    while (len > 0 && c->state != LP2P_CONN_S_CLOSING) {
        switch (sec->phase) {
        case LP2P_SEC_MSS:
            n = lp2p__mss_feed(&sec->mss, p, len, &sec->out);
            rv = flush_raw(c);
            if (n < 0) {
                if (n == LP2P_ENOPROTO || n == LP2P_EPROTO) {
                    LOG_INFO(MOD, "security negotiation with %s failed: %s",
                             c->remote_addr, lp2p_strerror(n));
                }
                return n;
            }
            if (rv != 0) {
                return rv;
            }
            p += n;
            len -= (size_t)n;
            if (!lp2p__mss_done(&sec->mss)) {
                return 0;
            }
            rv = start_noise(c);
            if (rv != 0) {
                return rv;
            }
            break;
        case LP2P_SEC_NOISE:
            n = lp2p__noise_hs_feed(&sec->hs, p, len, &sec->out);
            rv = flush_raw(c);
            if (n < 0) {
                LOG_INFO(MOD, "noise handshake with %s failed: %s",
                         c->remote_addr, lp2p_strerror(n));
                return n;
            }
            if (rv != 0) {
                return rv;
            }
            p += n;
            len -= (size_t)n;
            if (!lp2p__noise_hs_done(&sec->hs)) {
                return 0;
            }
            rv = noise_done(c);
            if (rv != 0) {
                return rv;
            }
            break;
        default:
            rv = lp2p__noise_transport_decrypt(&sec->tr, p, len, &sec->plain);
            if (rv != 0) {
                LOG_INFO(MOD, "decrypting from %s: %s", c->remote_addr,
                         lp2p_strerror(rv));
                return rv;
            }
            return process_plain(c);
        }
    }
    return 0;
}

void lp2p__conn_sec_free(struct lp2p_conn *c)
{
    struct lp2p_sec *sec = c->sec;
    if (sec == NULL) {
        return;
    }
    if (sec->hs_init) {
        lp2p__noise_hs_close(&sec->hs);
    }
    if (sec->tr_init) {
        lp2p__noise_transport_close(&sec->tr);
    }
    lp2p__yamux_session_free(sec->ymx);
    lp2p__buf_free(&sec->out);
    lp2p__buf_free(&sec->plain);
    lp2p__free(sec);
    c->sec = NULL;
}

void lp2p__conn_streams_abort(struct lp2p_conn *c, int status)
{
    while (!lp2p__list_empty(&c->streams)) {
        struct lp2p_stream *s =
            LP2P__CONTAINER_OF(c->streams.next, struct lp2p_stream, link);
        lp2p__stream_conn_lost(s, status); /* unlinks s */
    }
}
