/*
 * The monitoring endpoint of `p2praft node --metrics-listen ADDR`, on
 * libmicrohttpd (its own thread; no HTTP parsing here):
 *   GET /metrics   200, the METRICS answer (Prometheus text format 0.0.4)
 *   GET /healthz   200 when the node has a leader heard from recently and
 *                  has caught up (src/raft/healthz.h decides), 503
 *                  otherwise; the body says why, in one line
 *   other paths    404; other methods 405
 * Each request is one blocking p2praft_node_call() (the API wire format):
 * the node answers from its loop thread, so the server reads the same
 * numbers as `p2praft metrics` and `p2praft status`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics_http.h"

struct metrics_http {
    struct MHD_Daemon *d;
    struct p2praft_node *node;
    int fd;        /* the listening socket until MHD owns it, else -1 */
    unsigned port; /* as bound */
    char host[64];
};

/* Body offsets of the API wire format (p2praft.h): request header, and the
 * response header before the payload. */
#define REQ_LEN 7
#define RESP_CODE 2
#define RESP_PAYLOAD 15

/* One operator request without fields: its status (or -1: no answer) and
 * payload (malloc'ed, NUL-terminated) in *text. */
static int node_op(struct p2praft_node *node, uint8_t op, char **text)
{
    uint8_t req[REQ_LEN] = {P2PRAFT_API_VERSION, op, 0, 0, 0, 0, 1};
    uint8_t *resp = NULL;
    size_t len = 0, plen;
    int status;
    *text = NULL;
    if (p2praft_node_call(node, req, sizeof(req), &resp, &len) != 0) {
        return -1;
    }
    if (len < RESP_PAYLOAD) {
        p2praft_free(resp);
        return -1;
    }
    status = resp[RESP_CODE];
    plen = len - RESP_PAYLOAD;
    *text = malloc(plen + 1);
    if (*text != NULL) {
        memcpy(*text, resp + RESP_PAYLOAD, plen);
        (*text)[plen] = '\0';
    }
    p2praft_free(resp);
    return *text != NULL ? status : -1;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code,
                             const char *type, const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rv;
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    rv = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rv;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct metrics_http *h = cls;
    const char *plain = "text/plain; charset=utf-8";
    char *text = NULL, line[600];
    enum MHD_Result rv;
    int st;
    (void)version;
    (void)upload_data;
    (void)con_cls;
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a body we ignore */
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, plain,
                     "only GET\n");
    }
    if (strcmp(url, "/metrics") == 0) {
        st = node_op(h->node, P2PRAFT_API_METRICS, &text);
        if (st == P2PRAFT_API_OK) {
            rv = reply(conn, MHD_HTTP_OK,
                       "text/plain; version=0.0.4; charset=utf-8", text);
        } else {
            snprintf(line, sizeof(line), "metrics unavailable: %s\n",
                     text != NULL ? text : "the node did not answer");
            rv = reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, plain, line);
        }
    } else if (strcmp(url, "/healthz") == 0) {
        st = node_op(h->node, P2PRAFT_API_HEALTH, &text);
        snprintf(line, sizeof(line), "%s\n",
                 text != NULL ? text : "the node did not answer");
        rv = reply(conn, st == P2PRAFT_API_OK
                             ? MHD_HTTP_OK
                             : MHD_HTTP_SERVICE_UNAVAILABLE,
                   plain, line);
    } else {
        rv = reply(conn, MHD_HTTP_NOT_FOUND, plain,
                   "not found: try /metrics or /healthz\n");
    }
    free(text);
    return rv;
}

int metrics_http_bind(struct metrics_http **out, const char *addr,
                      char *err, size_t errlen)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    const char *colon = strrchr(addr, ':');
    char *end;
    unsigned long port;
    struct metrics_http *h;
    int one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    if (colon == NULL || (size_t)(colon - addr) >= sizeof(h->host)) {
        snprintf(err, errlen, "--metrics-listen wants HOST:PORT or :PORT, "
                              "not '%s'", addr);
        return -1;
    }
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || port > 65535) {
        snprintf(err, errlen, "--metrics-listen: bad port in '%s'", addr);
        return -1;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(h->host, addr, (size_t)(colon - addr));
    h->host[colon - addr] = '\0';
    if (h->host[0] == '\0') {
        sa.sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (inet_pton(AF_INET, h->host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "--metrics-listen: '%s' is not an IPv4 "
                              "address", h->host);
        free(h);
        return -1;
    }
    sa.sin_port = htons((uint16_t)port);
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0 ||
        setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(h->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(h->fd, 32) != 0 ||
        getsockname(h->fd, (struct sockaddr *)&sa, &salen) != 0) {
        snprintf(err, errlen, "cannot serve metrics on %s: %s", addr,
                 strerror(errno));
        if (h->fd >= 0) {
            close(h->fd);
        }
        free(h);
        return -1;
    }
    h->port = ntohs(sa.sin_port);
    *out = h;
    return 0;
}

int metrics_http_start(struct metrics_http *h, struct p2praft_node *node,
                       char *bound, size_t bound_len, char *err,
                       size_t errlen)
{
    h->node = node;
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_ERROR_LOG,
                            (uint16_t)h->port, NULL, NULL, handle, h,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)32,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_END);
    if (h->d == NULL) {
        snprintf(err, errlen, "cannot serve metrics on %s:%u (libmicrohttpd "
                              "did not start)", h->host, h->port);
        return -1;
    }
    h->fd = -1; /* closed by MHD_stop_daemon() */
    snprintf(bound, bound_len, "%s:%u",
             h->host[0] != '\0' ? h->host : "0.0.0.0", h->port);
    return 0;
}

void metrics_http_stop(struct metrics_http *h)
{
    if (h != NULL) {
        if (h->d != NULL) {
            MHD_stop_daemon(h->d);
        }
        if (h->fd >= 0) {
            close(h->fd);
        }
        free(h);
    }
}
