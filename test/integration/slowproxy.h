/*
 * A TCP proxy on 127.0.0.1 (port 0) for the tests: every connection it
 * accepts is relayed to `target`, and the bytes going one way are paced
 * (a budget per 10 ms), so the receiving side looks like a slow reader:
 * the proxy stops reading from the sender, TCP and then libp2p flow control
 * hold the sender back. Runs on the caller's loop; no threads.
 */
#ifndef P2PRAFT_TEST_SLOWPROXY_H
#define P2PRAFT_TEST_SLOWPROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct slowproxy;

/* Listen on 127.0.0.1:0 and relay to host:port. `to_target`: pace the
 * bytes going to the target (else those coming back from it);
 * bytes_per_sec: the pace. 0 or a libuv error. */
int slowproxy_start(struct slowproxy **out, uv_loop_t *loop,
                    const char *host, int port, bool to_target,
                    uint64_t bytes_per_sec);

/* The port it listens on. */
int slowproxy_port(const struct slowproxy *p);

/* Bytes relayed in the paced direction so far. */
uint64_t slowproxy_paced_bytes(const struct slowproxy *p);

/* Close every connection and the listener; memory goes once the loop ran
 * the close callbacks (run it until it has no more handles). */
void slowproxy_close(struct slowproxy *p);

#endif
