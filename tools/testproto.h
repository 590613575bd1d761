/* Test protocols the CLI host serves for interop checks and benchmarks,
 * and small helpers shared by the CLI commands. */
#ifndef P2PRAFT_TOOLS_TESTPROTO_H
#define P2PRAFT_TOOLS_TESTPROTO_H

#include <stdint.h>

#include "lp2p.h"

/* Copies every byte back until the remote closes its write side. */
#define CLI_ECHO_PROTOCOL "/p2praft/test/echo/1.0.0"
/* Reads until EOF, replies the byte count as u64 big-endian, closes. */
#define CLI_SINK_PROTOCOL "/p2praft/test/sink/1.0.0"

/* Register both handlers on `host`. 0 or an LP2P_E* code. */
int cli_serve_test_protocols(struct lp2p_host *host);

/* Load `path` (or generate a fresh key when path is NULL) into *key,
 * printing a clear message on failure. 0 or 1 (exit status). */
int cli_load_key(const char *path, struct lp2p_key *key);

/* Parse a --busy-poll-us value: 0 to LP2P_BUSY_POLL_US_MAX. 0 or -1. */
int cli_busy_poll_us(const char *s, uint32_t *out);

/* Print "p2praft <cmd>: <what>: <strerror>" with a hint for common codes. */
void cli_error(const char *cmd, const char *what, int rv);

/* An error about multiaddr `text`: for LP2P_EBADADDR, says what is wrong
 * with it (the codec's reason). `verb`: "dial", "listen on". */
void cli_addr_error(const char *cmd, const char *verb, const char *text,
                    int rv);

#endif
