/* Helpers for the host integration tests: a loop, hosts on 127.0.0.1
 * port 0, and bounded loop-driven waits (no sleeps). */
#ifndef P2PRAFT_TEST_HOST_HARNESS_H
#define P2PRAFT_TEST_HOST_HARNESS_H

#include <uv.h>

#include "lp2p.h"

/* 1 under valgrind (P2PRAFT_VALGRIND=1): tests may reduce counts. */
int th_valgrind(void);

/* Run `loop` until *flag != 0 or `timeout_ms` passed. Returns 1 if the
 * flag was set, 0 on timeout. */
int th_run_until(uv_loop_t *loop, const int *flag, uint64_t timeout_ms);

/* Same, until the predicate returns non-zero. */
int th_run_until_fn(uv_loop_t *loop, int (*pred)(void *), void *arg,
                    uint64_t timeout_ms);

/* A host listening on /ip4/127.0.0.1/tcp/0 (cfg may be NULL); its dial
 * address including /p2p/ is written to `addr`. Fails the test on error. */
struct lp2p_host *th_host(uv_loop_t *loop, const struct lp2p_host_config *cfg,
                          char addr[LP2P_MULTIADDR_STRMAX]);

/* A close callback that sets the int at `data` to 1. */
void th_on_host_closed(struct lp2p_host *h, void *data);

/* Close the host and run the loop until its close callback ran. */
void th_host_close(uv_loop_t *loop, struct lp2p_host *host);

/* Run the loop until no handle is left, then close it (fails the test if
 * handles remain after `timeout_ms`). */
void th_loop_close(uv_loop_t *loop);

/* Open file descriptors of this process (/proc/self/fd). */
int th_fd_count(void);

/* Open sockets of this process (libuv opens other descriptors lazily,
 * once per loop, so sockets are what a test can compare). */
int th_socket_count(void);

/* Connect `a` to the address `addr`; returns the status. */
int th_connect(uv_loop_t *loop, struct lp2p_host *a, const char *addr);

#endif
