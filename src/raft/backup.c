/*
 * Backups (format: backup.h). Saving runs on a node's loop thread: the
 * KV state is encoded as it stands between two applies, so it is exactly
 * the state at the applied index the backup names. Restoring runs
 * offline, in the `p2praft restore` process: it checks the backup whole,
 * takes the data directory's lock (a running node holds it), refuses a
 * directory that holds raft state, and stores the backup's state as a
 * raft_uv snapshot with the chosen configuration, so that the node starts
 * from it as from any snapshot of its own.
 */
#include <dirent.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "p2praft.h"
#include "raft/api.h"
#include "raft/backup.h"
#include "raft/codec.h"
#include "raft/consensus.h"
#include "raft/datadir.h"
#include "raft/diskcheck.h"
#include "raft/io.h"
#include "raft/kv.h"
#include "raft/node.h"
#include "raft/snapshot.h"
#include "util/byteorder.h"
#include "util/heap.h"

static const uint8_t MAGIC[8] = {'p', '2', 'p', 'r', 'b', 'a', 'k', '\n'};
#define VERSION 1
#define OFF_VERSION 8
#define OFF_INDEX 16
#define OFF_TERM 24
#define OFF_CONF_LEN 32
#define OFF_STATE_LEN 40
#define OFF_DIGEST 48
#define DIGEST_LEN 32

/* SHA-256 of the file without its digest field. */
static int digest(const uint8_t *data, size_t len, uint8_t out[DIGEST_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned n = 0;
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, data, OFF_DIGEST) == 1 &&
             EVP_DigestUpdate(ctx, data + P2PRAFT__BACKUP_HEADER,
                              len - P2PRAFT__BACKUP_HEADER) == 1 &&
             EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == DIGEST_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : LP2P_ECRYPTO;
}

int p2praft__backup_encode(uint64_t index, uint64_t term,
                           const struct raft_configuration *conf,
                           const uint8_t *payload, size_t plen,
                           struct lp2p_buf *out)
{
    struct raft_buffer cb = {NULL, 0};
    uint8_t hdr[P2PRAFT__BACKUP_HEADER], snap[P2PRAFT__SNAP_HEADER];
    size_t start = out->len;
    int rv;
    if (raft_configuration_encode(conf, &cb) != 0) {
        return LP2P_ENOMEM;
    }
    rv = p2praft__snapshot_header(snap, payload, plen);
    if (rv != 0) {
        goto done;
    }
    memset(hdr, 0, sizeof(hdr));
    memcpy(hdr, MAGIC, sizeof(MAGIC));
    hdr[OFF_VERSION] = VERSION;
    lp2p__put64(hdr + OFF_INDEX, index);
    lp2p__put64(hdr + OFF_TERM, term);
    lp2p__put64(hdr + OFF_CONF_LEN, cb.len);
    lp2p__put64(hdr + OFF_STATE_LEN, P2PRAFT__SNAP_HEADER + plen);
    rv = lp2p__buf_reserve(out, sizeof(hdr) + cb.len + sizeof(snap) + plen);
    if (rv == 0) {
        lp2p__buf_append(out, hdr, sizeof(hdr));
        lp2p__buf_append(out, cb.base, cb.len);
        lp2p__buf_append(out, snap, sizeof(snap));
        if (plen > 0) {
            lp2p__buf_append(out, payload, plen);
        }
        rv = digest(out->data + start, out->len - start,
                    out->data + start + OFF_DIGEST);
        if (rv != 0) {
            out->len = start;
        }
    }
done:
    raft_free(cb.base);
    return rv;
}

int p2praft__backup_parse(const uint8_t *data, size_t len,
                          struct p2praft__backup *b, char *why,
                          size_t whylen)
{
    uint8_t want[DIGEST_LEN];
    uint64_t clen, slen;
    struct raft_buffer cbuf;
    void *st = NULL;
    char swhy[128];
    int rv;
    memset(b, 0, sizeof(*b));
    raft_configuration_init(&b->conf);
    if (len < sizeof(MAGIC) || memcmp(data, MAGIC, sizeof(MAGIC)) != 0) {
        snprintf(why, whylen, "not a p2praft backup (no \"p2prbak\" magic)");
        return LP2P_ECORRUPT;
    }
    if (len < P2PRAFT__BACKUP_HEADER) {
        snprintf(why, whylen, "truncated: %zu bytes, shorter than the "
                              "%d-byte header", len, P2PRAFT__BACKUP_HEADER);
        return LP2P_ECORRUPT;
    }
    if (data[OFF_VERSION] != VERSION) {
        snprintf(why, whylen, "backup format version %u; this p2praft reads "
                              "version %d", data[OFF_VERSION], VERSION);
        return LP2P_ECORRUPT;
    }
    clen = lp2p__get64(data + OFF_CONF_LEN);
    slen = lp2p__get64(data + OFF_STATE_LEN);
    if (clen > len || slen > len ||
        P2PRAFT__BACKUP_HEADER + clen + slen != len) {
        snprintf(why, whylen,
                 "%s: the header announces %" PRIu64 " bytes, the file "
                 "has %zu",
                 P2PRAFT__BACKUP_HEADER + clen + slen > len ? "truncated"
                                                            : "extra bytes",
                 (uint64_t)(P2PRAFT__BACKUP_HEADER + clen + slen), len);
        return LP2P_ECORRUPT;
    }
    rv = digest(data, len, want);
    if (rv != 0) {
        snprintf(why, whylen, "cannot compute SHA-256");
        return rv;
    }
    if (memcmp(want, data + OFF_DIGEST, DIGEST_LEN) != 0) {
        snprintf(why, whylen, "checksum mismatch: the file was changed or "
                              "damaged");
        return LP2P_ECORRUPT;
    }
    b->index = lp2p__get64(data + OFF_INDEX);
    b->term = lp2p__get64(data + OFF_TERM);
    if (b->index == 0 || b->term == 0) {
        snprintf(why, whylen, "index and term must not be 0");
        return LP2P_ECORRUPT;
    }
    cbuf.base = (void *)(data + P2PRAFT__BACKUP_HEADER);
    cbuf.len = clen;
    if (raft_configuration_decode(&cbuf, &b->conf) != 0 || b->conf.n == 0) {
        raft_configuration_close(&b->conf);
        raft_configuration_init(&b->conf);
        snprintf(why, whylen, "the raft configuration does not decode");
        return LP2P_ECORRUPT;
    }
    b->state = data + P2PRAFT__BACKUP_HEADER + clen;
    b->state_len = slen;
    if (p2praft__snapshot_unframe(b->state, b->state_len, &b->payload,
                                  &b->payload_len, swhy, sizeof(swhy)) != 0) {
        snprintf(why, whylen, "state: %s", swhy);
        goto corrupt;
    }
    rv = p2praft__decode_new(&p2praft__kv_state_type, b->payload,
                             b->payload_len, &st);
    if (rv != 0) {
        snprintf(why, whylen, "the state does not decode: %s",
                 lp2p_strerror(rv));
        if (rv == LP2P_ENOMEM) {
            p2praft__backup_release(b);
            return rv;
        }
        goto corrupt;
    }
    b->keys = p2praft__kv_count(st);
    p2praft_value_destroy(&p2praft__kv_state_type, st);
    return 0;
corrupt:
    p2praft__backup_release(b);
    return LP2P_ECORRUPT;
}

void p2praft__backup_release(struct p2praft__backup *b)
{
    raft_configuration_close(&b->conf);
    raft_configuration_init(&b->conf);
}

int p2praft__node_backup(struct p2praft_node *n, struct lp2p_buf *out,
                         bool capped, char *why, size_t whylen)
{
    const struct p2praft__kv_state *st = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    int rv = p2praft__consensus_state(n->c, (const void **)&st);
    if (rv == P2PRAFT_ENOSTATE || (rv == 0 && st == NULL)) {
        snprintf(why, whylen, "no state yet: nothing was ever written");
        return LP2P_ENOTFOUND;
    }
    if (rv != 0) {
        snprintf(why, whylen, "cannot read the state: %s",
                 p2praft_strerror(rv));
        return rv;
    }
    rv = p2praft_encode_snapshot(&p2praft__kv_state_type, st, &data, &len);
    if (rv != 0) {
        snprintf(why, whylen, "cannot encode the state: %s",
                 p2praft_strerror(rv));
        return rv;
    }
    if (capped && len + P2PRAFT__BACKUP_HEADER + P2PRAFT__SNAP_HEADER + 65536 >
                      P2PRAFT_API_FRAME_MAX - P2PRAFT__API_RESP_PAYLOAD) {
        snprintf(why, whylen,
                 "the state is %zu bytes, over what one API answer carries "
                 "(%d bytes): use a paged backup (p2praft snapshot save "
                 "does)",
                 len, P2PRAFT_API_FRAME_MAX);
        lp2p__free(data);
        return LP2P_ETOOBIG;
    }
    rv = p2praft__backup_encode(raft_last_applied(&n->raft),
                                raft_current_term(&n->raft),
                                &n->raft.configuration, data, len, out);
    lp2p__free(data);
    if (rv != 0) {
        snprintf(why, whylen, "cannot encode the backup: %s",
                 p2praft_strerror(rv));
    }
    return rv;
}

/* ---- public API ---------------------------------------------------------- */

int p2praft_backup_check(const uint8_t *data, size_t len,
                         struct p2praft_backup_info *info, char *errmsg,
                         size_t errmsg_len)
{
    struct p2praft__backup b;
    char why[256] = "";
    unsigned i;
    int rv = p2praft__backup_parse(data, len, &b, why, sizeof(why));
    if (rv != 0) {
        if (errmsg != NULL) {
            snprintf(errmsg, errmsg_len, "%s", why);
        }
        return rv;
    }
    if (info != NULL) {
        memset(info, 0, sizeof(*info));
        info->index = b.index;
        info->term = b.term;
        info->keys = b.keys;
        info->state_bytes = b.payload_len;
        info->n_members = b.conf.n;
        for (i = 0; i < b.conf.n && i < P2PRAFT_BACKUP_MEMBERS_MAX; i++) {
            snprintf(info->members[i], sizeof(info->members[i]), "%s",
                     b.conf.servers[i].address);
        }
    }
    p2praft__backup_release(&b);
    return 0;
}

/* ---- restore: raft_uv, offline ------------------------------------------- */

struct restore_ctx {
    bool put_done, closed;
    int put_status;
};

static void put_cb(struct raft_io_snapshot_put *req, int status)
{
    struct restore_ctx *x = req->data;
    x->put_done = true;
    x->put_status = status;
}

static void io_closed(struct raft_io *io)
{
    struct restore_ctx *x = io->data;
    x->closed = true;
}

/* Store `b`'s state as a raft_uv snapshot with configuration `conf` in
 * `dir` (locked, without state). */
static int store_snapshot(const char *dir, const struct p2praft__backup *b,
                          const struct raft_configuration *conf, char *errmsg,
                          size_t errmsg_len)
{
    uv_loop_t loop;
    struct raft_uv_transport tp;
    struct raft_io io;
    struct raft_io_snapshot_put req;
    struct raft_snapshot snap;
    struct raft_buffer buf;
    struct restore_ctx x;
    raft_term term;
    raft_id voted;
    struct raft_snapshot *loaded = NULL;
    raft_index start;
    struct raft_entry *entries = NULL;
    size_t n_entries = 0;
    int rv;

    memset(&x, 0, sizeof(x));
    memset(&io, 0, sizeof(io));
    p2praft__null_transport_init(&tp);
    if (uv_loop_init(&loop) != 0) {
        snprintf(errmsg, errmsg_len, "cannot create an event loop");
        return LP2P_ENOMEM;
    }
    rv = raft_uv_init(&io, &loop, dir, &tp);
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "raft storage in %s: %s", dir,
                 io.errmsg);
        uv_loop_close(&loop);
        return LP2P_EIO;
    }
    io.data = &x;
    rv = io.init(&io, conf->servers[0].id, conf->servers[0].address);
    if (rv == 0) {
        rv = io.load(&io, &term, &voted, &loaded, &start, &entries,
                     &n_entries);
    }
    if (rv == 0 && (loaded != NULL || n_entries > 0 || term != 0)) {
        snprintf(errmsg, errmsg_len, "%s already holds raft state", dir);
        rv = RAFT_CANTBOOTSTRAP;
    }
    /* The snapshot first, the term last: until the term is written the
     * directory holds no term, and a failed restore leaves no state that
     * looks whole. */
    if (rv == 0) {
        /* raft_uv writes the snapshot's buffers and then frees nothing of
         * ours: the buffer stays a view into the backup. */
        buf.base = (void *)b->state;
        buf.len = b->state_len;
        memset(&snap, 0, sizeof(snap));
        snap.index = b->index;
        snap.term = b->term;
        snap.configuration = *conf;
        snap.configuration_index = b->index;
        snap.bufs = &buf;
        snap.n_bufs = 1;
        req.data = &x;
        rv = io.snapshot_put(&io, 0, &req, &snap, put_cb);
        if (rv == 0) {
            while (!x.put_done) {
                uv_run(&loop, UV_RUN_ONCE);
            }
            rv = x.put_status;
        }
    }
    if (rv == 0) {
        rv = io.set_term(&io, b->term);
    }
    if (rv != 0 && errmsg[0] == '\0') {
        snprintf(errmsg, errmsg_len, "cannot store the snapshot in %s: %s",
                 dir, io.errmsg[0] != '\0' ? io.errmsg : raft_strerror(rv));
    }
    io.close(&io, io_closed);
    while (!x.closed) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    raft_uv_close(&io);
    uv_loop_close(&loop);
    if (loaded != NULL) {
        raft_configuration_close(&loaded->configuration);
        /* libraft's load hands over the snapshot and its buffers */
        for (unsigned i = 0; i < loaded->n_bufs; i++) {
            raft_free(loaded->bufs[i].base);
        }
        raft_free(loaded->bufs);
        raft_free(loaded);
    }
    if (entries != NULL) {
        if (n_entries > 0 && entries[0].batch != NULL) {
            raft_free(entries[0].batch);
        }
        raft_free(entries);
    }
    if (rv == RAFT_CANTBOOTSTRAP) {
        return LP2P_EEXIST;
    }
    return rv == 0 ? 0 : LP2P_EIO;
}

/* Remove the directory `dir` that restore created, and what is in it
 * (raft_uv's files: no subdirectories). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                unlink(path);
            }
        }
        closedir(d);
    }
    rmdir(dir);
}

int p2praft_restore(const char *data_dir, const uint8_t *data, size_t len,
                    const char *const *members, size_t n_members,
                    char *errmsg, size_t errmsg_len)
{
    struct p2praft__backup b;
    struct p2praft__datadir dd;
    struct p2praft__disk_report rep;
    struct raft_configuration conf;
    char why[256] = "", tmp[512] = "";
    bool created;
    size_t i;
    int rv;

    if (errmsg != NULL && errmsg_len > 0) {
        errmsg[0] = '\0';
    }
    if (data_dir == NULL || data == NULL || (n_members > 0 && members == NULL)) {
        return LP2P_EINVAL;
    }
    rv = p2praft__backup_parse(data, len, &b, why, sizeof(why));
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "the backup is refused: %s", why);
        return rv;
    }
    raft_configuration_init(&conf);
    if (n_members == 0) {
        for (i = 0; i < b.conf.n && rv == 0; i++) {
            rv = raft_configuration_add(&conf, b.conf.servers[i].id,
                                        b.conf.servers[i].address,
                                        b.conf.servers[i].role);
        }
    } else {
        for (i = 0; i < n_members && rv == 0; i++) {
            uint64_t id;
            rv = p2praft_server_id_parse(members[i], &id);
            if (rv != 0) {
                snprintf(errmsg, errmsg_len, "not a peer ID: %s", members[i]);
                goto out;
            }
            rv = raft_configuration_add(&conf, id, members[i], RAFT_VOTER);
            if (rv != 0) {
                snprintf(errmsg, errmsg_len, "member %s listed twice",
                         members[i]);
                rv = LP2P_EINVAL;
                goto out;
            }
        }
    }
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "out of memory");
        rv = LP2P_ENOMEM;
        goto out;
    }
    p2praft__datadir_init(&dd);
    created = access(data_dir, F_OK) != 0;
    rv = p2praft__datadir_lock(&dd, data_dir, true, tmp, sizeof(tmp));
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "%s", tmp);
        goto out;
    }
    rv = p2praft__disk_check(data_dir, &rep, tmp, sizeof(tmp));
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "%s", tmp);
    } else if (rep.has_state) {
        snprintf(errmsg, errmsg_len,
                 "%s holds raft state (term %" PRIu64 ", last index %" PRIu64
                 "): restore seeds a new, empty data directory only",
                 data_dir, rep.term, rep.last_index);
        rv = LP2P_EEXIST;
    } else {
        rv = store_snapshot(data_dir, &b, &conf, errmsg, errmsg_len);
        if (rv != 0 && created) {
            /* Ours from the start: leave nothing half-restored. */
            remove_tree(data_dir);
        } else if (rv != 0) {
            size_t k = strlen(errmsg);
            snprintf(errmsg + k, errmsg_len > k ? errmsg_len - k : 0,
                     "; %s may hold part of the restore: empty it before "
                     "trying again",
                     data_dir);
        }
    }
    p2praft__datadir_close(&dd);
out:
    raft_configuration_close(&conf);
    p2praft__backup_release(&b);
    return rv;
}
