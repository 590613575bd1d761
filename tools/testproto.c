/* Echo and sink test protocols, key loading and error messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testproto.h"

#define ECHO_MAX_INFLIGHT (1024 * 1024)

struct echo_state {
    size_t inflight;
    int eof, closed, stopped;
};

static void echo_close(struct lp2p_stream *s, struct echo_state *e)
{
    if (!e->closed) {
        e->closed = 1;
        lp2p_stream_close(s, NULL, NULL);
    }
}

static void echo_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                      size_t len);

static void echo_written(struct lp2p_stream *s, int status, void *data)
{
    struct echo_state *e = lp2p_stream_data(s);
    size_t len = *(size_t *)data;
    free(data);
    e->inflight -= len;
    if (status != 0) {
        lp2p_stream_reset(s);
    }
    if ((status != 0 || e->eof) && e->inflight == 0) {
        echo_close(s, e);
        free(e);
        return;
    }
    if (e->stopped && e->inflight < ECHO_MAX_INFLIGHT / 2 && !e->eof &&
        status == 0) {
        e->stopped = 0;
        lp2p_stream_read_start(s, echo_read);
    }
}

static void echo_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                      size_t len)
{
    struct echo_state *e = lp2p_stream_data(s);
    uint8_t *copy;
    if (status != 0) {
        e->eof = 1;
        if (status != LP2P_EEOF) {
            lp2p_stream_reset(s);
        }
        if (e->inflight == 0) {
            echo_close(s, e);
            free(e);
        }
        return;
    }
    /* The length sits in front of the copy; the write borrows the rest. */
    copy = malloc(sizeof(size_t) + len);
    if (copy == NULL) {
        lp2p_stream_reset(s);
        return;
    }
    memcpy(copy, &len, sizeof(size_t));
    memcpy(copy + sizeof(size_t), buf, len);
    if (lp2p_stream_write(s, copy + sizeof(size_t), len, echo_written, copy) !=
        0) {
        free(copy);
        lp2p_stream_reset(s);
        return;
    }
    e->inflight += len;
    if (e->inflight >= ECHO_MAX_INFLIGHT) {
        e->stopped = 1;
        lp2p_stream_read_stop(s);
    }
}

static void echo_handler(struct lp2p_stream *s, void *data)
{
    struct echo_state *e = calloc(1, sizeof(*e));
    (void)data;
    if (e == NULL) {
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    lp2p_stream_set_data(s, e);
    lp2p_stream_read_start(s, echo_read);
}

struct sink_state {
    uint64_t count;
    uint8_t reply[8];
};

static void sink_closed(struct lp2p_stream *s, void *data)
{
    (void)s;
    free(data);
}

static void sink_read(struct lp2p_stream *s, int status, const uint8_t *buf,
                      size_t len)
{
    struct sink_state *k = lp2p_stream_data(s);
    int i;
    (void)buf;
    if (status == 0) {
        k->count += len;
        return;
    }
    if (status == LP2P_EEOF) {
        for (i = 0; i < 8; i++) {
            k->reply[i] = (uint8_t)(k->count >> (56 - 8 * i));
        }
        if (lp2p_stream_write(s, k->reply, 8, NULL, NULL) != 0) {
            lp2p_stream_reset(s);
        }
    }
    lp2p_stream_close(s, sink_closed, k);
}

static void sink_handler(struct lp2p_stream *s, void *data)
{
    struct sink_state *k = calloc(1, sizeof(*k));
    (void)data;
    if (k == NULL) {
        lp2p_stream_reset(s);
        lp2p_stream_close(s, NULL, NULL);
        return;
    }
    lp2p_stream_set_data(s, k);
    lp2p_stream_read_start(s, sink_read);
}

int cli_serve_test_protocols(struct lp2p_host *host)
{
    int rv = lp2p_host_set_handler(host, CLI_ECHO_PROTOCOL, NULL, echo_handler,
                                   NULL);
    if (rv == 0) {
        rv = lp2p_host_set_handler(host, CLI_SINK_PROTOCOL, NULL, sink_handler,
                                   NULL);
    }
    return rv;
}

int cli_busy_poll_us(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;
    if (*s < '0' || *s > '9') {
        return -1;
    }
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v > LP2P_BUSY_POLL_US_MAX) {
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int cli_load_key(const char *path, struct lp2p_key *key)
{
    int rv;
    if (path == NULL) {
        rv = lp2p_key_generate(key);
        if (rv != 0) {
            cli_error("key", "cannot generate a key", rv);
            return 1;
        }
        return 0;
    }
    rv = lp2p_key_load(path, key);
    if (rv != 0) {
        fprintf(stderr, "p2praft: cannot use key file '%s': %s%s\n", path,
                lp2p_strerror(rv),
                rv == LP2P_ENOTFOUND ? " (create one with 'p2praft keygen -o "
                                       "FILE')"
                : rv == LP2P_EISDIR  ? " (give the key file inside it)"
                : rv == LP2P_EACCESS || rv == LP2P_EIO
                    ? " (check the file's permissions)"
                    : " (not a libp2p Ed25519 private key file)");
        return 1;
    }
    return 0;
}

void cli_addr_error(const char *cmd, const char *verb, const char *text,
                    int rv)
{
    struct lp2p_multiaddr ma;
    char why[LP2P_ERRMSG_MAX];
    if (rv == LP2P_EBADADDR) {
        lp2p_multiaddr_init(&ma);
        if (lp2p_multiaddr_parse(&ma, text, why, sizeof(why)) != 0) {
            fprintf(stderr, "p2praft %s: bad multiaddr '%s': %s\n", cmd, text,
                    why);
            return;
        }
        lp2p_multiaddr_free(&ma);
        fprintf(stderr, "p2praft %s: cannot %s '%s': only "
                "/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>[/p2p/<id>] is "
                "supported\n", cmd, verb, text);
        return;
    }
    {
        char what[600];
        snprintf(what, sizeof(what), "cannot %s '%s'", verb, text);
        cli_error(cmd, what, rv);
    }
}

void cli_error(const char *cmd, const char *what, int rv)
{
    const char *hint = "";
    switch (rv) {
    case LP2P_EBADADDR:
        hint = " (expected e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...)";
        break;
    case LP2P_EPEERID:
        hint = " (the peer at that address has another identity than the "
               "/p2p/ part says)";
        break;
    case LP2P_ECONNREFUSED:
        hint = " (nothing listens there)";
        break;
    case LP2P_EUNREACHABLE:
        hint = " (name not resolved or no route)";
        break;
    case LP2P_ETIMEDOUT:
        hint = " (the peer did not answer in time)";
        break;
    case LP2P_ENOPROTO:
        hint = " (the peer does not speak the protocol)";
        break;
    default:
        break;
    }
    fprintf(stderr, "p2praft %s: %s: %s%s\n", cmd, what, lp2p_strerror(rv),
            hint);
}
