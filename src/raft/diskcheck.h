/*
 * Validate the raft files of a data directory before raft loads them, so
 * that damaged storage stops a node instead of being skipped in silence.
 * libraft 0.22 renames a segment that fails its checksum to corrupt-*
 * and starts without its entries, treats a missing metadata file as a
 * fresh term and vote, and skips a snapshot whose metadata does not check
 * out. This check refuses all of that, names the file and says how to
 * recover. It reads the files only; raft_uv then loads them as before.
 *
 * One case is not damage: the end of the last open segment written before
 * a crash. A batch of entries whose write never completed (part of it
 * reads as zeros, nothing follows it) was never acknowledged; raft
 * truncates it, and so does this check (reported in `torn`).
 */
#ifndef P2PRAFT_RAFT_DISKCHECK_H
#define P2PRAFT_RAFT_DISKCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* raft_uv's size of an open segment (its default, which p2praft keeps):
 * the space one more segment needs. */
#define P2PRAFT__SEGMENT_SIZE (8u * 1024 * 1024)

/* What the check found. */
struct p2praft__disk_report {
    bool has_state;        /* a term, entries or a snapshot: raft would
                            * refuse to bootstrap */
    bool has_log;          /* entries or a snapshot: a configuration */
    uint64_t term;         /* current term (metadata), 0 if none */
    uint64_t entries;      /* entries in the segments raft will load */
    uint64_t last_index;   /* index of the last entry or snapshot */
    unsigned segments;     /* segment files with data */
    unsigned snapshots;    /* complete snapshots */
    unsigned unframed;     /* of which without p2praft's checksum */
    uint64_t bytes;        /* bytes read */
    uint64_t reclaimable;  /* preallocated space raft frees when loading */
    char torn[320];        /* "" or which torn write raft will truncate */
};

/* One segment file's contents, as the check reads them. */
struct p2praft__seg_scan {
    uint64_t entries;         /* in the sound batches */
    uint64_t term_first, term_last;
    size_t used;              /* bytes of format and sound batches; on
                               * failure, where the bad batch starts */
    size_t nonzero_end;       /* just past the last non-zero byte */
    bool torn;                /* open: it ends in a torn write at `used` */
    const char *why;          /* refused or torn: what is wrong (static) */
    unsigned batch;           /* ... in which batch, from 1 */
};

/*
 * Scan a segment's bytes (borrowed): a closed one must be batches up to its
 * very end; an open one is batches then zeros, or all zeros, or ends in a
 * torn write (sc->torn: only the last open segment with data may, which
 * the caller judges). 0, or LP2P_ECORRUPT with why, batch and used saying
 * where. The check's core, without I/O.
 */
int p2praft__segment_scan(const uint8_t *b, size_t len, bool open,
                          struct p2praft__seg_scan *sc);

/*
 * Check the raft files in `dir` (borrowed), which the caller has locked.
 * Files that are not raft's are ignored. Returns 0 and fills *r;
 * LP2P_ECORRUPT when a file is damaged or missing (errmsg names it, says
 * what is wrong and how to recover); LP2P_EIO when a file cannot be read;
 * LP2P_ENOMEM.
 */
int p2praft__disk_check(const char *dir, struct p2praft__disk_report *r,
                        char *errmsg, size_t errmsg_len);

#endif
