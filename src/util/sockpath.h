/*
 * A unix socket's path, claimed without harming what is already there: a
 * listener may remove only a socket that nobody listens on any more (left
 * by a process that died), and on close only the very socket it bound.
 */
#ifndef LP2P_UTIL_SOCKPATH_H
#define LP2P_UTIL_SOCKPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* Which file a bound socket is (to remove that one and no other): its
 * device, inode and change time, which a new file at the same path would
 * not all share even if it got the same inode number back. */
struct lp2p__sockpath {
    bool bound;
    dev_t dev;
    ino_t ino;
    struct timespec ctime;
};

/*
 * Make `path` (borrowed) free for bind(). Nothing there: 0. A socket that
 * refuses connections (stale): removed, 0. A socket that accepts them:
 * LP2P_EBUSY (another process serves it). Anything else (a regular file, a
 * directory...), or a socket that cannot be probed: LP2P_EEXIST. Nothing
 * but a stale socket is ever removed. `err` says why on failure.
 */
int lp2p__sockpath_prepare(const char *path, char *err, size_t errlen);

/* After a successful bind() on path (and any chmod of it): remember which
 * file it created. */
void lp2p__sockpath_bound(struct lp2p__sockpath *s, const char *path);

/* Remove path if it is still the socket recorded by _bound(); forget it. */
void lp2p__sockpath_remove(struct lp2p__sockpath *s, const char *path);

#endif
