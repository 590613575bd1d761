/*
 * p2praft kv / p2praft status: clients of a node's API socket, in the
 * frame format documented in p2praft.h (cluster node section), encoded and
 * decoded by the node's own codec (src/raft/api.c).
 *
 * Exit status (kv), one per kind of answer, so that a script can tell
 * "surely not applied" (retry is safe) from "outcome unknown" (it is not):
 *   0 ok
 *   1 not found (get, del) or compare-and-set mismatch
 *   2 usage
 *   3 outcome unknown: the node said so (UNKNOWN), or no answer came after
 *     the whole request was sent (--timeout-ms expired, connection lost,
 *     garbled answer), or a status this CLI does not know. A write may have
 *     been applied, or may still be.
 *   4 the node's API socket cannot be reached: nothing was sent
 *   5 failed, surely not applied (FAILED, BAD REQUEST)
 *   6 busy: the node refused the connection before reading it; not applied
 *   7 not caught up: a plain get on a node that has not caught up with a
 *     leader since it started (retry, or get --consistent)
 * `status` exits 0, 2, 4 (no answer) or 5.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "p2praft.h"
#include "raft/api.h"

#define EXIT_UNKNOWN 3
#define EXIT_UNREACHABLE 4
#define EXIT_FAILED 5
#define EXIT_BUSY 6
#define EXIT_NOTCAUGHTUP 7

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for `events` before `deadline`. 0 or -1. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        uint64_t now = now_ms();
        int rv;
        if (now >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        rv = poll(&p, 1, (int)(deadline - now));
        if (rv > 0) {
            return 0;
        }
        if (rv < 0 && errno != EINTR) {
            return -1;
        }
    }
}

static int io_all(int fd, uint8_t *p, size_t len, bool wr, uint64_t deadline)
{
    while (len > 0) {
        ssize_t n;
        if (wait_fd(fd, wr ? POLLOUT : POLLIN, deadline) != 0) {
            return -1;
        }
        n = wr ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = ECONNRESET;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read one response frame from fd into *resp (malloc'd, NUL-terminated)
 * and parse it into *a (pointing into *resp). 0 or -1 (errno). */
static int read_answer(int fd, uint64_t deadline, uint8_t **resp,
                       struct p2praft__api_resp *a)
{
    uint8_t hdr[P2PRAFT__API_PREFIX];
    uint32_t rlen = 0;
    if (io_all(fd, hdr, sizeof(hdr), false, deadline) != 0) {
        return -1;
    }
    if (p2praft__api_frame(hdr, sizeof(hdr), &rlen) == P2PRAFT_ETOOBIG ||
        rlen < P2PRAFT__API_RESP_PAYLOAD) {
        errno = EPROTO;
        return -1;
    }
    *resp = malloc(rlen + 1);
    if (*resp == NULL) {
        return -1;
    }
    errno = 0;
    if (io_all(fd, *resp, rlen, false, deadline) != 0 ||
        p2praft__api_response_parse(a, *resp, rlen) != 0) {
        free(*resp);
        *resp = NULL;
        if (errno == 0) {
            errno = EPROTO;
        }
        return -1;
    }
    (*resp)[rlen] = 0;
    return 0;
}

/*
 * Send one request frame to the node at `path`, read the response body into
 * *resp (malloc'd, NUL-terminated) and parse it into *a (pointing into
 * *resp). Returns 0; or prints why and returns EXIT_UNREACHABLE when the
 * whole request could not be sent (the node cannot have read it), or
 * `no_answer` when it was sent and no valid answer came back.
 */
static int call(const char *cmd, const char *path, const uint8_t *frame,
                size_t len, unsigned timeout_ms, int no_answer,
                uint8_t **resp, struct p2praft__api_resp *a)
{
    struct sockaddr_un sa;
    uint64_t deadline = now_ms() + timeout_ms;
    int fd, err;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "p2praft %s: API socket path too long: %s\n", cmd,
                path);
        return EXIT_UNREACHABLE;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr,
                "p2praft %s: cannot connect to the node's API socket %s: %s "
                "(is 'p2praft node' running with this --api or "
                "--data-dir?)\n",
                cmd, path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return EXIT_UNREACHABLE;
    }
    if (io_all(fd, (uint8_t *)frame, len, true, deadline) != 0) {
        /* Not all of it went: the node cannot have read the request. A
         * node over its connection limit answers BUSY without reading,
         * and that answer may be waiting. */
        err = errno;
        if (read_answer(fd, deadline, resp, a) == 0) {
            close(fd);
            return 0;
        }
        fprintf(stderr,
                "p2praft %s: could not send the request to %s: %s (nothing "
                "was done)\n",
                cmd, path, err == ETIMEDOUT ? "timed out" : strerror(err));
        close(fd);
        return EXIT_UNREACHABLE;
    }
    if (read_answer(fd, deadline, resp, a) != 0) {
        err = errno;
        fprintf(stderr, "p2praft %s: no valid answer from %s: %s%s\n", cmd,
                path, err == ETIMEDOUT ? "timed out" : strerror(err),
                no_answer == EXIT_UNKNOWN
                    ? " (the request was sent: the outcome is unknown)"
                    : "");
        close(fd);
        return no_answer;
    }
    close(fd);
    return 0;
}

static void kv_usage(FILE *out)
{
    fprintf(out,
            "usage: p2praft kv (--api PATH | --data-dir DIR) [--timeout-ms N] "
            "COMMAND\n"
            "  get [--consistent] KEY   print the value (consistent: through "
            "a read barrier)\n"
            "  set KEY VALUE\n"
            "  del KEY\n"
            "  cas KEY EXPECTED NEW     set KEY to NEW if it holds EXPECTED\n"
            "Writes go to any node; they are forwarded to the leader and "
            "return once this\nnode applied them. Exit status:\n"
            "  0 ok                 1 not found, or cas mismatch    2 usage\n"
            "  3 OUTCOME UNKNOWN: the node said so, or no answer came after "
            "the request\n    was sent (--timeout-ms, lost connection): "
            "a write may have been applied\n"
            "  4 the node's API socket cannot be reached (nothing sent)\n"
            "  5 failed, surely not applied     6 busy, not applied: "
            "try again\n"
            "  7 not caught up: the node has not heard from a leader since "
            "it started\n    (try again, or get --consistent)\n");
}

/* Parse --api/--data-dir/--timeout-ms; returns the index of the first
 * other argument, or -1 (usage printed). */
static int common_opts(const char *cmd, int argc, char **argv, char *path,
                       size_t pathlen, unsigned *timeout_ms)
{
    int a;
    path[0] = '\0';
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--api") == 0 && a + 1 < argc) {
            snprintf(path, pathlen, "%s", argv[++a]);
        } else if (strcmp(argv[a], "--data-dir") == 0 && a + 1 < argc) {
            snprintf(path, pathlen, "%s/api.sock", argv[++a]);
        } else if (strcmp(argv[a], "--timeout-ms") == 0 && a + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++a], &end, 10);
            if (*end != '\0' || v == 0 || v > 3600000) {
                fprintf(stderr, "p2praft %s: bad --timeout-ms\n", cmd);
                return -1;
            }
            *timeout_ms = (unsigned)v;
        } else {
            break;
        }
    }
    if (path[0] == '\0') {
        fprintf(stderr, "p2praft %s: --api PATH or --data-dir DIR is "
                        "required\n", cmd);
        return -1;
    }
    return a;
}

static int run_kv(int argc, char **argv)
{
    char path[4096];
    unsigned timeout_ms = 10000;
    uint8_t *frame, *resp = NULL, op, flags = 0;
    struct p2praft__api_req q;
    struct p2praft__api_resp ans;
    const char *args[3];
    size_t len = 0, n_args = 0, want, i;
    const char *sub;
    int a, rv;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
            kv_usage(stdout);
            return 0;
        }
    }
    a = common_opts("kv", argc, argv, path, sizeof(path), &timeout_ms);
    if (a < 0 || a >= argc) {
        if (a >= argc) {
            fprintf(stderr, "p2praft kv: which command?\n");
        }
        kv_usage(stderr);
        return 2;
    }
    sub = argv[a++];
    if (strcmp(sub, "get") == 0) {
        op = P2PRAFT_API_GET;
        want = 1;
        if (a < argc && strcmp(argv[a], "--consistent") == 0) {
            flags = P2PRAFT__API_CONSISTENT;
            a++;
        }
    } else if (strcmp(sub, "set") == 0) {
        op = P2PRAFT_API_SET;
        want = 2;
    } else if (strcmp(sub, "del") == 0) {
        op = P2PRAFT_API_DEL;
        want = 1;
    } else if (strcmp(sub, "cas") == 0) {
        op = P2PRAFT_API_CAS;
        want = 3;
    } else {
        fprintf(stderr, "p2praft kv: unknown command '%s'\n", sub);
        kv_usage(stderr);
        return 2;
    }
    for (; a < argc; a++) {
        if (n_args == want) {
            fprintf(stderr, "p2praft kv %s: too many arguments\n", sub);
            kv_usage(stderr);
            return 2;
        }
        args[n_args++] = argv[a];
    }
    if (n_args != want) {
        fprintf(stderr, "p2praft kv %s: missing arguments\n", sub);
        kv_usage(stderr);
        return 2;
    }
    if (args[0][0] == '\0' || strlen(args[0]) > P2PRAFT_KV_KEY_MAX) {
        fprintf(stderr, "p2praft kv: a key is 1 to %d bytes\n",
                P2PRAFT_KV_KEY_MAX);
        return 2;
    }
    for (i = 1; i < n_args; i++) {
        if (strlen(args[i]) > P2PRAFT_KV_VALUE_MAX) {
            fprintf(stderr, "p2praft kv: a value is at most %d bytes\n",
                    P2PRAFT_KV_VALUE_MAX);
            return 2;
        }
    }
    memset(&q, 0, sizeof(q));
    q.op = op;
    q.flags = flags;
    q.key = (char *)args[0];
    if (op == P2PRAFT_API_SET) {
        q.val = (uint8_t *)args[1];
        q.vlen = strlen(args[1]);
    } else if (op == P2PRAFT_API_CAS) { /* KEY EXPECTED NEW */
        q.exp = (uint8_t *)args[1];
        q.elen = strlen(args[1]);
        q.val = (uint8_t *)args[2];
        q.vlen = strlen(args[2]);
    }
    frame = p2praft__api_request_encode(&q, &len);
    if (frame == NULL) {
        fprintf(stderr, "p2praft kv: out of memory\n");
        return 1;
    }
    rv = call("kv", path, frame, len, timeout_ms, EXIT_UNKNOWN, &resp, &ans);
    p2praft_free(frame);
    if (rv != 0) {
        return rv;
    }
    switch (ans.status) {
    case P2PRAFT_API_OK:
        if (op == P2PRAFT_API_GET) {
            fwrite(ans.payload, 1, ans.len, stdout);
            fputc('\n', stdout);
        } else {
            printf("ok\n");
        }
        rv = 0;
        break;
    case P2PRAFT_API_NOTFOUND:
        fprintf(stderr, "p2praft kv %s: %s: not found\n", sub, args[0]);
        rv = 1;
        break;
    case P2PRAFT_API_MISMATCH:
        fprintf(stderr, "p2praft kv cas: %s: the value differs (or the key "
                        "is absent): not changed\n", args[0]);
        rv = 1;
        break;
    case P2PRAFT_API_FAILED:
    case P2PRAFT_API_BADREQ:
    case P2PRAFT_API_NOTLEADER:
        fprintf(stderr, "p2praft kv %s: %s%s (not applied)\n", sub,
                ans.status == P2PRAFT_API_BADREQ ? "bad request: " : "",
                (const char *)ans.payload);
        rv = EXIT_FAILED;
        break;
    case P2PRAFT_API_BUSY:
        fprintf(stderr, "p2praft kv %s: %s (not applied)\n", sub,
                (const char *)ans.payload);
        rv = EXIT_BUSY;
        break;
    case P2PRAFT_API_NOTCAUGHTUP:
        fprintf(stderr, "p2praft kv %s: %s\n", sub,
                (const char *)ans.payload);
        rv = EXIT_NOTCAUGHTUP;
        break;
    case P2PRAFT_API_UNKNOWN:
        fprintf(stderr, "p2praft kv %s: %s\n", sub,
                (const char *)ans.payload);
        rv = EXIT_UNKNOWN;
        break;
    default:
        fprintf(stderr,
                "p2praft kv %s: unknown answer status %u (%s): the outcome "
                "is unknown\n",
                sub, ans.status, (const char *)ans.payload);
        rv = EXIT_UNKNOWN;
        break;
    }
    free(resp);
    return rv;
}

static int run_status(int argc, char **argv)
{
    char path[4096];
    unsigned timeout_ms = 10000;
    struct p2praft__api_req q;
    struct p2praft__api_resp ans;
    uint8_t *frame, *resp = NULL;
    size_t len = 0;
    int a, rv;
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
            printf("usage: p2praft status (--api PATH | --data-dir DIR) "
                   "[--timeout-ms N]\nPrint the node's peer ID, role, "
                   "leader, term, commit and applied index,\nmembers and "
                   "snapshot counters, as 'key: value' lines. Exit status "
                   "4 when\nthe node cannot be reached or does not answer, "
                   "5 when it answers an error.\n");
            return 0;
        }
    }
    a = common_opts("status", argc, argv, path, sizeof(path), &timeout_ms);
    if (a < 0 || a != argc) {
        if (a >= 0) {
            fprintf(stderr, "p2praft status: unknown argument '%s'\n",
                    argv[a]);
        }
        fprintf(stderr, "usage: p2praft status (--api PATH | --data-dir DIR) "
                        "[--timeout-ms N]\n");
        return 2;
    }
    memset(&q, 0, sizeof(q));
    q.op = P2PRAFT_API_STATUS;
    frame = p2praft__api_request_encode(&q, &len);
    if (frame == NULL) {
        fprintf(stderr, "p2praft status: out of memory\n");
        return 1;
    }
    rv = call("status", path, frame, len, timeout_ms, EXIT_UNREACHABLE,
              &resp, &ans);
    p2praft_free(frame);
    if (rv != 0) {
        return rv;
    }
    if (ans.status != P2PRAFT_API_OK) {
        fprintf(stderr, "p2praft status: %s\n", (const char *)ans.payload);
        free(resp);
        return EXIT_FAILED;
    }
    fwrite(ans.payload, 1, ans.len, stdout);
    free(resp);
    return 0;
}

const struct cli_command cli_cmd_kv = {
    "kv", "get, set, del or cas a key through a node's API socket", run_kv};
const struct cli_command cli_cmd_status = {
    "status", "print a node's raft status", run_status};
