/*
 * The raft file check (raft/diskcheck.h) on directories written here byte
 * by byte in raft_uv's format, so that each rule is hit exactly: sound
 * directories pass; a changed byte in any synced file, a missing or stale
 * metadata file, a gap in the log, a corrupt-* file and a damaged snapshot
 * are refused with the file's name and the way to recover; the torn tail
 * of the last open segment is let through (raft truncates it), and only
 * there. test/integration/test_datadir.c runs the same check on files that
 * libraft itself wrote.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lp2p.h"
#include "raft/diskcheck.h"
#include "raft/snapshot.h"
#include "test.h"
#include "util/crc32.h"

#define SEG_SIZE (64 * 1024) /* preallocated size of our open segments */

static char dir[64];
static char err[1024];
static struct p2praft__disk_report rep;

static void put64(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put32(uint8_t *p, uint32_t v)
{
    int i;
    for (i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void write_file(const char *name, const uint8_t *p, size_t len)
{
    char path[256];
    int fd;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT(fd >= 0);
    ASSERT(write(fd, p, len) == (ssize_t)len);
    close(fd);
}

static void remove_file(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ASSERT(unlink(path) == 0);
}

/* Flip one bit of byte `off` of a file. */
static void flip(const char *name, size_t off)
{
    char path[256];
    uint8_t b;
    int fd;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    ASSERT(pread(fd, &b, 1, (off_t)off) == 1);
    b ^= 0x10;
    ASSERT(pwrite(fd, &b, 1, (off_t)off) == 1);
    close(fd);
}

static void metadata(int which, uint64_t version, uint64_t term)
{
    uint8_t m[32];
    put64(m, 1);
    put64(m + 8, version);
    put64(m + 16, term);
    put64(m + 24, 0);
    write_file(which == 1 ? "metadata1" : "metadata2", m, sizeof(m));
}

/* A segment being built: format, then batches. */
struct seg {
    uint8_t b[SEG_SIZE];
    size_t len;
};

static void seg_init(struct seg *s)
{
    memset(s->b, 0, sizeof(s->b));
    put64(s->b, 1);
    s->len = 8;
}

/* One batch of n entries of `len` bytes each (multiple of 8), filled with
 * `fill`, term `term`; returns the batch's offset. */
static size_t batch(struct seg *s, unsigned n, uint64_t term, uint32_t len,
                    uint8_t fill)
{
    size_t start = s->len, hdr = 8 + 16 * (size_t)n, i;
    uint8_t *p = s->b + start;
    ASSERT(start + 8 + hdr + (size_t)n * len <= sizeof(s->b));
    put64(p + 8, n);
    for (i = 0; i < n; i++) {
        uint8_t *slot = p + 16 + 16 * i;
        put64(slot, term);
        slot[8] = 1; /* RAFT_COMMAND */
        put32(slot + 12, len);
    }
    memset(p + 8 + hdr, fill, (size_t)n * len);
    put32(p, lp2p__crc32_raft(0, p + 8, hdr));
    put32(p + 4, lp2p__crc32_raft(0, p + 8 + hdr, (size_t)n * len));
    s->len = start + 8 + hdr + (size_t)n * len;
    return start;
}

/* A closed segment first..last, one entry per batch. */
static void closed(uint64_t first, uint64_t last, uint64_t term)
{
    struct seg s;
    char name[64];
    uint64_t i;
    seg_init(&s);
    for (i = first; i <= last; i++) {
        batch(&s, 1, term, 16, (uint8_t)(0x40 + i));
    }
    snprintf(name, sizeof(name), "%016llu-%016llu", (unsigned long long)first,
             (unsigned long long)last);
    write_file(name, s.b, s.len);
}

/* An open segment as raft leaves it: preallocated, zeros after the data. */
static void open_seg(unsigned counter, const struct seg *s)
{
    char name[32];
    snprintf(name, sizeof(name), "open-%u", counter);
    write_file(name, s->b, SEG_SIZE);
}

/* snapshot-term-index-1 and its .meta; the data framed unless bare. */
static void snapshot(uint64_t term, uint64_t index, bool bare)
{
    uint8_t meta[32 + 16], data[P2PRAFT__SNAP_HEADER + 40];
    char name[96];
    uint32_t crc;
    memset(meta, 0, sizeof(meta));
    put64(meta, 1);
    put64(meta + 16, 1);  /* configuration index */
    put64(meta + 24, 16); /* configuration length */
    memset(meta + 32, 0x33, 16);
    crc = lp2p__crc32_raft(0, meta + 16, 16);
    crc = lp2p__crc32_raft(crc, meta + 32, 16);
    put64(meta + 8, crc);
    snprintf(name, sizeof(name), "snapshot-%llu-%llu-1.meta",
             (unsigned long long)term, (unsigned long long)index);
    write_file(name, meta, sizeof(meta));
    memset(data + P2PRAFT__SNAP_HEADER, 0x81, 40);
    ASSERT_OK(p2praft__snapshot_header(data, data + P2PRAFT__SNAP_HEADER, 40));
    name[strlen(name) - 5] = '\0';
    if (bare) {
        write_file(name, data + P2PRAFT__SNAP_HEADER, 40);
    } else {
        write_file(name, data, sizeof(data));
    }
}

static void fresh_dir(void)
{
    char cmd[128];
    if (dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        ASSERT(system(cmd) == 0);
    }
    snprintf(dir, sizeof(dir), "/tmp/p2praft-diskcheck-XXXXXX");
    ASSERT(mkdtemp(dir) != NULL);
}

/* The last directory of a test goes too. */
static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ASSERT(system(cmd) == 0);
    dir[0] = '\0';
}

static int check(void)
{
    err[0] = '\0';
    return p2praft__disk_check(dir, &rep, err, sizeof(err));
}

/* Refused, naming `file` and the recovery. */
static void expect_damage(const char *file, const char *what)
{
    int rv = check();
    if (rv != LP2P_ECORRUPT || strstr(err, file) == NULL ||
        strstr(err, what) == NULL || strstr(err, "replace the node") == NULL ||
        strstr(err, "restore a backup") == NULL) {
        test__fail(__FILE__, __LINE__, "expected %s (%s) refused, got %d: %s",
                   file, what, rv, err);
    }
}

/* bootstrap entry, 2..10 closed, 11..20 in open-1, open-2 prepared */
static void sound_dir(void)
{
    struct seg s;
    unsigned i;
    fresh_dir();
    metadata(1, 3, 2);
    metadata(2, 2, 2);
    closed(1, 1, 1);
    closed(2, 10, 1);
    seg_init(&s);
    for (i = 11; i <= 20; i++) {
        batch(&s, 1, 2, 24, (uint8_t)i);
    }
    open_seg(1, &s);
    seg_init(&s);
    memset(s.b, 0, sizeof(s.b));
    open_seg(2, &s); /* prepared, never written */
}

TEST(diskcheck, sound_and_empty)
{
    fresh_dir();
    ASSERT_OK(check());
    ASSERT(!rep.has_state && !rep.has_log);
    sound_dir();
    ASSERT_OK(check());
    ASSERT(rep.has_state && rep.has_log);
    ASSERT_EQ(rep.term, 2);
    ASSERT_EQ(rep.entries, 20);
    ASSERT_EQ(rep.last_index, 20);
    ASSERT_EQ(rep.segments, 3);
    ASSERT_STR_EQ(rep.torn, "");
    /* other files are none of its business */
    write_file("p2praft.owner", (const uint8_t *)"x\n", 2);
    write_file("tmp-0000000000000001-0000000000000002",
               (const uint8_t *)"junk", 4);
    ASSERT_OK(check());
    cleanup();
}

TEST(diskcheck, any_changed_byte_of_a_closed_segment)
{
    /* 2..10: 9 batches of one 16-byte entry, 8 + 9 x 48 bytes */
    const char *name = "0000000000000002-0000000000000010";
    size_t size = 8 + 9 * 48, off;
    char path[256];
    for (off = 0; off < size; off++) {
        sound_dir();
        flip(name, off);
        expect_damage(name, "");
    }
    /* cut short, and a byte more */
    sound_dir();
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ASSERT(truncate(path, (off_t)size - 3) == 0);
    expect_damage(name, "");
    ASSERT(truncate(path, (off_t)size + 1) == 0);
    expect_damage(name, "");
    sound_dir();
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ASSERT(truncate(path, 0) == 0);
    expect_damage(name, "truncated");
    cleanup();
}

TEST(diskcheck, corrupt_files_set_aside_by_libraft)
{
    sound_dir();
    write_file("corrupt-1764561000000000000-0000000000000002-0000000000000010",
               (const uint8_t *)"x", 1);
    expect_damage("corrupt-1764561000000000000", "set this segment aside");
    cleanup();
}

TEST(diskcheck, metadata_missing_or_stale)
{
    sound_dir();
    remove_file("metadata1");
    expect_damage("metadata1", "missing");
    sound_dir();
    remove_file("metadata2");
    expect_damage("metadata2", "missing");
    sound_dir();
    remove_file("metadata1");
    remove_file("metadata2");
    expect_damage("metadata1", "term and vote are lost");
    sound_dir();
    metadata(1, 5, 2); /* metadata2 still at 2 */
    expect_damage("metadata2", "stale");
    sound_dir();
    metadata(2, 3, 2); /* an odd version in metadata2 */
    expect_damage("metadata2", "belongs in metadata1");
    sound_dir();
    metadata(1, 3, 1); /* the newer file's term went down */
    expect_damage("metadata1", "below");
    sound_dir();
    metadata(1, 3, 1);
    metadata(2, 2, 1); /* entries of term 2, current term 1 */
    expect_damage("metadata", "stale metadata");
    /* legitimate: a crash while metadata2 was being created (version 2) */
    fresh_dir();
    metadata(1, 1, 1);
    write_file("metadata2", (const uint8_t *)"\0\0\0", 3);
    closed(1, 1, 1);
    ASSERT_OK(check());
    /* but a short file anywhere else is damage */
    metadata(1, 3, 1);
    expect_damage("metadata2", "truncated");
    /* a brand-new directory: metadata alone, or nothing */
    fresh_dir();
    metadata(1, 1, 1);
    ASSERT_OK(check());
    ASSERT(rep.has_state && !rep.has_log);
    cleanup();
}

TEST(diskcheck, log_gaps)
{
    fresh_dir();
    metadata(1, 1, 1);
    closed(1, 1, 1);
    closed(5, 10, 1);
    expect_damage("0000000000000005-0000000000000010", "entries 2 to 4");
    /* a snapshot covers the gap */
    snapshot(1, 7, false);
    ASSERT_OK(check());
    ASSERT_EQ(rep.last_index, 10);
    ASSERT_EQ(rep.snapshots, 1);
    /* a newer snapshot leaves entries out */
    fresh_dir();
    metadata(1, 1, 1);
    snapshot(1, 20, false);
    closed(25, 30, 1);
    expect_damage("0000000000000025-0000000000000030", "entries 21 to 24");
    /* overlapping segments: an interrupted truncation */
    fresh_dir();
    metadata(1, 1, 1);
    closed(1, 5, 1);
    closed(3, 8, 1);
    expect_damage("0000000000000003-0000000000000008", "overlaps");
    /* the log ends before the snapshot */
    fresh_dir();
    metadata(1, 1, 1);
    snapshot(1, 20, false);
    closed(1, 5, 1);
    {
        struct seg s;
        seg_init(&s);
        batch(&s, 1, 1, 8, 1);
        open_seg(1, &s);
    }
    expect_damage("open-1", "before the newest snapshot");
    cleanup();
}

TEST(diskcheck, snapshots)
{
    char name[64];
    fresh_dir();
    metadata(1, 1, 3);
    snapshot(2, 50, false);
    snapshot(3, 90, false);
    ASSERT_OK(check());
    ASSERT_EQ(rep.snapshots, 2);
    ASSERT_EQ(rep.last_index, 90);
    /* a byte of the older one's state */
    snprintf(name, sizeof(name), "snapshot-2-50-1");
    flip(name, P2PRAFT__SNAP_HEADER + 3);
    expect_damage(name, "SHA-256");
    snapshot(2, 50, false);
    /* its metadata */
    flip("snapshot-3-90-1.meta", 40);
    expect_damage("snapshot-3-90-1.meta", "checksum");
    snapshot(3, 90, false);
    ASSERT_OK(check());
    /* a .meta whose data never got written: raft ignores it */
    remove_file("snapshot-3-90-1");
    ASSERT_OK(check());
    ASSERT_EQ(rep.snapshots, 1);
    /* an older p2praft's bare snapshot: loaded, unchecked */
    snapshot(3, 90, true);
    ASSERT_OK(check());
    ASSERT_EQ(rep.unframed, 1);
    /* a snapshot from a term the metadata never reached */
    snapshot(4, 95, false);
    expect_damage("snapshot-4-95-1.meta", "above the current term");
    cleanup();
}

/* open-1: batches of 1 entry of 440 bytes (so that the next batch starts
 * 32 bytes before a 512-byte sector), then a batch of 3 entries of 1000
 * bytes. Returns the last batch's offset. */
static size_t torn_setup(struct seg *s)
{
    fresh_dir();
    metadata(1, 1, 1);
    closed(1, 1, 1);
    seg_init(s);
    batch(s, 1, 1, 440, 0x11); /* 8 + 472 = 480 */
    return batch(s, 3, 1, 1000, 0xab);
}

TEST(diskcheck, torn_tail_of_the_last_open_segment)
{
    struct seg s;
    size_t b = torn_setup(&s);
    size_t end = s.len;
    ASSERT_EQ(b, 480);
    open_seg(1, &s);
    ASSERT_OK(check());
    ASSERT_EQ(rep.entries, 1 + 1 + 3);

    /* the write stopped at a sector inside the data: truncated */
    memset(s.b + 2048, 0, sizeof(s.b) - 2048);
    open_seg(1, &s);
    ASSERT_OK(check());
    ASSERT(strstr(rep.torn, "open-1") != NULL);
    ASSERT_EQ(rep.entries, 1 + 1);

    /* ... inside the header (only its first slot written) */
    torn_setup(&s);
    memset(s.b + 512, 0, sizeof(s.b) - 512);
    open_seg(1, &s);
    ASSERT_OK(check());
    ASSERT(rep.torn[0] != '\0');

    /* the same with a garbage slot: damage, not a torn write */
    s.b[b + 16 + 8] = 9;
    open_seg(1, &s);
    expect_damage("open-1", "batch 2");

    /* written whole, then a byte changed: damage */
    torn_setup(&s);
    s.b[end - 100] ^= 1;
    open_seg(1, &s);
    expect_damage("open-1", "data checksum");

    /* a changed byte in an earlier batch, even of the last segment */
    torn_setup(&s);
    s.b[100] ^= 1;
    open_seg(1, &s);
    expect_damage("open-1", "batch 1");

    /* a torn batch followed by written data is no tail */
    torn_setup(&s);
    memset(s.b + 2048, 0, 512);
    open_seg(1, &s);
    expect_damage("open-1", "batch 2");

    /* the torn write is not the last one: a later segment holds data */
    torn_setup(&s);
    memset(s.b + 2048, 0, sizeof(s.b) - 2048);
    open_seg(1, &s);
    seg_init(&s);
    batch(&s, 1, 1, 8, 1);
    open_seg(2, &s);
    expect_damage("open-1", "later segments");

    /* garbage in the zeros after the last batch */
    torn_setup(&s);
    s.b[SEG_SIZE - 5] = 1;
    open_seg(1, &s);
    expect_damage("open-1", "");
    cleanup();
}
