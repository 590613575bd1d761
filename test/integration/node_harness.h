/*
 * In-process cluster nodes for the tests of the node's API (sessions,
 * watches, the client library): keys, ports, directories, start and stop,
 * waits on status fields, and raw unix-socket frames. Uses test.h (its
 * ASSERTs run in the calling test's thread).
 */
#ifndef P2PRAFT_TEST_NODE_HARNESS_H
#define P2PRAFT_TEST_NODE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p2praft.h"

struct hnode {
    struct p2praft_node *node;
    struct lp2p_key key;
    char id[LP2P_PEER_ID_STRMAX];
    char dir[256], listen[64], peer_addr[256];
    const char *peers[4];
    /* copied into the config by nh_start() when set */
    unsigned api_max_inflight, api_max_requests, timeout_ms;
    unsigned api_max_conns, api_idle_ms;
    unsigned snapshot_threshold, snapshot_trailing;
    unsigned election_ms, heartbeat_ms;
    enum p2praft_wire wire;
    const char *clients[4];
    size_t n_clients;
    const char *clients_file;
};

uint64_t nh_now_ms(void);
void nh_pause(void); /* between two polls of a condition */
/* ms, multiplied under valgrind */
unsigned nh_scale(unsigned ms);

/* Keys, directories and addresses of n nodes under base (mkdtemp'd). */
void nh_prepare(struct hnode *ns, unsigned n, char *base);
/* Start node i of n with the others as peers. */
void nh_start(struct hnode *ns, unsigned n, unsigned i, bool bootstrap);
/* Stop every node, wipe keys, remove the directories. */
void nh_teardown(struct hnode *ns, unsigned n, const char *base);
/* The index of the leader all running nodes agree on (fails after
 * timeout_ms). */
unsigned nh_wait_leader(struct hnode *ns, unsigned n, unsigned timeout_ms);
/* A field of the node's status text, into out. */
const char *nh_field(struct hnode *nd, const char *name, char *out,
                     size_t cap);
unsigned long nh_field_num(struct hnode *nd, const char *name);
void nh_wait_field(struct hnode *nd, const char *name, const char *want,
                   unsigned timeout_ms);
void nh_wait_num(struct hnode *nd, const char *name, unsigned long want,
                 unsigned timeout_ms);

/* Raw unix-socket frames. */
int nh_unix_connect(const char *path);
/* Write all of p (MSG_NOSIGNAL). 0 or -1. */
int nh_write_all(int fd, const void *p, size_t len);
/* Read one frame's body into a malloc'd buffer (*body, *len); 0, or -1
 * on EOF/error/timeout. */
int nh_read_frame(int fd, uint8_t **body, size_t *len, unsigned timeout_ms);
/* Does the peer close the connection (EOF) within timeout_ms, whatever
 * comes before? */
bool nh_wait_eof(int fd, unsigned timeout_ms);

#endif
