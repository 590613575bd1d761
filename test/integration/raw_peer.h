/*
 * A raw libp2p peer for the host tests: it drives the sans-I/O codecs
 * itself over a libuv TCP handle on the test's loop, so it can stop or
 * misbehave at any step of the handshake, then hold the connection, say
 * nothing, flood, or open a stream. Each one has a fresh identity.
 */
#ifndef P2PRAFT_TEST_RAW_PEER_H
#define P2PRAFT_TEST_RAW_PEER_H

#include <uv.h>

#include "lp2p.h"
#include "p2p/multistream.h"
#include "p2p/noise.h"

enum raw_goal {
    RAW_STALL_TCP,   /* connect, send nothing */
    RAW_STALL_MSS,   /* send the multistream header only */
    RAW_STALL_NOISE, /* negotiate /noise, send Noise msg 1, stop */
    RAW_HANDSHAKE    /* complete Noise, then `after` */
};

enum raw_after {
    RAW_NOTHING = 0,
    RAW_GARBAGE_CLEAR,  /* unencrypted garbage */
    RAW_GARBAGE_SEALED, /* encrypted garbage instead of multistream */
    RAW_PARTIAL_FRAME,  /* half a Noise frame, then close */
    RAW_PING_FLOOD,     /* negotiate yamux, flood PINGs, never read */
    RAW_SILENT,         /* negotiate yamux, then read nothing, say nothing */
    RAW_HOLD,           /* negotiate yamux, keep reading, answer nothing */
    RAW_OPEN_PING       /* negotiate yamux, open a stream, negotiate
                           /ipfs/ping on it, then hold it open */
};

struct raw {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t creq;
    enum raw_goal goal;
    enum raw_after after;
    int connected, eof, closed, done;
    int phase; /* 0 mss, 1 noise, 2 secure */
    struct lp2p_mss mss;
    struct lp2p_noise_hs hs;
    int hs_init;
    struct lp2p_noise_transport tr;
    int tr_init;
    struct lp2p_key key;
    struct lp2p_peer_id id;
    size_t flood_sent;
    size_t flood_target;
    size_t secure_bytes; /* decrypted bytes received after the handshake */
    int stream_acked;    /* RAW_OPEN_PING: the host answered the stream */
    int fail;
};

/* Start a raw peer toward the TCP port of `host`'s first listen address.
 * r->id is its peer ID. */
void raw_start(struct raw *r, uv_loop_t *loop, struct lp2p_host *host,
               enum raw_goal goal, enum raw_after after);

/* Same, from the IPv4 address `src` (any of 127.0.0.0/8 works on
 * loopback), so that tests can look like several machines. */
void raw_start_from(struct raw *r, uv_loop_t *loop, struct lp2p_host *host,
                    enum raw_goal goal, enum raw_after after,
                    const char *src);

/* Close the TCP handle with a reset (RST instead of FIN). */
void raw_reset(struct raw *r);

/* Close the TCP handle (the host sees EOF) and wait until it closed. */
void raw_free(struct raw *r);

#endif
