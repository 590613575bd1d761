/*
 * Paged backups (backup.h): a backup larger than one API answer
 * (P2PRAFT_API_FRAME_MAX) is made once, kept on the node, and read in
 * pages of P2PRAFT__BACKUP_PAGE bytes by a client that sends the cursor
 * "ID:OFFSET" each time. The backup is one point in time (encoded whole
 * between two applies, as p2praft__node_backup() does); the client checks
 * its SHA-256 once it holds every byte. One backup is kept per node: a new
 * save replaces it, and the reader of the old one is told to start again.
 * It is freed after its last page, after P2PRAFT__BACKUP_IDLE_MS unread,
 * or with the node.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/backup.h"
#include "raft/node.h"
#include "util/byteorder.h"
#include "util/heap.h"

void p2praft__backup_pages_free(struct p2praft_node *n)
{
    lp2p__free(n->backup.data);
    n->backup.data = NULL;
    n->backup.len = 0;
    n->backup.id = 0;
}

void p2praft__backup_pages_tick(struct p2praft_node *n, uint64_t now)
{
    if (n->backup.data != NULL &&
        now - n->backup.used_ms > P2PRAFT__BACKUP_IDLE_MS) {
        p2praft__backup_pages_free(n);
    }
}

/* "ID:OFFSET", both decimal. 0 or -1. */
static int parse_cursor(const char *s, uint64_t *id, uint64_t *off)
{
    char *end;
    unsigned long long v;
    if (*s < '0' || *s > '9') {
        return -1;
    }
    v = strtoull(s, &end, 10);
    if (*end != ':' || end[1] < '0' || end[1] > '9') {
        return -1;
    }
    *id = v;
    v = strtoull(end + 1, &end, 10);
    if (*end != '\0') {
        return -1;
    }
    *off = v;
    return 0;
}

/* Make a backup and keep it. */
static int start(struct p2praft_node *n, char *why, size_t whylen)
{
    struct lp2p_buf b;
    int rv;
    lp2p__buf_init(&b);
    rv = p2praft__node_backup(n, &b, false, why, whylen);
    if (rv != 0) {
        lp2p__buf_free(&b);
        return rv;
    }
    p2praft__backup_pages_free(n);
    if (n->backup.seq == 0) {
        /* IDs differ across restarts, so a cursor of an earlier process
         * is refused rather than read from another backup. */
        n->backup.seq = (uv_hrtime() & 0xffffffffu) << 16;
    }
    n->backup.id = ++n->backup.seq;
    n->backup.index = raft_last_applied(&n->raft);
    n->backup.data = lp2p__buf_detach(&b, &n->backup.len);
    return 0;
}

int p2praft__backup_page(struct p2praft_node *n, const char *cursor,
                         struct lp2p_buf *out, uint64_t *index, char *why,
                         size_t whylen)
{
    struct p2praft__backup_pages *k = &n->backup;
    uint8_t head[P2PRAFT__BACKUP_PAGE_HEAD];
    uint64_t id = 0, off = 0;
    size_t take;
    int rv;
    if (cursor[0] == '\0') {
        rv = start(n, why, whylen);
        if (rv != 0) {
            return rv;
        }
        id = k->id;
    } else if (parse_cursor(cursor, &id, &off) != 0) {
        snprintf(why, whylen, "'%s' is not a backup cursor (\"\" or "
                              "\"ID:OFFSET\")", cursor);
        return LP2P_EINVAL;
    }
    if (k->data == NULL || id != k->id) {
        snprintf(why, whylen,
                 "backup %" PRIu64 " is gone (another save replaced it, it "
                 "was unread for %d s, or the node restarted): start again",
                 id, P2PRAFT__BACKUP_IDLE_MS / 1000);
        return LP2P_ENOTFOUND;
    }
    if (off > k->len) {
        snprintf(why, whylen,
                 "offset %" PRIu64 " is past the end of backup %" PRIu64
                 " (%zu bytes)", off, id, k->len);
        return LP2P_EINVAL;
    }
    take = k->len - (size_t)off;
    if (take > P2PRAFT__BACKUP_PAGE) {
        take = P2PRAFT__BACKUP_PAGE;
    }
    lp2p__put64(head, id);
    lp2p__put64(head + 8, (uint64_t)k->len);
    lp2p__put64(head + 16, off);
    if (lp2p__buf_append(out, head, sizeof(head)) != 0 ||
        lp2p__buf_append(out, k->data + off, take) != 0) {
        snprintf(why, whylen, "out of memory");
        return LP2P_ENOMEM;
    }
    *index = k->index;
    k->used_ms = uv_now(&n->loop);
    if (off + take == k->len) {
        p2praft__backup_pages_free(n); /* read whole */
    }
    return 0;
}
