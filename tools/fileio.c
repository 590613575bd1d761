/* Whole-file reads and atomic writes (see fileio.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

int cli_read_file(const char *path, uint8_t **data, size_t *len, char *err,
                  size_t errlen)
{
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    size_t cap = 65536, n = 0;
    uint8_t *b;
    struct stat st;
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    /* A device never ends (/dev/zero, /dev/urandom): refused rather than
     * read until memory runs out. Pipes are read ("-", <(...)). */
    if (fd != 0 && fstat(fd, &st) == 0 &&
        (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
        snprintf(err, errlen, "%s is a device, not a file", path);
        close(fd);
        return -1;
    }
    b = malloc(cap + 1);
    for (;;) {
        ssize_t k;
        if (b == NULL) {
            snprintf(err, errlen, "out of memory reading %s", path);
            break;
        }
        if (n == cap) {
            uint8_t *nb = cap > SIZE_MAX / 4 ? NULL : realloc(b, 2 * cap + 1);
            if (nb == NULL) {
                free(b);
                b = NULL;
                continue;
            }
            b = nb;
            cap *= 2;
        }
        k = read(fd, b + n, cap - n);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path,
                     strerror(errno));
            free(b);
            b = NULL;
            break;
        }
        if (k == 0) {
            b[n] = '\0';
            *data = b;
            *len = n;
            break;
        }
        n += (size_t)k;
    }
    if (fd != 0) {
        close(fd);
    }
    return b != NULL ? 0 : -1;
}

int cli_write_atomic(const char *path, const void *data, size_t len,
                     char *err, size_t errlen)
{
    char tmp[4096], dir[4096];
    const uint8_t *p = data;
    size_t off = 0;
    int fd, dfd;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "path too long: %s", path);
        return -1;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file beside %s: %s", path,
                 strerror(errno));
        return -1;
    }
    while (off < len) {
        ssize_t k = write(fd, p + off, len - off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            snprintf(err, errlen, "cannot write %s: %s", path,
                     k < 0 ? strerror(errno) : "no progress");
            goto fail;
        }
        off += (size_t)k;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s (fsync): %s", path,
                 strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "cannot write %s (close): %s", path,
                 strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path,
                 strerror(errno));
        goto fail;
    }
    /* The rename is durable once the directory is. */
    snprintf(dir, sizeof(dir), "%s", path);
    dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
fail:
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    return -1;
}
