/* Fuzz multistream-select: the input is fed to a responder and, after its
 * start(), to an initiator, in chunks whose sizes come from the first byte.
 * Invariants: feed never consumes more than it was given, consumes
 * everything unless negotiation completed, and a completed negotiation
 * names a protocol the machine accepts. */
#include <string.h>

#include "fuzz.h"
#include "lp2p.h"
#include "p2p/multistream.h"
#include "util/buf.h"

static int match_prefix(void *ctx, const char *proto, size_t len)
{
    (void)ctx;
    FUZZ_CHECK(strlen(proto) == len);
    return len >= 3 && memcmp(proto, "/x/", 3) == 0;
}

static void run(struct lp2p_mss *m, const uint8_t *data, size_t size,
                size_t chunk)
{
    struct lp2p_buf out;
    size_t off = 0;
    lp2p__buf_init(&out);
    if (lp2p__mss_start(m, &out) != 0) {
        lp2p__buf_free(&out);
        return;
    }
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        int rv = lp2p__mss_feed(m, data + off, n, &out);
        if (rv < 0) {
            FUZZ_CHECK(rv == LP2P_EPROTO || rv == LP2P_ETOOBIG ||
                       rv == LP2P_ENOPROTO || rv == LP2P_ENOMEM);
            FUZZ_CHECK(lp2p__mss_selected(m) == NULL);
            break;
        }
        FUZZ_CHECK((size_t)rv <= n);
        off += (size_t)rv;
        if (m->state != LP2P_MSS_RUNNING) {
            break;
        }
        FUZZ_CHECK((size_t)rv == n);
    }
    if (lp2p__mss_done(m)) {
        FUZZ_CHECK(lp2p__mss_selected(m) != NULL);
    }
    lp2p__buf_free(&out);
}

FUZZ_TARGET(multistream)
{
    static const char *protos[] = {"/noise", "/yamux/1.0.0", "/tls/1.0.0"};
    struct lp2p_mss m;
    size_t chunk;
    if (size == 0) {
        return 0;
    }
    chunk = data[0] == 0 ? size : data[0];
    data++;
    size--;
    if (lp2p__mss_init_responder(&m, protos, 2, match_prefix, NULL) == 0) {
        run(&m, data, size, chunk);
        if (lp2p__mss_done(&m)) {
            const char *s = lp2p__mss_selected(&m);
            FUZZ_CHECK(strcmp(s, "/noise") == 0 ||
                       strcmp(s, "/yamux/1.0.0") == 0 ||
                       strncmp(s, "/x/", 3) == 0);
        }
    }
    if (lp2p__mss_init_initiator(&m, protos, 3) == 0) {
        if (chunk & 1) {
            lp2p__mss_set_ls(&m, NULL, NULL);
        }
        run(&m, data, size, chunk);
        if (lp2p__mss_done(&m)) {
            const char *s = lp2p__mss_selected(&m);
            FUZZ_CHECK(strcmp(s, "/noise") == 0 ||
                       strcmp(s, "/yamux/1.0.0") == 0 ||
                       strcmp(s, "/tls/1.0.0") == 0);
        }
    }
    return 0;
}
