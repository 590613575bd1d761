/*
 * The data directory before raft (see datadir.h).
 *
 * The lock is an flock(2) on p2praft.lock, held through one open file
 * description for the node's whole life: a second process (or a second
 * node in the same process) fails to take it and reads the holder's PID
 * from the file. The kernel drops the lock when the holder dies, so a
 * kill -9 leaves nothing to clean up; the file itself stays.
 *
 * The owner file holds the peer ID that bootstrapped the directory, one
 * line, written to a temporary name, synced and renamed, so a crash never
 * leaves half an owner.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lp2p.h"
#include "p2praft.h"
#include "raft/datadir.h"
#include "util/err.h"
#include "util/log.h"

#define MODULE "node"

void p2praft__datadir_init(struct p2praft__datadir *d)
{
    d->lock_fd = -1;
    d->owner_pending = false;
}

void p2praft__datadir_close(struct p2praft__datadir *d)
{
    if (d->lock_fd >= 0) {
        close(d->lock_fd); /* drops the flock */
        d->lock_fd = -1;
    }
}

static void path_of(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* The PID written in the lock file, or 0. */
static long holder_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

int p2praft__datadir_lock(struct p2praft__datadir *d, const char *dir,
                          bool create, char *errmsg, size_t errmsg_len)
{
    char path[4096], pid[32];
    struct stat st;
    bool writable = true;
    int fd, n;
    if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        lp2p__errmsg_set(errmsg, errmsg_len, "cannot create %s: %s", dir,
                         strerror(errno));
        return LP2P_EIO;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        bool missing = errno == ENOENT;
        lp2p__errmsg_set(errmsg, errmsg_len, "%s is not a directory%s", dir,
                         missing ? " (it does not exist)" : "");
        return missing ? LP2P_ENOTFOUND : LP2P_EIO;
    }
    path_of(path, sizeof(path), dir, P2PRAFT__LOCK_FILE);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 && !create && (errno == EROFS || errno == EACCES)) {
        /* An offline check of a read-only copy (a backup): a lock taken
         * read-only still excludes nodes; with no lock file on a read-only
         * file system, no node can be writing there. */
        bool rofs = errno == EROFS;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && rofs) {
            return 0;
        }
        writable = false;
    }
    if (fd < 0) {
        lp2p__errmsg_set(errmsg, errmsg_len, "cannot open %s: %s", path,
                         strerror(errno));
        return LP2P_EIO;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        long holder;
        if (errno == EINTR) {
            continue;
        }
        if (errno != EWOULDBLOCK) {
            lp2p__errmsg_set(errmsg, errmsg_len, "cannot lock %s: %s", path,
                             strerror(errno));
            close(fd);
            return LP2P_EIO;
        }
        holder = holder_pid(fd);
        close(fd);
        if (holder > 0) {
            snprintf(pid, sizeof(pid), "process %ld", holder);
        } else {
            snprintf(pid, sizeof(pid), "another process");
        }
        lp2p__errmsg_set(errmsg, errmsg_len,
                         "data directory %s is in use by %s (it holds %s): "
                         "stop that node first, or choose another "
                         "--data-dir",
                         dir, pid, P2PRAFT__LOCK_FILE);
        return LP2P_EBUSY;
    }
    /* Ours: say who holds it, for the next one who tries. */
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (writable &&
        (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)) {
        LOG_WARN(MODULE, "cannot record the PID in %s: %s", path,
                 strerror(errno));
    }
    d->lock_fd = fd;
    return 0;
}

/* Warn, as etcd does, when group or others may read the directory. */
static void warn_mode(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        LOG_WARN(MODULE,
                 "data directory %s is accessible by group or others (mode "
                 "%04o); it holds the replicated data: chmod 700 %s",
                 dir, (unsigned)(st.st_mode & 07777), dir);
    }
}

/* The recorded owner into out ("" when there is none). */
static int owner_read(const char *dir, char *out, size_t cap, char *errmsg,
                      size_t errmsg_len)
{
    char path[4096];
    FILE *f;
    size_t n;
    path_of(path, sizeof(path), dir, P2PRAFT__OWNER_FILE);
    out[0] = '\0';
    f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        lp2p__errmsg_set(errmsg, errmsg_len, "cannot read %s: %s", path,
                         strerror(errno));
        return LP2P_EIO;
    }
    n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    if (out[0] == '\0') {
        lp2p__errmsg_set(errmsg, errmsg_len,
                         "%s is empty (it should name the peer ID that owns "
                         "the directory)",
                         path);
        return LP2P_ECORRUPT;
    }
    return 0;
}

static int owner_write(const char *dir, const char *self, char *errmsg,
                       size_t errmsg_len)
{
    char path[4096], tmp[4096], line[LP2P_PEER_ID_STRMAX + 2];
    int fd, n, rv = 0;
    path_of(path, sizeof(path), dir, P2PRAFT__OWNER_FILE);
    path_of(tmp, sizeof(tmp), dir, P2PRAFT__OWNER_FILE ".new");
    n = snprintf(line, sizeof(line), "%s\n", self);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
        rv = LP2P_EIO;
    }
    if (fd >= 0 && close(fd) != 0) {
        rv = LP2P_EIO;
    }
    if (rv == 0 && rename(tmp, path) != 0) {
        rv = LP2P_EIO;
    }
    if (rv == 0) {
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0) {
            rv = LP2P_EIO;
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    if (rv != 0) {
        lp2p__errmsg_set(errmsg, errmsg_len, "cannot record the owner in %s: %s",
                         path, strerror(errno));
        unlink(tmp);
    }
    return rv;
}

int p2praft__datadir_mark_removed(const char *dir, const char *line)
{
    char path[4096];
    size_t n;
    int fd, rv = 0;
    path_of(path, sizeof(path), dir, P2PRAFT__REMOVED_FILE);
    if (line == NULL) {
        return unlink(path) == 0 || errno == ENOENT ? 0 : LP2P_EIO;
    }
    n = strlen(line);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line, n) != (ssize_t)n || write(fd, "\n", 1) != 1 ||
        fsync(fd) != 0) {
        rv = LP2P_EIO;
    }
    if (fd >= 0 && close(fd) != 0) {
        rv = LP2P_EIO;
    }
    return rv;
}

/* A node removed from the cluster does not start again on its directory:
 * it would campaign, refused by every member, for ever. */
static int removed_check(const char *dir, char *errmsg, size_t errmsg_len)
{
    char path[4096], why[600];
    FILE *f;
    size_t n;
    path_of(path, sizeof(path), dir, P2PRAFT__REMOVED_FILE);
    f = fopen(path, "re");
    if (f == NULL) {
        return 0;
    }
    n = fread(why, 1, sizeof(why) - 1, f);
    fclose(f);
    why[n] = '\0';
    why[strcspn(why, "\n")] = '\0';
    lp2p__errmsg_set(errmsg, errmsg_len,
                     "%s: %s (recorded in %s). To serve again: remove the "
                     "data directory and start with --join after `p2praft "
                     "peers add` on a member",
                     dir, why[0] != '\0' ? why : "removed from the cluster",
                     path);
    return LP2P_EREMOVED;
}

/* Room for one more open segment once raft has trimmed the preallocated
 * ends of the open ones it finds. */
static int space_check(const char *dir, const struct p2praft__disk_report *r,
                       char *errmsg, size_t errmsg_len)
{
    struct statvfs vfs;
    uint64_t avail;
    if (statvfs(dir, &vfs) != 0) {
        return 0; /* unknown: raft will say */
    }
    avail = (uint64_t)vfs.f_bavail * vfs.f_frsize + r->reclaimable;
    if (avail < P2PRAFT__SEGMENT_SIZE) {
        lp2p__errmsg_set(errmsg, errmsg_len,
                         "%s has %llu KiB free, and raft needs %u KiB for its "
                         "next log segment: free some space or move the data "
                         "directory",
                         dir, (unsigned long long)(avail / 1024),
                         P2PRAFT__SEGMENT_SIZE / 1024);
        return LP2P_ENOSPACE;
    }
    return 0;
}

/* The recorded owner must be this node; *recorded says whether there is
 * one. */
static int owner_check(const struct p2praft__datadir_opts *o, bool *recorded,
                       char *errmsg, size_t errmsg_len)
{
    char owner[256];
    int rv = owner_read(o->dir, owner, sizeof(owner), errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    *recorded = owner[0] != '\0';
    if (*recorded && strcmp(owner, o->self) != 0) {
        lp2p__errmsg_set(errmsg, errmsg_len,
                         "%s belongs to peer %s, and this key is peer %s: "
                         "start it with the key that created it, or choose "
                         "another --data-dir",
                         o->dir, owner, o->self);
        return LP2P_EINVAL;
    }
    return 0;
}

/* --bootstrap against what the directory holds. */
static int bootstrap_check(const struct p2praft__datadir_opts *o,
                           const struct p2praft__disk_report *r, char *errmsg,
                           size_t errmsg_len)
{
    if (o->bootstrap && r->has_state) {
        if (!r->has_log) {
            lp2p__errmsg_set(errmsg, errmsg_len,
                             "%s holds a raft term but no log (an interrupted "
                             "bootstrap?): remove the directory to bootstrap "
                             "again",
                             o->dir);
        } else {
            lp2p__errmsg_set(errmsg, errmsg_len,
                             "%s already holds raft state (term %llu, log up "
                             "to index %llu): it was bootstrapped before; drop "
                             "--bootstrap to start from it",
                             o->dir, (unsigned long long)r->term,
                             (unsigned long long)r->last_index);
        }
        return LP2P_EEXIST;
    }
    if (!o->bootstrap && !o->join && !r->has_log) {
        lp2p__errmsg_set(errmsg, errmsg_len,
                         "%s holds no raft state: bootstrap the cluster on "
                         "first start (--bootstrap)",
                         o->dir);
        return LP2P_EINVAL;
    }
    return 0;
}

/* A memory-store node keeps its raft term, vote and log in the process:
 * a restart forgets them. Rejoining the running cluster under the same
 * identity could then grant a second vote in a term it already voted in
 * (two leaders in one term), or drop entries whose acknowledgement made
 * them committed (a committed write lost). Raft's safety needs that
 * state, so the node refuses: the owner record its first start wrote says
 * that this key ran here before. */
static int mem_check(const struct p2praft__datadir_opts *o, bool recorded,
                     const struct p2praft__disk_report *r, char *errmsg,
                     size_t errmsg_len)
{
    if (!o->mem || !recorded || r->has_state) {
        return 0;
    }
    lp2p__errmsg_set(errmsg, errmsg_len,
                     "%s: peer %s ran here before with --store mem, and its "
                     "raft term, vote and log went with that process; "
                     "rejoining its cluster with nothing could vote twice in "
                     "one term or lose acknowledged writes. Replace it: "
                     "'p2praft peers rm %s' on a member, 'peers add' it "
                     "back, then start it with --join on an empty "
                     "directory; or remove %s/%s only if every member "
                     "restarts empty (a new cluster)",
                     o->dir, o->self, o->self, o->dir, P2PRAFT__OWNER_FILE);
    return LP2P_EEXIST;
}

int p2praft__datadir_open(struct p2praft__datadir *d,
                          const struct p2praft__datadir_opts *o,
                          struct p2praft__disk_report *r, char *errmsg,
                          size_t errmsg_len)
{
    bool recorded = false;
    int rv = p2praft__datadir_lock(d, o->dir, true, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    warn_mode(o->dir);
    rv = removed_check(o->dir, errmsg, errmsg_len);
    if (rv == 0) {
        rv = p2praft__disk_check(o->dir, r, errmsg, errmsg_len);
    }
    if (rv == 0) {
        rv = owner_check(o, &recorded, errmsg, errmsg_len);
    }
    if (rv == 0) {
        rv = mem_check(o, recorded, r, errmsg, errmsg_len);
    }
    if (rv == 0) {
        rv = bootstrap_check(o, r, errmsg, errmsg_len);
    }
    if (rv == 0 && !o->mem) {
        rv = space_check(o->dir, r, errmsg, errmsg_len);
    }
    /* A first bootstrap records its owner now; state from before owners
     * waits until raft shows that this node is one of its members. */
    if (rv == 0 && !recorded) {
        d->owner_pending = r->has_state;
        if (!r->has_state) {
            rv = owner_write(o->dir, o->self, errmsg, errmsg_len);
        }
    }
    if (rv == 0 && r->torn[0] != '\0') {
        LOG_WARN(MODULE, "%s: %s", o->dir, r->torn);
    }
    if (rv != 0) {
        p2praft__datadir_close(d);
    }
    return rv;
}

int p2praft__datadir_record_owner(struct p2praft__datadir *d, const char *dir,
                                  const char *self, char *errmsg,
                                  size_t errmsg_len)
{
    int rv;
    if (!d->owner_pending) {
        return 0;
    }
    rv = owner_write(dir, self, errmsg, errmsg_len);
    if (rv == 0) {
        d->owner_pending = false;
        LOG_WARN(MODULE,
                 "%s had no owner record (made by an older p2praft): "
                 "recorded peer %s, a member of its cluster, as its owner in "
                 "%s",
                 dir, self, P2PRAFT__OWNER_FILE);
    }
    return rv;
}

int p2praft_datadir_check(const char *dir, struct p2praft_datadir_info *info,
                          char *errmsg, size_t errmsg_len)
{
    struct p2praft__datadir d;
    struct p2praft__disk_report r;
    int rv;
    if (dir == NULL) {
        return LP2P_EINVAL;
    }
    p2praft__datadir_init(&d);
    rv = p2praft__datadir_lock(&d, dir, false, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    rv = p2praft__disk_check(dir, &r, errmsg, errmsg_len);
    p2praft__datadir_close(&d);
    if (rv == 0 && info != NULL) {
        memset(info, 0, sizeof(*info));
        info->term = r.term;
        info->entries = r.entries;
        info->last_index = r.last_index;
        info->segments = r.segments;
        info->snapshots = r.snapshots;
        info->unframed = r.unframed;
        info->bytes_read = r.bytes;
        snprintf(info->torn, sizeof(info->torn), "%s", r.torn);
    }
    return rv;
}
