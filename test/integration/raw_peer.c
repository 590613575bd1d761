#include <stdlib.h>
#include <string.h>

#include "raw_peer.h"
#include "test.h"
#include "util/buf.h"

static const char *const noise_p[] = {"/noise"};

static void raw_closed(uv_handle_t *h)
{
    struct raw *r = h->data;
    r->closed = 1;
}

static void raw_close(struct raw *r)
{
    if (!uv_is_closing((uv_handle_t *)&r->tcp)) {
        uv_close((uv_handle_t *)&r->tcp, raw_closed);
    }
}

static void raw_write_done(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void raw_send(struct raw *r, const uint8_t *p, size_t n)
{
    uv_write_t *w;
    uv_buf_t b;
    char *copy;
    if (n == 0 || uv_is_closing((uv_handle_t *)&r->tcp)) {
        return;
    }
    w = malloc(sizeof(*w) + n);
    copy = (char *)(w + 1);
    memcpy(copy, p, n);
    b = uv_buf_init(copy, (unsigned)n);
    if (uv_write(w, (uv_stream_t *)&r->tcp, &b, 1, raw_write_done) != 0) {
        free(w);
    }
}

static void raw_send_buf(struct raw *r, struct lp2p_buf *b)
{
    raw_send(r, b->data, b->len);
    b->len = 0;
}

static void raw_send_sealed(struct raw *r, const uint8_t *p, size_t n)
{
    struct lp2p_buf out;
    lp2p__buf_init(&out);
    if (lp2p__noise_transport_encrypt(&r->tr, p, n, &out) != 0) {
        r->fail = 1;
    }
    raw_send_buf(r, &out);
    lp2p__buf_free(&out);
}

static void flood_more(struct raw *r);

static void flood_written(uv_write_t *w, int status)
{
    struct raw *r = w->data;
    free(w);
    if (status == 0 && r->flood_sent < r->flood_target) {
        flood_more(r);
    }
}

/* 64 KiB of yamux PING|SYN frames per write, one write at a time. */
static void flood_more(struct raw *r)
{
    uint8_t plain[12 * 5000];
    struct lp2p_buf out;
    uv_write_t *w;
    uv_buf_t b;
    size_t i;
    for (i = 0; i < 5000; i++) {
        uint8_t *f = plain + 12 * i;
        memset(f, 0, 12);
        f[1] = 2; /* PING */
        f[3] = 1; /* SYN */
        f[11] = (uint8_t)i;
    }
    lp2p__buf_init(&out);
    lp2p__noise_transport_encrypt(&r->tr, plain, sizeof(plain), &out);
    w = malloc(sizeof(*w) + out.len);
    memcpy(w + 1, out.data, out.len);
    b = uv_buf_init((char *)(w + 1), (unsigned)out.len);
    w->data = r;
    r->flood_sent += sizeof(plain);
    if (uv_is_closing((uv_handle_t *)&r->tcp) ||
        uv_write(w, (uv_stream_t *)&r->tcp, &b, 1, flood_written) != 0) {
        free(w);
    }
    lp2p__buf_free(&out);
}

/* A Yamux header: version 0, type, flags, stream ID, length. */
static void yamux_hdr(uint8_t *f, uint8_t type, uint16_t flags, uint32_t id,
                      uint32_t len)
{
    f[0] = 0;
    f[1] = type;
    f[2] = (uint8_t)(flags >> 8);
    f[3] = (uint8_t)flags;
    f[4] = (uint8_t)(id >> 24);
    f[5] = (uint8_t)(id >> 16);
    f[6] = (uint8_t)(id >> 8);
    f[7] = (uint8_t)id;
    f[8] = (uint8_t)(len >> 24);
    f[9] = (uint8_t)(len >> 16);
    f[10] = (uint8_t)(len >> 8);
    f[11] = (uint8_t)len;
}

static void raw_secure(struct raw *r)
{
    struct lp2p_buf msg;
    r->phase = 2;
    r->done = 1;
    switch (r->after) {
    case RAW_NOTHING:
        break;
    case RAW_GARBAGE_CLEAR: {
        /* A well-framed Noise message whose tag cannot verify. */
        uint8_t frame[2 + 32];
        frame[0] = 0;
        frame[1] = 32;
        memset(frame + 2, 'x', 32);
        raw_send(r, frame, sizeof(frame));
        break;
    }
    case RAW_GARBAGE_SEALED: {
        /* Sealed properly, but a multistream message that is garbage. */
        static const uint8_t bad[] = {6, 'g', 'a', 'r', 'b', 'a', 'g'};
        raw_send_sealed(r, bad, sizeof(bad));
        break;
    }
    case RAW_PARTIAL_FRAME: {
        /* A frame header announcing 1000 bytes, then 10 of them. */
        uint8_t part[12] = {0x03, 0xe8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        raw_send(r, part, sizeof(part));
        raw_close(r);
        break;
    }
    case RAW_SILENT:
    case RAW_PING_FLOOD:
    case RAW_HOLD:
    case RAW_OPEN_PING: {
        static const char *const y[] = {"/yamux/1.0.0"};
        struct lp2p_mss m;
        lp2p__buf_init(&msg);
        lp2p__mss_init_initiator(&m, y, 1);
        lp2p__mss_start(&m, &msg);
        if (r->after == RAW_OPEN_PING) {
            /* Pipelined behind the muxer proposal: SYN for stream 1, then
             * the multistream proposal of /ipfs/ping/1.0.0 on it. */
            struct lp2p_buf ms;
            uint8_t hdr[12];
            lp2p__buf_init(&ms);
            lp2p__mss_write_msg(&ms, LP2P_MSS_HEADER,
                                strlen(LP2P_MSS_HEADER));
            lp2p__mss_write_msg(&ms, LP2P_PING_PROTOCOL,
                                strlen(LP2P_PING_PROTOCOL));
            yamux_hdr(hdr, 1, 1, 1, 0);
            lp2p__buf_append(&msg, hdr, sizeof(hdr));
            yamux_hdr(hdr, 0, 0, 1, (uint32_t)ms.len);
            lp2p__buf_append(&msg, hdr, sizeof(hdr));
            lp2p__buf_append(&msg, ms.data, ms.len);
            lp2p__buf_free(&ms);
        }
        raw_send_sealed(r, msg.data, msg.len);
        lp2p__buf_free(&msg);
        if (r->after == RAW_SILENT || r->after == RAW_PING_FLOOD) {
            uv_read_stop((uv_stream_t *)&r->tcp); /* never read again */
        }
        if (r->after == RAW_PING_FLOOD) {
            flood_more(r);
        }
        break;
    }
    }
}

static void raw_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(s);
    b->len = s;
}

/* After the handshake: decrypt and look for the ping protocol's echo. */
static void raw_secure_read(struct raw *r, const uint8_t *p, size_t len)
{
    struct lp2p_buf plain;
    static const char want[] = LP2P_PING_PROTOCOL "\n";
    lp2p__buf_init(&plain);
    if (lp2p__noise_transport_decrypt(&r->tr, p, len, &plain) != 0) {
        r->fail = 1;
    }
    r->secure_bytes += plain.len;
    if (plain.len >= sizeof(want) - 1 &&
        memmem(plain.data, plain.len, want, sizeof(want) - 1) != NULL) {
        r->stream_acked = 1;
    }
    lp2p__buf_free(&plain);
}

static void raw_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct raw *r = st->data;
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t len = n > 0 ? (size_t)n : 0;
    struct lp2p_buf out;
    int k;
    if (n < 0) {
        r->eof = 1;
        free(buf->base);
        raw_close(r);
        return;
    }
    lp2p__buf_init(&out);
    while (len > 0 && r->phase < 2) {
        if (r->phase == 0) {
            k = lp2p__mss_feed(&r->mss, p, len, &out);
            raw_send_buf(r, &out);
            if (k < 0) {
                r->fail = 1;
                break;
            }
            p += k;
            len -= (size_t)k;
            if (!lp2p__mss_done(&r->mss)) {
                break;
            }
            if (r->goal == RAW_STALL_MSS) {
                r->done = 1;
                break;
            }
            {
                struct lp2p_noise_config cfg;
                memset(&cfg, 0, sizeof(cfg));
                cfg.identity = &r->key;
                lp2p__noise_hs_init(&r->hs, 1, &cfg);
                r->hs_init = 1;
                lp2p__noise_hs_start(&r->hs, &out);
                raw_send_buf(r, &out);
                r->phase = 1;
                if (r->goal == RAW_STALL_NOISE) {
                    r->done = 1;
                    r->phase = 3; /* stop */
                }
            }
        } else {
            k = lp2p__noise_hs_feed(&r->hs, p, len, &out);
            raw_send_buf(r, &out);
            if (k < 0) {
                r->fail = 1;
                break;
            }
            p += k;
            len -= (size_t)k;
            if (lp2p__noise_hs_done(&r->hs)) {
                lp2p__noise_hs_split(&r->hs, &r->tr);
                r->tr_init = 1;
                raw_secure(r);
            }
        }
    }
    if (len > 0 && r->phase == 2 && r->tr_init) {
        raw_secure_read(r, p, len);
    }
    lp2p__buf_free(&out);
    free(buf->base);
}

static void raw_connected(uv_connect_t *req, int status)
{
    struct raw *r = req->data;
    struct lp2p_buf out;
    if (status != 0) {
        r->fail = 1;
        raw_close(r);
        return;
    }
    r->connected = 1;
    uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
    if (r->goal == RAW_STALL_TCP) {
        r->done = 1;
        return;
    }
    lp2p__buf_init(&out);
    if (r->goal == RAW_STALL_MSS) {
        lp2p__mss_write_msg(&out, LP2P_MSS_HEADER, strlen(LP2P_MSS_HEADER));
        raw_send_buf(r, &out);
        r->done = 1;
        r->phase = 3;
    } else {
        lp2p__mss_init_initiator(&r->mss, noise_p, 1);
        lp2p__mss_start(&r->mss, &out);
        raw_send_buf(r, &out);
    }
    lp2p__buf_free(&out);
}

void raw_start(struct raw *r, uv_loop_t *loop, struct lp2p_host *host,
               enum raw_goal goal, enum raw_after after)
{
    raw_start_from(r, loop, host, goal, after, NULL);
}

void raw_start_from(struct raw *r, uv_loop_t *loop, struct lp2p_host *host,
                    enum raw_goal goal, enum raw_after after, const char *src)
{
    char la[LP2P_MULTIADDR_STRMAX];
    struct sockaddr_in sa;
    const char *port;
    memset(r, 0, sizeof(*r));
    r->loop = loop;
    r->goal = goal;
    r->after = after;
    ASSERT_OK(lp2p_key_generate(&r->key));
    ASSERT_OK(lp2p_peer_id_from_key(&r->key, &r->id));
    ASSERT_OK(lp2p_host_listen_addr(host, 0, la, sizeof(la)));
    port = strstr(la, "/tcp/") + 5;
    uv_ip4_addr("127.0.0.1", atoi(port), &sa);
    uv_tcp_init(loop, &r->tcp);
    r->tcp.data = r;
    if (src != NULL) {
        struct sockaddr_in from;
        uv_ip4_addr(src, 0, &from);
        ASSERT_OK(uv_tcp_bind(&r->tcp, (struct sockaddr *)&from, 0));
    }
    r->creq.data = r;
    ASSERT_OK(uv_tcp_connect(&r->creq, &r->tcp, (struct sockaddr *)&sa,
                             raw_connected));
}

void raw_reset(struct raw *r)
{
    if (!uv_is_closing((uv_handle_t *)&r->tcp)) {
        ASSERT_OK(uv_tcp_close_reset(&r->tcp, raw_closed));
    }
}

void raw_free(struct raw *r)
{
    raw_close(r);
    while (!r->closed) {
        uv_run(r->loop, UV_RUN_ONCE);
    }
    if (r->hs_init) {
        lp2p__noise_hs_close(&r->hs);
    }
    if (r->tr_init) {
        lp2p__noise_transport_close(&r->tr);
    }
    lp2p_key_wipe(&r->key);
}
