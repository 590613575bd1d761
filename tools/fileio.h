/* Whole-file reads and atomic writes for the operator commands
 * (snapshot save, restore, state export/import). */
#ifndef P2PRAFT_TOOLS_FILEIO_H
#define P2PRAFT_TOOLS_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Read all of `path` ("-": stdin) into *data (malloc; a NUL follows, not
 * counted in *len). 0, or -1 with a sentence in err. */
int cli_read_file(const char *path, uint8_t **data, size_t *len, char *err,
                  size_t errlen);

/* Write `data` to `path` atomically: a temporary file beside it, written
 * whole, fsync'ed, renamed over `path`, and the directory fsync'ed. On
 * any error the temporary file is removed and `path` is left as it was:
 * never a partial file. 0, or -1 with a sentence in err. */
int cli_write_atomic(const char *path, const void *data, size_t len,
                     char *err, size_t errlen);

#endif
