/*
 * p2praft restore --data-dir DIR [--member ID]... FILE: offline, seed the
 * data directory of a node of a new cluster from a backup (p2praft
 * snapshot save). The backup is checked whole first; a directory that
 * holds raft state, or that a running node holds, is refused. Exit status
 * 0, 2 (usage), 5 (refused or failed: the directory is left as it was).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fileio.h"
#include "kvclient.h"

#define MAX_MEMBERS 64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: p2praft restore --data-dir DIR [--member PEERID|MA]... "
            "FILE\n"
            "Offline: seed DIR (new or empty) from the backup FILE for a "
            "new cluster. The\nnode's state starts as the backup's, at its "
            "raft index and term. Its members\nare the backup's (restore the "
            "same FILE on each member, with the same keys),\nor the --member "
            "peer IDs (a multiaddr's /p2p/ part is taken). Start the node\n"
            "on DIR without --bootstrap. Refuses a damaged or truncated "
            "FILE, a DIR\nwith raft state, and a DIR a running node holds. "
            "Exit status 5 when\nrefused or failed (DIR is then left as it "
            "was).\n");
}

static int run(int argc, char **argv)
{
    const char *dir = NULL, *file = NULL, *members[MAX_MEMBERS];
    struct p2praft_backup_info info;
    size_t n_members = 0, len = 0, i;
    uint8_t *data = NULL;
    char err[600];
    int a, rv;

    for (a = 1; a < argc; a++) {
        const char *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[a], "--data-dir") == 0 && v != NULL) {
            dir = v;
            a++;
        } else if (strcmp(argv[a], "--member") == 0 && v != NULL) {
            const char *p = strstr(v, "/p2p/");
            if (n_members == MAX_MEMBERS) {
                fprintf(stderr, "p2praft restore: at most %d --member\n",
                        MAX_MEMBERS);
                return EXIT_USAGE;
            }
            members[n_members++] = p != NULL ? p + 5 : v;
            a++;
        } else if (argv[a][0] == '-' && argv[a][1] != '\0') {
            fprintf(stderr, "p2praft restore: unknown argument '%s'\n",
                    argv[a]);
            usage(stderr);
            return EXIT_USAGE;
        } else if (file == NULL) {
            file = argv[a];
        } else {
            fprintf(stderr, "p2praft restore: one FILE only\n");
            return EXIT_USAGE;
        }
    }
    if (dir == NULL || file == NULL) {
        fprintf(stderr, "p2praft restore: --data-dir DIR and FILE are "
                        "required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (cli_read_file(file, &data, &len, err, sizeof(err)) != 0) {
        fprintf(stderr, "p2praft restore: %s\n", err);
        return EXIT_FAILED;
    }
    rv = p2praft_backup_check(data, len, &info, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "p2praft restore: %s is refused: %s\n", file, err);
        free(data);
        return EXIT_FAILED;
    }
    rv = p2praft_restore(dir, data, len, members, n_members, err,
                         sizeof(err));
    free(data);
    if (rv != 0) {
        fprintf(stderr, "p2praft restore: %s\n",
                err[0] != '\0' ? err : p2praft_strerror(rv));
        return EXIT_FAILED;
    }
    printf("restored %s from %s: index %llu, term %llu, %llu keys\n", dir,
           file, (unsigned long long)info.index,
           (unsigned long long)info.term, (unsigned long long)info.keys);
    if (n_members == 0) {
        for (i = 0; i < info.n_members && i < P2PRAFT_BACKUP_MEMBERS_MAX;
             i++) {
            printf("member: %s\n", info.members[i]);
        }
    } else {
        for (i = 0; i < n_members; i++) {
            printf("member: %s\n", members[i]);
        }
    }
    printf("start the node on %s without --bootstrap\n", dir);
    return fflush(stdout) == 0 ? 0 : EXIT_FAILED;
}

const struct cli_command cli_cmd_restore = {
    "restore", "offline: seed a new cluster's data directory from a backup",
    run};
