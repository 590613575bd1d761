/* Claiming and releasing a unix socket path (see sockpath.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lp2p.h"
#include "util/err.h"
#include "util/sockpath.h"

/* Does a process accept connections on the socket at path? 1 yes, 0 no
 * (refused: stale, or gone), -1 cannot tell (errno). */
static int listening(const char *path)
{
    struct sockaddr_un sa;
    int fd, rv, e;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    rv = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    e = errno;
    close(fd);
    if (rv == 0 || e == EAGAIN || e == EINPROGRESS) {
        return 1; /* accepted, or its backlog is full: alive */
    }
    if (e == ECONNREFUSED || e == ENOENT) {
        return 0;
    }
    errno = e;
    return -1;
}

int lp2p__sockpath_prepare(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int live;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) {
            return 0;
        }
        lp2p__errmsg_set(err, errlen, "cannot inspect %s: %s", path,
                         strerror(errno));
        return LP2P_EEXIST;
    }
    if (!S_ISSOCK(st.st_mode)) {
        lp2p__errmsg_set(err, errlen,
                         "%s exists and is not a socket: it was left alone; "
                         "choose another --api path",
                         path);
        return LP2P_EEXIST;
    }
    live = listening(path);
    if (live == 1) {
        lp2p__errmsg_set(err, errlen,
                         "%s is the live socket of another process (another "
                         "node?): choose another --api path",
                         path);
        return LP2P_EBUSY;
    }
    if (live < 0) {
        lp2p__errmsg_set(err, errlen,
                         "cannot tell whether the socket %s is in use (%s): "
                         "it was left alone",
                         path, strerror(errno));
        return LP2P_EEXIST;
    }
    /* Nobody listens: a socket left by a process that died. */
    if (unlink(path) != 0 && errno != ENOENT) {
        lp2p__errmsg_set(err, errlen, "cannot remove the stale socket %s: %s",
                         path, strerror(errno));
        return LP2P_EEXIST;
    }
    return 0;
}

void lp2p__sockpath_bound(struct lp2p__sockpath *s, const char *path)
{
    struct stat st;
    s->bound = lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
    if (s->bound) {
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        s->ctime = st.st_ctim;
    }
}

void lp2p__sockpath_remove(struct lp2p__sockpath *s, const char *path)
{
    struct stat st;
    if (s->bound && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == s->dev && st.st_ino == s->ino &&
        st.st_ctim.tv_sec == s->ctime.tv_sec &&
        st.st_ctim.tv_nsec == s->ctime.tv_nsec) {
        unlink(path);
    }
    s->bound = false;
}
