/* The node's HTTP endpoint for monitoring (metrics_http.c, libmicrohttpd):
 * GET /metrics (Prometheus text) and GET /healthz. */
#ifndef P2PRAFT_TOOLS_METRICS_HTTP_H
#define P2PRAFT_TOOLS_METRICS_HTTP_H

#include <stddef.h>

#include "p2praft.h"

struct metrics_http;

/* Serve `node` (borrowed; stop the server before the node) on `addr`:
 * "HOST:PORT" (an IPv4 address; PORT 0: any free port) or ":PORT" (all
 * IPv4 interfaces). 0 with *out set and the bound address in bound (e.g.
 * "127.0.0.1:9100"), or -1 with a sentence in err. */
int metrics_http_start(struct metrics_http **out, struct p2praft_node *node,
                       const char *addr, char *bound, size_t bound_len,
                       char *err, size_t errlen);

/* Stop serving (waits for requests in progress) and free. NULL ignored. */
void metrics_http_stop(struct metrics_http *h);

#endif
