/* p2praft check --data-dir DIR: verify a stopped node's data directory (or
 * a restored backup) as a node start would, without starting anything. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "p2praft.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: p2praft check --data-dir DIR\n"
            "Verify the data directory of a stopped node: every checksum of "
            "its log\nsegments and snapshots, its metadata, and that "
            "indexes and terms follow\non from file to file. Takes the "
            "directory's lock, as a node does.\n"
            "Exit 0: sound; 1: damaged, in use or unreadable (the message "
            "says which\nfile and what to do); 2: usage.\n");
}

static int run(int argc, char **argv)
{
    struct p2praft_datadir_info info;
    const char *dir = NULL;
    char err[512];
    struct timespec t0, t1;
    int a, rv;
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[a], "--data-dir") == 0 && a + 1 < argc) {
            dir = argv[++a];
        } else {
            fprintf(stderr, "p2praft check: unknown argument '%s'\n",
                    argv[a]);
            usage(stderr);
            return 2;
        }
    }
    if (dir == NULL) {
        usage(stderr);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rv = p2praft_datadir_check(dir, &info, err, sizeof(err));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rv != 0) {
        fprintf(stderr, "p2praft check: %s\n",
                err[0] != '\0' ? err : p2praft_strerror(rv));
        return 1;
    }
    printf("ok: term %llu, %llu entries up to index %llu, %u segments, %u "
           "snapshots; %.1f MiB checked in %.1f ms\n",
           (unsigned long long)info.term, (unsigned long long)info.entries,
           (unsigned long long)info.last_index, info.segments, info.snapshots,
           (double)info.bytes_read / (1024.0 * 1024.0),
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    if (info.torn[0] != '\0') {
        printf("note: %s\n", info.torn);
    }
    if (info.unframed > 0) {
        printf("note: %u snapshots carry no checksum (written by an older "
               "p2praft); they could not be verified\n",
               info.unframed);
    }
    return 0;
}

const struct cli_command cli_cmd_check = {
    "check", "verify a stopped node's data directory", run};
