/* Claiming a unix socket path (util/sockpath.h): only a stale socket is
 * ever removed; a regular file, a directory and a live socket stop the
 * claim and stay as they were; on close only the socket we bound goes. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lp2p.h"
#include "test.h"
#include "util/sockpath.h"

/* A listening (listen = true) or bound-then-closed socket at path. */
static int sock_at(const char *path, bool listen_on)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ASSERT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    if (listen_on) {
        ASSERT(listen(fd, 4) == 0);
        return fd;
    }
    close(fd); /* the file stays: a stale socket */
    return -1;
}

static bool exists(const char *path, mode_t type)
{
    struct stat st;
    return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

TEST(sockpath, only_stale_sockets_go)
{
    char dir[] = "/tmp/p2praft-sockpath-XXXXXX", path[128], path2[128];
    char err[256];
    struct lp2p__sockpath sp = {0};
    int fd, live, other;
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/api.sock", dir);
    snprintf(path2, sizeof(path2), "%s/other.sock", dir);

    /* nothing there */
    ASSERT_OK(lp2p__sockpath_prepare(path, err, sizeof(err)));

    /* a regular file: refused, untouched */
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    ASSERT(fd >= 0 && write(fd, "keep", 4) == 4);
    close(fd);
    ASSERT_ERR(lp2p__sockpath_prepare(path, err, sizeof(err)), LP2P_EEXIST);
    ASSERT(strstr(err, "not a socket") != NULL);
    ASSERT(exists(path, S_IFREG));
    unlink(path);

    /* a directory */
    ASSERT(mkdir(path, 0700) == 0);
    ASSERT_ERR(lp2p__sockpath_prepare(path, err, sizeof(err)), LP2P_EEXIST);
    ASSERT(exists(path, S_IFDIR));
    rmdir(path);

    /* a live socket: another process serves it */
    live = sock_at(path, true);
    ASSERT_ERR(lp2p__sockpath_prepare(path, err, sizeof(err)), LP2P_EBUSY);
    ASSERT(strstr(err, "live") != NULL);
    ASSERT(exists(path, S_IFSOCK));
    close(live);

    /* now stale (nobody listens): removed */
    ASSERT_OK(lp2p__sockpath_prepare(path, err, sizeof(err)));
    ASSERT(!exists(path, S_IFSOCK));

    /* ours: removed on close only while it is still ours */
    live = sock_at(path, true);
    lp2p__sockpath_bound(&sp, path);
    ASSERT(sp.bound);
    other = sock_at(path2, true); /* someone else's, put in its place */
    ASSERT(rename(path2, path) == 0);
    lp2p__sockpath_remove(&sp, path);
    ASSERT(exists(path, S_IFSOCK)); /* not ours: left */
    ASSERT(!sp.bound);
    close(other);
    close(live);
    unlink(path);
    live = sock_at(path, true);
    lp2p__sockpath_bound(&sp, path);
    fd = open(path2, O_WRONLY | O_CREAT, 0600); /* a file in its place */
    ASSERT(fd >= 0);
    close(fd);
    ASSERT(rename(path2, path) == 0);
    lp2p__sockpath_remove(&sp, path);
    ASSERT(exists(path, S_IFREG));
    unlink(path);
    lp2p__sockpath_bound(&sp, path); /* nothing there: nothing to forget */
    ASSERT(!sp.bound);
    close(live);
    live = sock_at(path, true); /* ours, still there: removed */
    lp2p__sockpath_bound(&sp, path);
    lp2p__sockpath_remove(&sp, path);
    ASSERT(!exists(path, S_IFSOCK));
    close(live);
    rmdir(dir);
}
