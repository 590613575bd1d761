/* The node's HTTP endpoint for monitoring (metrics_http.c, libmicrohttpd):
 * GET /metrics (Prometheus text) and GET /healthz. */
#ifndef P2PRAFT_TOOLS_METRICS_HTTP_H
#define P2PRAFT_TOOLS_METRICS_HTTP_H

#include <stddef.h>

#include "p2praft.h"

struct metrics_http;

/* Parse `addr`, "HOST:PORT" (an IPv4 address; PORT 0: any free port) or
 * ":PORT" (all IPv4 interfaces), and bind and listen there, before the
 * node starts, so that a bad address or a port in use fails the start
 * before anything is done to the data directory. 0 with *out set, or -1
 * with a sentence in err. */
int metrics_http_bind(struct metrics_http **out, const char *addr,
                      char *err, size_t errlen);

/* Serve `node` (borrowed; stop the server before the node) on the socket
 * bound by metrics_http_bind(). 0 with the bound address in bound (e.g.
 * "127.0.0.1:9100"), or -1 with a sentence in err (h still to be freed
 * with metrics_http_stop()). */
int metrics_http_start(struct metrics_http *h, struct p2praft_node *node,
                       char *bound, size_t bound_len, char *err,
                       size_t errlen);

/* Stop serving (waits for requests in progress), close the socket and
 * free. NULL ignored. */
void metrics_http_stop(struct metrics_http *h);

#endif
