/*
 * The CLI as a user runs it: keygen, id, host (address lines, exit 0 on
 * SIGTERM), ping (round trips, exit codes) and the error messages for a
 * bad multiaddr, an unreachable peer, a peer ID mismatch and a bad key
 * file. The binary is the p2praft next to this runner (build/ or
 * build/asan/). Waits are poll() with timeouts on the child's output.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_util.h"
#include "host_harness.h"
#include "test.h"


/* The CLI binary beside this test binary (see harness_cli_path()). */
static const char *cli_path(void)
{
    const char *p = harness_cli_path();
    ASSERT(p != NULL);
    return p;
}

struct child {
    pid_t pid;
    int out; /* stdout and stderr, merged */
    char buf[8192];
    size_t len;
};

static void spawn(struct child *c, char *const argv[])
{
    int fds[2];
    ASSERT(pipe(fds) == 0);
    memset(c, 0, sizeof(*c));
    c->pid = fork();
    ASSERT(c->pid >= 0);
    if (c->pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        unsetenv("P2PRAFT_LOG");
        execv(cli_path(), argv);
        _exit(127);
    }
    close(fds[1]);
    c->out = fds[0];
}

/* Read until `needle` appears in the output or EOF or timeout. Returns 1
 * if found. */
static int read_until(struct child *c, const char *needle, int timeout_ms)
{
    if (th_valgrind()) {
        timeout_ms *= 10;
    }
    for (;;) {
        struct pollfd p = {c->out, POLLIN, 0};
        ssize_t n;
        c->buf[c->len] = '\0';
        if (needle != NULL && strstr(c->buf, needle) != NULL) {
            return 1;
        }
        if (poll(&p, 1, timeout_ms) <= 0) {
            return 0;
        }
        n = read(c->out, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
        if (n <= 0) {
            c->buf[c->len] = '\0';
            return needle != NULL && strstr(c->buf, needle) != NULL;
        }
        c->len += (size_t)n;
    }
}

/* Read until the output holds `n` complete lines. */
static int read_lines(struct child *c, int n, int timeout_ms)
{
    for (;;) {
        int k = 0;
        const char *q;
        c->buf[c->len] = '\0';
        for (q = c->buf; (q = strchr(q, '\n')) != NULL; q++) {
            k++;
        }
        if (k >= n) {
            return 1;
        }
        {
            struct pollfd p = {c->out, POLLIN, 0};
            ssize_t r;
            if (poll(&p, 1, th_valgrind() ? timeout_ms * 10 : timeout_ms) <= 0) {
                return 0;
            }
            r = read(c->out, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
            if (r <= 0) {
                return 0;
            }
            c->len += (size_t)r;
        }
    }
}

/* Read to EOF, then reap; returns the exit status (or -signal). */
static int finish(struct child *c, int timeout_ms)
{
    int st = 0;
    read_until(c, NULL, timeout_ms);
    close(c->out);
    ASSERT(waitpid(c->pid, &st, 0) == c->pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static int run(char *const argv[], struct child *c)
{
    spawn(c, argv);
    return finish(c, 20000);
}

TEST(cli, keygen_id_and_bad_keys)
{
    char dir[] = "/tmp/p2praft-cli-XXXXXX";
    char key[64], bad[64], id1[128];
    struct child c;
    FILE *f;
    struct stat st;
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(key, sizeof(key), "%s/k", dir);
    snprintf(bad, sizeof(bad), "%s/bad", dir);
    ASSERT_EQ(run((char *const[]){"p2praft", "keygen", "-o", key, NULL}, &c),
              0);
    ASSERT(strncmp(c.buf, "12D3KooW", 8) == 0);
    ASSERT(c.len < sizeof(id1));
    memcpy(id1, c.buf, c.len + 1);
    ASSERT_EQ(stat(key, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_EQ(run((char *const[]){"p2praft", "id", "-k", key, NULL}, &c), 0);
    ASSERT_STR_EQ(c.buf, id1);
    /* Never overwrites. */
    ASSERT_EQ(run((char *const[]){"p2praft", "keygen", "-o", key, NULL}, &c),
              1);
    ASSERT(strstr(c.buf, "already exists") != NULL);
    /* Missing and invalid key files. */
    ASSERT_EQ(run((char *const[]){"p2praft", "id", "-k", bad, NULL}, &c), 1);
    ASSERT(strstr(c.buf, "cannot use key file") != NULL);
    ASSERT(strstr(c.buf, "not found") != NULL);
    f = fopen(bad, "w");
    fputs("not a key\n", f);
    fclose(f);
    ASSERT_EQ(run((char *const[]){"p2praft", "id", "-k", bad, NULL}, &c), 1);
    ASSERT(strstr(c.buf, "not a libp2p Ed25519 private key") != NULL);
    ASSERT_EQ(run((char *const[]){"p2praft", "host", "-k", bad, NULL}, &c), 1);
    /* A directory where the key file should be: said so. */
    ASSERT_EQ(run((char *const[]){"p2praft", "id", "-k", dir, NULL}, &c), 1);
    ASSERT(strstr(c.buf, "is a directory") != NULL);
    unlink(key);
    unlink(bad);
    rmdir(dir);
}

/* `p2praft node --wire`: hashicorp and p2praft, anything else refused by
 * name before the node starts. */
TEST(cli, node_wire_option)
{
    struct child c;
    ASSERT_EQ(run((char *const[]){"p2praft", "node", "--key", "/nonexistent",
                                  "--data-dir", "/nonexistent", "--wire",
                                  "grpc", NULL},
                  &c),
              2);
    ASSERT(strstr(c.buf, "--wire is p2praft or hashicorp, not 'grpc'") != NULL);
    ASSERT_EQ(run((char *const[]){"p2praft", "node", "--help", NULL}, &c), 0);
    ASSERT(strstr(c.buf, "--wire p2praft|hashicorp") != NULL);
}

/* `p2praft node --metrics-listen` on a port in use or a bad address:
 * refused by name before the node starts, so that a --bootstrap run
 * leaves no data directory behind (a second --bootstrap there would be
 * refused as "holds state"). Before the fix the node bootstrapped DIR,
 * became leader, and only then failed to serve metrics. */
TEST(cli, node_metrics_listen_refused_before_start)
{
    char dir[] = "/tmp/p2praft-cli-XXXXXX";
    char key[64], data[64], addr[64];
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    struct child c;
    struct stat st;
    int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT(busy >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT(bind(busy, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    ASSERT(listen(busy, 1) == 0);
    ASSERT(getsockname(busy, (struct sockaddr *)&sa, &salen) == 0);
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(key, sizeof(key), "%s/k", dir);
    snprintf(data, sizeof(data), "%s/d", dir);
    ASSERT_EQ(run((char *const[]){"p2praft", "keygen", "-o", key, NULL}, &c),
              0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    ASSERT_EQ(run((char *const[]){"p2praft", "node", "--key", key,
                                  "--data-dir", data, "--bootstrap",
                                  "--metrics-listen", addr, NULL},
                  &c),
              1);
    ASSERT(strstr(c.buf, "Address already in use (nothing started)") != NULL);
    ASSERT(strstr(c.buf, "peer_id:") == NULL);
    ASSERT(stat(data, &st) != 0 && errno == ENOENT);
    ASSERT_EQ(run((char *const[]){"p2praft", "node", "--key", key,
                                  "--data-dir", data, "--bootstrap",
                                  "--metrics-listen", "localhost:9464", NULL},
                  &c),
              1);
    ASSERT(strstr(c.buf, "'localhost' is not an IPv4 address") != NULL);
    ASSERT(stat(data, &st) != 0 && errno == ENOENT);
    ASSERT_EQ(run((char *const[]){"p2praft", "node", "--key", key,
                                  "--data-dir", data, "--bootstrap",
                                  "--metrics-listen", "127.0.0.1:-1", NULL},
                  &c),
              1);
    ASSERT(strstr(c.buf, "bad port") != NULL);
    ASSERT(stat(data, &st) != 0 && errno == ENOENT);
    close(busy);
    unlink(key);
    rmdir(dir);
}

TEST(cli, host_and_ping)
{
    struct child h, p;
    char ma[LP2P_MULTIADDR_STRMAX], wrong[LP2P_MULTIADDR_STRMAX * 2];
    char *nl, *line;
    const char *other_id = "12D3KooWJpatNwRu5TDYbdg3PNREA9XinY41rou7c8eCn9cvxgGF";
    spawn(&h, (char *const[]){"p2praft", "host", "--listen",
                              "/ip4/127.0.0.1/tcp/0", "--listen",
                              "/ip6/::1/tcp/0", NULL});
    ASSERT(read_lines(&h, 2, 10000));
    /* Each line exactly one multiaddr ending in /p2p/<id>. */
    line = h.buf;
    ASSERT(strncmp(line, "/ip4/127.0.0.1/tcp/", 19) == 0);
    nl = strchr(line, '\n');
    ASSERT(nl != NULL);
    ASSERT((size_t)(nl - line) < sizeof(ma));
    memcpy(ma, line, (size_t)(nl - line));
    ma[nl - line] = '\0';
    ASSERT(strstr(ma, "/p2p/12D3KooW") != NULL);
    ASSERT(strchr(ma, ' ') == NULL);

    ASSERT_EQ(run((char *const[]){"p2praft", "ping", ma, "-c", "3", "-i", "0",
                                  NULL},
                  &p),
              0);
    ASSERT(strstr(p.buf, "PING 12D3KooW") != NULL);
    ASSERT(strstr(p.buf, "Pong received: time=") != NULL);
    ASSERT(strstr(p.buf, "Average latency") != NULL);

    /* The same address with another peer ID. */
    snprintf(wrong, sizeof(wrong), "%.*s/p2p/%s",
             (int)(strstr(ma, "/p2p/") - ma), ma, other_id);
    ASSERT_EQ(run((char *const[]){"p2praft", "ping", wrong, "-c", "1", NULL},
                  &p),
              1);
    ASSERT(strstr(p.buf, "does not match") != NULL);

    /* A second host on the same port: "address already in use". */
    {
        char same[LP2P_MULTIADDR_STRMAX];
        snprintf(same, sizeof(same), "%.*s",
                 (int)(strstr(ma, "/p2p/") - ma), ma);
        ASSERT_EQ(run((char *const[]){"p2praft", "host", "--listen", same,
                                      NULL},
                      &p),
                  1);
        ASSERT(strstr(p.buf, "address already in use") != NULL);
    }

    /* SIGTERM: clean exit 0. */
    kill(h.pid, SIGTERM);
    ASSERT_EQ(finish(&h, 20000), 0);

    /* Now nobody listens there. */
    ASSERT_EQ(run((char *const[]){"p2praft", "ping", ma, "-c", "1", NULL}, &p),
              1);
    ASSERT(strstr(p.buf, "connection refused") != NULL);
    ASSERT_EQ(run((char *const[]){"p2praft", "ping", "/ip4/1.2.3/tcp/1", NULL},
                  &p),
              1);
    ASSERT(strstr(p.buf, "bad multiaddr") != NULL);
    ASSERT_EQ(run((char *const[]){"p2praft", "ping",
                                  "/dns4/no-such-host.invalid/tcp/1", "-c",
                                  "1", NULL},
                  &p),
              1);
    ASSERT(strstr(p.buf, "unreachable") != NULL);
}

/* --busy-poll-us: out-of-range and non-numeric values refused by name;
 * a host and the interop driver both busy polling complete round trips. */
TEST(cli, busy_poll_option)
{
    struct child h, p;
    char ma[LP2P_MULTIADDR_STRMAX], *nl;
    ASSERT_EQ(run((char *const[]){"p2praft", "node", "--key", "/nonexistent",
                                  "--data-dir", "/nonexistent",
                                  "--busy-poll-us", "x", NULL},
                  &p),
              2);
    ASSERT(strstr(p.buf, "--busy-poll-us wants 0 to 1000000, not 'x'") != NULL);
    ASSERT_EQ(run((char *const[]){"p2praft", "host", "--busy-poll-us",
                                  "1000001", NULL},
                  &p),
              2);
    ASSERT(strstr(p.buf, "not '1000001'") != NULL);
    ASSERT_EQ(run((char *const[]){"p2praft", "interop", "bench-rtt",
                                  "/ip4/127.0.0.1/tcp/1", "--busy-poll-us",
                                  "-1", NULL},
                  &p),
              2);
    ASSERT(strstr(p.buf, "bad --busy-poll-us") != NULL);
    ASSERT_EQ(run((char *const[]){"p2praft", "node", "--help", NULL}, &p), 0);
    ASSERT(strstr(p.buf, "--busy-poll-us N") != NULL);

    spawn(&h, (char *const[]){"p2praft", "host", "--busy-poll-us", "50",
                              NULL});
    ASSERT(read_lines(&h, 1, 10000));
    nl = strchr(h.buf, '\n');
    ASSERT(nl != NULL && (size_t)(nl - h.buf) < sizeof(ma));
    memcpy(ma, h.buf, (size_t)(nl - h.buf));
    ma[nl - h.buf] = '\0';
    ASSERT_EQ(run((char *const[]){"p2praft", "interop", "bench-rtt", ma,
                                  "--count", "50", "--busy-poll-us", "50",
                                  NULL},
                  &p),
              0);
    ASSERT(strstr(p.buf, "bench rtt_p50 ") != NULL);
    kill(h.pid, SIGTERM);
    ASSERT_EQ(finish(&h, 20000), 0);
}
