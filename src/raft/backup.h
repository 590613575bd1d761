/*
 * Backups (backup.c): the file `p2praft snapshot save` writes and
 * `p2praft restore` reads. Layout (all integers big-endian):
 *
 *   0   8 B    "p2prbak\n"
 *   8   u8     version (1)
 *   9   7 B    zero
 *   16  u64    raft index of the state (the node's applied index)
 *   24  u64    raft term (the node's term when it saved)
 *   32  u64    configuration length C
 *   40  u64    state length S
 *   48  32 B   SHA-256 of every other byte of the file (0..48, then 80..)
 *   80  C B    the raft configuration (raft_configuration_encode())
 *   ..  S B    the state as a framed snapshot (snapshot.h: its own header
 *              and SHA-256, then the KV store's codec output)
 *
 * The state part is byte for byte what the node's FSM writes into a raft
 * snapshot, so a restore stores it as one, and the node checks it again
 * when it loads it. Any changed, missing or extra byte is refused.
 */
#ifndef P2PRAFT_RAFT_BACKUP_H
#define P2PRAFT_RAFT_BACKUP_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define P2PRAFT__BACKUP_HEADER 80

struct p2praft_node;

/* A parsed backup: views into the bytes it was parsed from, plus the
 * decoded configuration (owned: raft_configuration_close()). */
struct p2praft__backup {
    uint64_t index, term;
    struct raft_configuration conf;
    const uint8_t *state; /* framed snapshot */
    size_t state_len;
    const uint8_t *payload; /* its KV codec bytes */
    size_t payload_len;
    uint64_t keys;
};

/* Encode a backup of `payload` (the KV state's codec bytes, borrowed) at
 * index/term with `conf` (borrowed) into `out` (appended). 0,
 * LP2P_ENOMEM, LP2P_ECRYPTO. */
int p2praft__backup_encode(uint64_t index, uint64_t term,
                           const struct raft_configuration *conf,
                           const uint8_t *payload, size_t plen,
                           struct lp2p_buf *out);

/* Check and parse a backup (borrowed). 0, or LP2P_ECORRUPT with `why`
 * saying what is wrong (truncated, not a backup, digest mismatch, a state
 * that does not decode...); LP2P_ENOMEM. On success release `b` with
 * p2praft__backup_release(). */
int p2praft__backup_parse(const uint8_t *data, size_t len,
                          struct p2praft__backup *b, char *why,
                          size_t whylen);

void p2praft__backup_release(struct p2praft__backup *b);

/* On the node's loop: a backup of its state at its applied index, into
 * `out`. 0, or an error with `why`: LP2P_ENOTFOUND (no state yet),
 * LP2P_ETOOBIG (over what one API answer can carry, when `capped`),
 * LP2P_ENOMEM... */
int p2praft__node_backup(struct p2praft_node *n, struct lp2p_buf *out,
                         bool capped, char *why, size_t whylen);

/*
 * Paged backups (backup_pages.c), for backups of any size: SNAPSHOT with a
 * cursor (p2praft.h, op 20). The cursor "" makes a backup and keeps it
 * (one per node; a new one replaces it); "ID:OFFSET" reads on from
 * OFFSET. Each answer's payload is u64 ID | u64 total length | u64 offset
 * | up to P2PRAFT__BACKUP_PAGE bytes of the backup. The kept backup is
 * freed once its last byte was sent, or when unread for
 * P2PRAFT__BACKUP_IDLE_MS, or with the node.
 */
#define P2PRAFT__BACKUP_PAGE (4u * 1024 * 1024)
#define P2PRAFT__BACKUP_PAGE_HEAD 24
#define P2PRAFT__BACKUP_IDLE_MS 60000

struct p2praft__backup_pages {
    uint64_t id, seq;
    uint8_t *data; /* the whole backup; NULL: none kept */
    size_t len;
    uint64_t index;
    uint64_t used_ms;
};

/* Serve a page for `cursor` into `out` (appended), the backup's raft index
 * in *index. 0, or an error with `why`: LP2P_EINVAL (a malformed
 * cursor), LP2P_ENOTFOUND (no state yet, or the backup is gone: start
 * again), or what p2praft__node_backup() returns. */
int p2praft__backup_page(struct p2praft_node *n, const char *cursor,
                         struct lp2p_buf *out, uint64_t *index, char *why,
                         size_t whylen);

/* Loop timer: free a kept backup nobody read for too long. */
void p2praft__backup_pages_tick(struct p2praft_node *n, uint64_t now);

/* Free the kept backup (node teardown). */
void p2praft__backup_pages_free(struct p2praft_node *n);

#endif
