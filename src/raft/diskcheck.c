/*
 * The raft file check (see diskcheck.h). raft_uv's on-disk format, as
 * cowsql raft 0.22 writes it (integers little-endian):
 *
 *   metadata1, metadata2  32 bytes: format (1), version, term, voted_for.
 *       Version v goes to metadata1 when odd, to metadata2 when even, over
 *       the old contents, so from version 2 on both exist and hold v and
 *       v - 1. A file shorter than 32 bytes was being created by a crash.
 *   FIRST-LAST            a closed segment (16-digit indexes): format (1),
 *                         then batches up to the exact end of the file.
 *   open-N                an open segment, preallocated with zeros: format,
 *                         batches, then zeros.
 *       batch: crc32(header), crc32(data), header = u64 count + one slot
 *       per entry (u64 term, u8 type, 3 zero bytes, u32 length), then the
 *       entries' bytes. The CRC is raft_uv's (util/crc32.h).
 *   snapshot-T-I-MS.meta  format, crc32 (as u64) of the next 16 bytes and
 *                         the configuration, configuration index, length,
 *                         configuration.
 *   snapshot-T-I-MS       the FSM's bytes: p2praft's frame (snapshot.h).
 *   corrupt-*             a segment libraft set aside at an earlier start.
 *
 * The check reads every file, verifies every checksum and the links
 * between files (metadata versions, contiguous indexes from the snapshot
 * on, terms that never go backwards and never exceed the current term),
 * and refuses any damage. Its only leniency is the torn tail of the last
 * open segment (torn_write()).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp2p.h"
#include "raft/diskcheck.h"
#include "raft/snapshot.h"
#include "util/crc32.h"
#include "util/heap.h"

#define FORMAT 1
#define METADATA_SIZE 32
#define META_HEADER 32
#define META_CONF_MAX (1024 * 1024)
#define FILENAME_MAX_LEN 128 /* raft_uv ignores longer names */
#define SECTOR 512
#define PAGE 4096
/* raft_uv's bound on the entries of one batch (8 MiB / 32 bytes). */
#define BATCH_MAX (P2PRAFT__SEGMENT_SIZE / 32)

#define RECOVERY                                                              \
    "refusing to start on a damaged log: replace the node (p2praft peers "  \
    "rm ID on a member, empty the directory, p2praft peers add MA, start "   \
    "it with --join) or restore a backup of %s "                             \
    "(README: Operating a node)"

struct seg {
    char name[FILENAME_MAX_LEN];
    uint64_t first, last; /* closed: from the name */
    uint64_t counter;     /* open */
    uint64_t entries;     /* found in it */
    uint64_t term_first, term_last;
};

struct snap {
    char name[FILENAME_MAX_LEN]; /* of the .meta */
    uint64_t term, index, stamp;
};

struct meta {
    bool present, is_short;
    uint64_t version, term, vote;
};

struct ctx {
    const char *dir;
    char *err;
    size_t errlen;
    struct p2praft__disk_report *r;
    uint8_t *buf; /* file contents, reused */
    size_t cap;
    struct seg *closed, *open;
    size_t n_closed, n_open, cap_closed, cap_open;
    struct snap *snaps;
    size_t n_snaps, cap_snaps;
    struct meta m[2];
    char corrupt[FILENAME_MAX_LEN];
};

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Refuse: "<dir>/<file>: <what>; <recovery>". */
static int damaged(struct ctx *x, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int damaged(struct ctx *x, const char *file, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (x->err != NULL && x->errlen > 0) {
        int k = snprintf(x->err, x->errlen, "%s/%s: %s; ", x->dir, file, what);
        if (k > 0 && (size_t)k < x->errlen) {
            snprintf(x->err + k, x->errlen - (size_t)k, RECOVERY, x->dir);
        }
    }
    return LP2P_ECORRUPT;
}

static int io_error(struct ctx *x, const char *file, const char *what)
{
    if (x->err != NULL && x->errlen > 0) {
        snprintf(x->err, x->errlen, "cannot %s %s/%s: %s", what, x->dir, file,
                 strerror(errno));
    }
    return LP2P_EIO;
}

/* ---- names --------------------------------------------------------------- */

/* Parse 1..max decimal digits at *s into *v; advance *s. */
static bool digits(const char **s, unsigned max, uint64_t *v)
{
    unsigned n = 0;
    *v = 0;
    while (**s >= '0' && **s <= '9' && n < max) {
        if (*v > (UINT64_MAX - 9) / 10) {
            return false;
        }
        *v = *v * 10 + (uint64_t)(**s - '0');
        (*s)++;
        n++;
    }
    return n > 0;
}

static bool is_closed(const char *s, uint64_t *first, uint64_t *last)
{
    return digits(&s, 16, first) && *s++ == '-' && digits(&s, 16, last) &&
           *s == '\0';
}

static bool is_open(const char *s, uint64_t *counter)
{
    return strncmp(s, "open-", 5) == 0 && (s += 5, digits(&s, 20, counter)) &&
           *s == '\0';
}

/* snapshot-T-I-MS, followed by ".meta" when meta. */
static bool is_snapshot(const char *s, bool meta, struct snap *out)
{
    if (strncmp(s, "snapshot-", 9) != 0) {
        return false;
    }
    s += 9;
    if (!digits(&s, 20, &out->term) || *s++ != '-' ||
        !digits(&s, 20, &out->index) || *s++ != '-' ||
        !digits(&s, 20, &out->stamp)) {
        return false;
    }
    return meta ? strcmp(s, ".meta") == 0 : *s == '\0';
}

static int push(void **arr, size_t *n, size_t *cap, size_t size,
                const void *item)
{
    if (*n == *cap) {
        size_t ncap = *cap == 0 ? 16 : *cap * 2;
        void *p = lp2p__realloc(*arr, ncap * size);
        if (p == NULL) {
            return LP2P_ENOMEM;
        }
        *arr = p;
        *cap = ncap;
    }
    memcpy((char *)*arr + *n * size, item, size);
    (*n)++;
    return 0;
}

/* Sort the directory's raft files into x (names only). */
static int list(struct ctx *x)
{
    DIR *d = opendir(x->dir);
    struct dirent *e;
    int rv = 0;
    if (d == NULL) {
        return io_error(x, "", "list");
    }
    while (rv == 0 && (e = readdir(d)) != NULL) {
        const char *s = e->d_name;
        size_t len = strlen(s);
        struct seg g;
        struct snap sn;
        if (strncmp(s, "corrupt-", 8) == 0) {
            if (x->corrupt[0] == '\0') {
                len = len < sizeof(x->corrupt) ? len : sizeof(x->corrupt) - 1;
                memcpy(x->corrupt, s, len);
                x->corrupt[len] = '\0';
            }
            continue;
        }
        if (len >= FILENAME_MAX_LEN) {
            continue;
        }
        memset(&g, 0, sizeof(g));
        memcpy(g.name, s, len + 1);
        if (strcmp(s, "metadata1") == 0 || strcmp(s, "metadata2") == 0) {
            x->m[s[8] - '1'].present = true;
        } else if (is_closed(s, &g.first, &g.last)) {
            rv = push((void **)&x->closed, &x->n_closed, &x->cap_closed,
                      sizeof(g), &g);
        } else if (is_open(s, &g.counter)) {
            rv = push((void **)&x->open, &x->n_open, &x->cap_open, sizeof(g),
                      &g);
        } else if (is_snapshot(s, true, &sn)) {
            memcpy(sn.name, s, len + 1);
            rv = push((void **)&x->snaps, &x->n_snaps, &x->cap_snaps,
                      sizeof(sn), &sn);
        }
    }
    closedir(d);
    return rv;
}

/* ---- reading ------------------------------------------------------------- */

#define MISSING 1 /* read_file(): no such file */

/* Read dir/name whole into x->buf; *len its size, *st its stat. 0,
 * MISSING, or an error (x->err set). */
static int read_file(struct ctx *x, const char *name, size_t *len,
                     struct stat *st)
{
    char path[4096];
    size_t off = 0;
    int fd;
    snprintf(path, sizeof(path), "%s/%s", x->dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? MISSING : io_error(x, name, "open");
    }
    if (fstat(fd, st) != 0) {
        close(fd);
        return io_error(x, name, "stat");
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return damaged(x, name, "not a regular file");
    }
    if ((uint64_t)st->st_size > x->cap) {
        size_t ncap = (size_t)st->st_size;
        uint8_t *p = lp2p__realloc(x->buf, ncap > 0 ? ncap : 1);
        if (p == NULL) {
            close(fd);
            return LP2P_ENOMEM;
        }
        x->buf = p;
        x->cap = ncap;
    }
    while (off < (size_t)st->st_size) {
        ssize_t n = pread(fd, x->buf + off, (size_t)st->st_size - off,
                          (off_t)off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            close(fd);
            if (n == 0) {
                errno = EIO;
            }
            return io_error(x, name, "read");
        }
        off += (size_t)n;
    }
    close(fd);
    *len = off;
    x->r->bytes += off;
    return 0;
}

/* Offset just past the last non-zero byte (0: all zeros). */
static size_t last_nonzero(const uint8_t *b, size_t len)
{
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, b + len - 8, 8);
        if (w != 0) {
            break;
        }
        len -= 8;
    }
    while (len > 0 && b[len - 1] == 0) {
        len--;
    }
    return len;
}

/* ---- metadata ------------------------------------------------------------ */

static int metadata_read(struct ctx *x, int i)
{
    const char *name = i == 0 ? "metadata1" : "metadata2";
    struct meta *m = &x->m[i];
    struct stat st;
    size_t len = 0;
    int rv;
    if (!m->present) {
        return 0;
    }
    rv = read_file(x, name, &len, &st);
    if (rv == MISSING) {
        m->present = false;
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (len < METADATA_SIZE) {
        m->is_short = true; /* judged against the other file below */
        return 0;
    }
    if (len > METADATA_SIZE) {
        return damaged(x, name, "%zu bytes instead of %d", len, METADATA_SIZE);
    }
    if (le64(x->buf) != FORMAT) {
        return damaged(x, name, "unknown format %llu",
                       (unsigned long long)le64(x->buf));
    }
    m->version = le64(x->buf + 8);
    m->term = le64(x->buf + 16);
    m->vote = le64(x->buf + 24);
    if (m->version == 0) {
        return damaged(x, name, "version 0");
    }
    if ((m->version % 2 == 1) != (i == 0)) {
        return damaged(x, name, "holds version %llu, which belongs in %s",
                       (unsigned long long)m->version,
                       i == 0 ? "metadata2" : "metadata1");
    }
    return 0;
}

/* The two files against each other; the current term into r->term. Runs
 * after the segments and snapshots are known (has_log). */
static int metadata_check(struct ctx *x)
{
    struct meta *m1 = &x->m[0], *m2 = &x->m[1];
    bool has1 = m1->present && !m1->is_short;
    bool has2 = m2->present && !m2->is_short;
    /* A short file: raft crashed while creating it (raft deletes it). It
     * is only created for version 1 (metadata1, before any entry) or 2. */
    if (m1->is_short && (m2->present || x->r->has_log)) {
        return damaged(x, "metadata1", "truncated");
    }
    if (m2->is_short && !(has1 && m1->version == 1)) {
        return damaged(x, "metadata2", "truncated");
    }
    if (has1 && has2) {
        uint64_t hi = m1->version > m2->version ? m1->version : m2->version;
        uint64_t lo = m1->version > m2->version ? m2->version : m1->version;
        struct meta *newer = m1->version > m2->version ? m1 : m2;
        struct meta *older = newer == m1 ? m2 : m1;
        if (hi - lo != 1) {
            return damaged(x, newer == m1 ? "metadata2" : "metadata1",
                           "at version %llu while %s is at %llu: one of them "
                           "is stale",
                           (unsigned long long)older->version,
                           newer == m1 ? "metadata1" : "metadata2",
                           (unsigned long long)newer->version);
        }
        if (newer->term < older->term) {
            return damaged(x, newer == m1 ? "metadata1" : "metadata2",
                           "term %llu is below the previous %llu",
                           (unsigned long long)newer->term,
                           (unsigned long long)older->term);
        }
        x->r->term = newer->term;
    } else if (has1) {
        if (m1->version != 1) {
            return damaged(x, "metadata2",
                           "missing (metadata1 is at version %llu, so "
                           "metadata2 held the version before or after it): "
                           "the node's term and vote may be lost",
                           (unsigned long long)m1->version);
        }
        x->r->term = m1->term;
    } else if (has2) {
        return damaged(x, "metadata1",
                       "missing (metadata2 is at version %llu): the node's "
                       "term and vote may be lost",
                       (unsigned long long)m2->version);
    } else if (x->r->has_log) {
        return damaged(x, "metadata1",
                       "missing, and so is metadata2, although the directory "
                       "holds raft entries: the node's term and vote are "
                       "lost (it could vote twice in one term)");
    }
    if (x->r->term > 0) {
        x->r->has_state = true;
    }
    return 0;
}

/* ---- segments ------------------------------------------------------------ */

/* One batch at `off` of a segment of `size` bytes: 0 with the batch's end,
 * entry count and terms, or a static reason. */
static const char *batch_check(const uint8_t *b, size_t size, size_t off,
                               size_t *end, struct p2praft__seg_scan *g)
{
    uint64_t n, i, data = 0, prev = g->term_last;
    size_t hdr;
    if (size - off < 16) {
        return "a batch is cut short";
    }
    n = le64(b + off + 8);
    if (n == 0) {
        return "a batch of zero entries";
    }
    if (n > BATCH_MAX) {
        return "a batch with an impossible number of entries";
    }
    hdr = 8 + 16 * (size_t)n;
    if (size - off - 8 < hdr) {
        return "a batch header runs past the end of the file";
    }
    if (lp2p__crc32_raft(0, b + off + 8, hdr) != le32(b + off)) {
        return "batch header checksum mismatch";
    }
    for (i = 0; i < n; i++) {
        const uint8_t *slot = b + off + 16 + 16 * i;
        uint64_t term = le64(slot);
        if (slot[8] < 1 || slot[8] > 3) {
            return "an entry of unknown type";
        }
        if (term == 0) {
            return "an entry of term 0";
        }
        if (term < prev) {
            return "entry terms go backwards";
        }
        prev = term;
        data += le32(slot + 12);
    }
    if (size - off - 8 - hdr < data) {
        return "batch data runs past the end of the file";
    }
    if (lp2p__crc32_raft(0, b + off + 8 + hdr, (size_t)data) !=
        le32(b + off + 4)) {
        return "batch data checksum mismatch";
    }
    if (g->entries == 0) {
        g->term_first = le64(b + off + 16);
    }
    g->term_last = prev;
    g->entries += n;
    *end = off + 8 + hdr + (size_t)data;
    return NULL;
}

/*
 * Is the batch at `start`, which failed its checks, a write that a crash
 * cut short? Writes go to whole blocks, so such a write leaves its batch
 * written up to some sector and zeros from there to the end of the file
 * (the segment was preallocated with zeros). p is the first sector from
 * which the file reads as zeros. The batch was cut short when p falls
 * inside it, at least 8 bytes before its declared end (its last entry's
 * padding is zeros anyway), and what was written of its header is
 * well-formed. Anything else changed after a complete write: damage.
 */
static bool torn_write(const uint8_t *b, size_t size, size_t start,
                       size_t nonzero_end)
{
    size_t p = (nonzero_end + SECTOR - 1) / SECTOR * SECTOR;
    size_t hdr_end, i, data = 0;
    uint64_t n;
    if (p >= size) {
        return false; /* every sector was written */
    }
    if (p <= start + 16) {
        return true; /* not even the count was written whole */
    }
    n = le64(b + start + 8);
    if (n == 0 || n > BATCH_MAX) {
        return false;
    }
    hdr_end = start + 16 + 16 * (size_t)n;
    if (hdr_end > size) {
        return false;
    }
    if (p < hdr_end) {
        for (i = 0; start + 16 + 16 * (i + 1) <= p; i++) {
            const uint8_t *slot = b + start + 16 + 16 * i;
            if (le64(slot) == 0 || slot[8] < 1 || slot[8] > 3 ||
                slot[9] != 0 || slot[10] != 0 || slot[11] != 0) {
                return false;
            }
        }
        return true;
    }
    if (lp2p__crc32_raft(0, b + start + 8, hdr_end - start - 8) !=
        le32(b + start)) {
        return false;
    }
    for (i = 0; i < n; i++) {
        data += le32(b + start + 16 + 16 * i + 12);
    }
    return hdr_end + data <= size && p + 8 <= hdr_end + data;
}

int p2praft__segment_scan(const uint8_t *b, size_t len, bool open,
                          struct p2praft__seg_scan *sc)
{
    size_t off = 8, end = 0;
    memset(sc, 0, sizeof(*sc));
    sc->nonzero_end = last_nonzero(b, len);
    if (open && sc->nonzero_end == 0) {
        return 0; /* prepared, never written: raft removes it */
    }
    sc->batch = 1;
    if (len < 8 || le64(b) != FORMAT) {
        sc->why = len < 8 ? "truncated" : "unknown format";
        return LP2P_ECORRUPT;
    }
    for (; off < len; off = end, sc->batch++) {
        sc->used = off;
        sc->why = batch_check(b, len, off, &end, sc);
        if (sc->why == NULL) {
            continue;
        }
        if (!open) {
            return LP2P_ECORRUPT;
        }
        if (sc->nonzero_end <= off) {
            sc->why = NULL; /* the zeros after the last batch */
            return 0;
        }
        if (torn_write(b, len, off, sc->nonzero_end)) {
            sc->torn = true;
            return 0;
        }
        return LP2P_ECORRUPT;
    }
    sc->used = off;
    if (!open && sc->entries == 0) {
        sc->why = "no entries";
        return LP2P_ECORRUPT;
    }
    return 0;
}

/* Where a segment went wrong, for damaged(). */
static int seg_damaged(struct ctx *x, const char *name,
                       const struct p2praft__seg_scan *sc)
{
    if (sc->used == 0) {
        return damaged(x, name, "%s", sc->why);
    }
    return damaged(x, name, "%s (batch %u at byte %zu)", sc->why, sc->batch,
                   sc->used);
}

static int closed_check(struct ctx *x, struct seg *g)
{
    struct p2praft__seg_scan sc;
    struct stat st;
    size_t len = 0;
    int rv = read_file(x, g->name, &len, &st);
    if (rv == MISSING) {
        return damaged(x, g->name, "vanished while being checked");
    }
    if (rv != 0) {
        return rv;
    }
    if (g->first > g->last) {
        return damaged(x, g->name, "its name has the last index first");
    }
    if (p2praft__segment_scan(x->buf, len, false, &sc) != 0) {
        return seg_damaged(x, g->name, &sc);
    }
    g->entries = sc.entries;
    g->term_first = sc.term_first;
    g->term_last = sc.term_last;
    if (g->entries != g->last - g->first + 1) {
        return damaged(x, g->name, "holds %llu entries instead of %llu",
                       (unsigned long long)g->entries,
                       (unsigned long long)(g->last - g->first + 1));
    }
    x->r->segments++;
    return 0;
}

/* An open segment; *torn_name is set (to keep the first one) when its end
 * is a torn write, which only the last segment holding data may have. */
static int open_check(struct ctx *x, struct seg *g, const char **torn_name,
                      size_t *torn_at, const char **torn_why)
{
    struct p2praft__seg_scan sc;
    struct stat st;
    size_t len = 0, used;
    uint64_t alloc;
    int rv = read_file(x, g->name, &len, &st);
    if (rv == MISSING) {
        return damaged(x, g->name, "vanished while being checked");
    }
    if (rv != 0) {
        return rv;
    }
    alloc = (uint64_t)st.st_blocks * 512;
    rv = p2praft__segment_scan(x->buf, len, true, &sc);
    if (sc.nonzero_end > 0 && *torn_name != NULL) {
        /* A write after the torn one: that one was complete, and damaged. */
        return damaged(x, *torn_name, "%s (at byte %zu), and later segments "
                       "hold entries", *torn_why, *torn_at);
    }
    if (rv != 0) {
        return seg_damaged(x, g->name, &sc);
    }
    if (sc.torn) {
        *torn_name = g->name;
        *torn_at = sc.used;
        *torn_why = sc.why;
        snprintf(x->r->torn, sizeof(x->r->torn),
                 "%s: batch %u at byte %zu was being written when the node "
                 "stopped (%s); raft drops it",
                 g->name, sc.batch, sc.used, sc.why);
    }
    g->entries = sc.entries;
    g->term_first = sc.term_first;
    g->term_last = sc.term_last;
    if (g->entries > 0) {
        x->r->segments++;
    }
    used = (sc.used + PAGE - 1) / PAGE * PAGE;
    if (alloc > used) {
        x->r->reclaimable += alloc - used;
    }
    return 0;
}

static int cmp_closed(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first ? 1 : 0;
}

static int cmp_open(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->counter < y->counter ? -1 : x->counter > y->counter ? 1 : 0;
}

static int cmp_snap(const void *a, const void *b)
{
    const struct snap *x = a, *y = b;
    if (x->term != y->term) {
        return x->term < y->term ? -1 : 1;
    }
    if (x->index != y->index) {
        return x->index < y->index ? -1 : 1;
    }
    return x->stamp < y->stamp ? -1 : x->stamp > y->stamp ? 1 : 0;
}

/* ---- snapshots ----------------------------------------------------------- */

/* A snapshot's .meta and its data. *skip when raft ignores it (no data
 * file: a crash while it was being written). */
static int snapshot_check(struct ctx *x, struct snap *s, bool *skip)
{
    char data[FILENAME_MAX_LEN];
    struct stat st;
    size_t len = 0, conf;
    const uint8_t *payload;
    size_t plen;
    char why[128];
    uint32_t crc;
    int rv;
    *skip = false;
    snprintf(data, sizeof(data), "%.*s", (int)(strlen(s->name) - 5), s->name);
    rv = read_file(x, s->name, &len, &st);
    if (rv == MISSING) {
        *skip = true;
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (len < META_HEADER) {
        return damaged(x, s->name, "truncated (%zu bytes)", len);
    }
    if (le64(x->buf) != FORMAT) {
        return damaged(x, s->name, "unknown format");
    }
    conf = (size_t)le64(x->buf + 24);
    if (conf == 0 || conf > META_CONF_MAX || len != META_HEADER + conf) {
        return damaged(x, s->name, "the configuration length does not match");
    }
    crc = lp2p__crc32_raft(0, x->buf + 16, 16);
    crc = lp2p__crc32_raft(crc, x->buf + META_HEADER, conf);
    if (le64(x->buf + 8) != crc) {
        return damaged(x, s->name, "checksum mismatch");
    }
    rv = read_file(x, data, &len, &st);
    if (rv == MISSING) {
        *skip = true; /* written after the .meta: it never completed */
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (len == 0) {
        return damaged(x, data, "empty");
    }
    if (p2praft__snapshot_is_framed(x->buf, len)) {
        rv = p2praft__snapshot_unframe(x->buf, len, &payload, &plen, why,
                                       sizeof(why));
        if (rv == LP2P_ECORRUPT) {
            return damaged(x, data, "%s", why);
        }
        if (rv != 0) {
            return rv;
        }
    } else {
        x->r->unframed++;
    }
    return 0;
}

/* ---- the whole directory ------------------------------------------------- */

/* Indexes and terms across files, mirroring what raft_uv will load. */
static int links_check(struct ctx *x, const struct snap *newest,
                       uint64_t open_entries)
{
    uint64_t snap_index = newest != NULL ? newest->index : 0;
    uint64_t start, total, prev_term = 0;
    size_t i, run;
    for (i = 1; i < x->n_closed; i++) {
        if (x->closed[i].first <= x->closed[i - 1].last) {
            return damaged(x, x->closed[i].name,
                           "overlaps %s (an interrupted truncation?)",
                           x->closed[i - 1].name);
        }
    }
    if (newest != NULL && newest->term > x->r->term) {
        return damaged(x, newest->name, "its term %llu is above the current "
                       "term %llu (metadata is stale)",
                       (unsigned long long)newest->term,
                       (unsigned long long)x->r->term);
    }
    /* raft_uv loads the contiguous run of closed segments that ends with
     * the newest one, then the open segments. */
    run = x->n_closed;
    if (run > 0) {
        while (run > 1 &&
               x->closed[run - 2].last + 1 == x->closed[run - 1].first) {
            run--;
        }
        run--; /* index of the run's first segment */
        if (snap_index > 0 && x->closed[x->n_closed - 1].last < snap_index &&
            x->n_open == 0) {
            run = x->n_closed; /* all behind the snapshot: unused */
        }
    }
    if (run < x->n_closed) {
        uint64_t first = x->closed[run].first, from = snap_index + 1;
        if (run > 0 && x->closed[run - 1].last + 1 > from) {
            from = x->closed[run - 1].last + 1;
        }
        if (first > snap_index + 1) {
            return damaged(x, x->closed[run].name,
                           "entries %llu to %llu are missing (%s)",
                           (unsigned long long)from,
                           (unsigned long long)(first - 1),
                           snap_index > 0 ? "not in the newest snapshot"
                                          : "there is no snapshot");
        }
        start = first;
    } else {
        start = snap_index + 1;
    }
    total = open_entries;
    for (i = run; i < x->n_closed; i++) {
        const struct seg *g = &x->closed[i];
        if (g->term_first < prev_term) {
            return damaged(x, g->name, "its entries' terms go backwards from "
                           "the previous segment");
        }
        prev_term = g->term_last;
        total += g->entries;
    }
    for (i = 0; i < x->n_open; i++) {
        const struct seg *g = &x->open[i];
        if (g->entries == 0) {
            continue;
        }
        if (g->term_first < prev_term) {
            return damaged(x, g->name, "its entries' terms go backwards from "
                           "the previous segment");
        }
        prev_term = g->term_last;
    }
    if (prev_term > x->r->term) {
        return damaged(x, x->m[0].present ? "metadata1" : "metadata2",
                       "the current term %llu is below the term %llu of "
                       "logged entries (stale metadata)",
                       (unsigned long long)x->r->term,
                       (unsigned long long)prev_term);
    }
    if (total > 0 && snap_index > 0 && start + total - 1 < snap_index) {
        return damaged(x, x->n_open > 0 ? x->open[x->n_open - 1].name
                                        : x->closed[x->n_closed - 1].name,
                       "the log ends at entry %llu, before the newest "
                       "snapshot at %llu",
                       (unsigned long long)(start + total - 1),
                       (unsigned long long)snap_index);
    }
    x->r->entries = total;
    x->r->last_index = total > 0 ? start + total - 1 : snap_index;
    return 0;
}

static int check(struct ctx *x)
{
    const struct snap *newest = NULL;
    const char *torn_name = NULL, *torn_why = NULL;
    size_t torn_at = 0, i;
    uint64_t open_entries = 0;
    int rv = list(x);
    if (rv != 0) {
        return rv;
    }
    if (x->corrupt[0] != '\0') {
        return damaged(x, x->corrupt,
                       "libraft set this segment aside at an earlier start and "
                       "went on without its entries, so this node's log is "
                       "incomplete");
    }
    for (i = 0; i < 2 && rv == 0; i++) {
        rv = metadata_read(x, (int)i);
    }
    if (x->n_closed > 1) {
        qsort(x->closed, x->n_closed, sizeof(*x->closed), cmp_closed);
    }
    if (x->n_open > 1) {
        qsort(x->open, x->n_open, sizeof(*x->open), cmp_open);
    }
    if (x->n_snaps > 1) {
        qsort(x->snaps, x->n_snaps, sizeof(*x->snaps), cmp_snap);
    }
    for (i = 0; i < x->n_closed && rv == 0; i++) {
        rv = closed_check(x, &x->closed[i]);
    }
    for (i = 0; i < x->n_open && rv == 0; i++) {
        rv = open_check(x, &x->open[i], &torn_name, &torn_at, &torn_why);
        open_entries += x->open[i].entries;
    }
    for (i = 0; i < x->n_snaps && rv == 0; i++) {
        bool skip;
        rv = snapshot_check(x, &x->snaps[i], &skip);
        if (rv == 0 && !skip) {
            newest = &x->snaps[i];
            x->r->snapshots++;
        }
    }
    if (rv != 0) {
        return rv;
    }
    x->r->has_log = x->r->segments > 0 || x->r->snapshots > 0;
    x->r->has_state = x->r->has_log;
    rv = metadata_check(x);
    if (rv == 0) {
        rv = links_check(x, newest, open_entries);
    }
    return rv;
}

int p2praft__disk_check(const char *dir, struct p2praft__disk_report *r,
                        char *errmsg, size_t errmsg_len)
{
    struct ctx x;
    int rv;
    memset(r, 0, sizeof(*r));
    memset(&x, 0, sizeof(x));
    x.dir = dir;
    x.err = errmsg;
    x.errlen = errmsg_len;
    x.r = r;
    rv = check(&x);
    if (rv == LP2P_ENOMEM && errmsg != NULL && errmsg_len > 0) {
        snprintf(errmsg, errmsg_len, "out of memory checking %s", dir);
    }
    lp2p__free(x.buf);
    lp2p__free(x.closed);
    lp2p__free(x.open);
    lp2p__free(x.snaps);
    return rv;
}
