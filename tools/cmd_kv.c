/*
 * p2praft kv / p2praft status: clients of a node's API socket, in the
 * frame format documented in p2praft.h (cluster node section).
 *
 * Exit status: 0 ok; 1 not found (get, del) or compare-and-set mismatch;
 * 2 usage; 3 the node answered with an error (including a timeout, whose
 * outcome is unknown); 4 the node's API socket cannot be reached or broke
 * the protocol.
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

#define EXIT_NODE 3
#define EXIT_UNREACHABLE 4

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

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

/*
 * Send one request body to the node at `path`, read the response body into
 * *resp (malloc'd). Returns 0, or prints why and returns EXIT_UNREACHABLE.
 */
static int call(const char *cmd, const char *path, const uint8_t *body,
                size_t len, unsigned timeout_ms, uint8_t **resp,
                size_t *resp_len)
{
    struct sockaddr_un sa;
    uint64_t deadline = now_ms() + timeout_ms;
    uint8_t hdr[4];
    uint32_t rlen;
    int fd;
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
    put32(hdr, (uint32_t)len);
    if (io_all(fd, hdr, 4, true, deadline) != 0 ||
        io_all(fd, (uint8_t *)body, len, true, deadline) != 0 ||
        io_all(fd, hdr, 4, false, deadline) != 0) {
        goto broken;
    }
    rlen = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
           (uint32_t)hdr[2] << 8 | hdr[3];
    if (rlen < 10 || rlen > P2PRAFT_API_FRAME_MAX) {
        errno = EPROTO;
        goto broken;
    }
    *resp = malloc(rlen + 1);
    if (*resp == NULL) {
        goto broken;
    }
    if (io_all(fd, *resp, rlen, false, deadline) != 0 || (*resp)[0] != 1) {
        free(*resp);
        if (errno == 0) {
            errno = EPROTO;
        }
        goto broken;
    }
    (*resp)[rlen] = 0;
    *resp_len = rlen;
    close(fd);
    return 0;
broken:
    fprintf(stderr, "p2praft %s: no valid answer from %s: %s\n", cmd, path,
            errno == ETIMEDOUT ? "timed out" : strerror(errno));
    close(fd);
    return EXIT_UNREACHABLE;
}

static size_t field(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    put32(p, (uint32_t)n);
    memcpy(p + 4, s, n);
    return 4 + n;
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
            "return once this\nnode applied them. Exit status: 0 ok, 1 not "
            "found or cas mismatch, 2 usage,\n3 the node reported an error "
            "(a timeout means the outcome is unknown),\n4 the node's API "
            "socket cannot be reached.\n");
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
    uint8_t *body, *resp = NULL, op, flags = 0;
    const char *args[3];
    size_t len = 0, resp_len = 0, n_args = 0, want, i;
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
            flags = 1;
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
    body = malloc(3 + 3 * 4 + strlen(args[0]) +
                  (n_args > 1 ? strlen(args[1]) : 0) +
                  (n_args > 2 ? strlen(args[2]) : 0));
    if (body == NULL) {
        fprintf(stderr, "p2praft kv: out of memory\n");
        return 1;
    }
    body[0] = 1;
    body[1] = op;
    body[2] = flags;
    len = 3;
    for (i = 0; i < n_args; i++) {
        /* cas: KEY EXPECTED NEW, in wire order already */
        len += field(body + len, args[i]);
    }
    rv = call("kv", path, body, len, timeout_ms, &resp, &resp_len);
    free(body);
    if (rv != 0) {
        return rv;
    }
    switch (resp[1]) {
    case P2PRAFT_API_OK:
        if (op == P2PRAFT_API_GET) {
            fwrite(resp + 10, 1, resp_len - 10, stdout);
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
    default:
        fprintf(stderr, "p2praft kv %s: %s%s\n", sub,
                resp[1] == P2PRAFT_API_BADREQ ? "bad request: " : "",
                (const char *)resp + 10);
        rv = EXIT_NODE;
        break;
    }
    free(resp);
    return rv;
}

static int run_status(int argc, char **argv)
{
    char path[4096];
    unsigned timeout_ms = 10000;
    uint8_t body[3] = {1, P2PRAFT_API_STATUS, 0}, *resp = NULL;
    size_t resp_len = 0;
    int a, rv;
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
            printf("usage: p2praft status (--api PATH | --data-dir DIR) "
                   "[--timeout-ms N]\nPrint the node's peer ID, role, "
                   "leader, term, commit and applied index,\nmembers and "
                   "snapshot counters, as 'key: value' lines. Exit status "
                   "4 when\nthe node cannot be reached.\n");
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
    rv = call("status", path, body, sizeof(body), timeout_ms, &resp,
              &resp_len);
    if (rv != 0) {
        return rv;
    }
    if (resp[1] != P2PRAFT_API_OK) {
        fprintf(stderr, "p2praft status: %s\n", (const char *)resp + 10);
        free(resp);
        return EXIT_NODE;
    }
    fwrite(resp + 10, 1, resp_len - 10, stdout);
    free(resp);
    return 0;
}

const struct cli_command cli_cmd_kv = {
    "kv", "get, set, del or cas a key through a node's API socket", run_kv};
const struct cli_command cli_cmd_status = {
    "status", "print a node's raft status", run_status};
