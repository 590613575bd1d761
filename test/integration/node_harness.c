/* In-process cluster nodes for the API tests (see node_harness.h). */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness_util.h"
#include "node_harness.h"
#include "raft/api.h"
#include "test.h"

uint64_t nh_now_ms(void)
{
    return harness_now_ms();
}

void nh_pause(void)
{
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

unsigned nh_scale(unsigned ms)
{
    return harness_slow() ? ms * 6 : ms;
}

void nh_prepare(struct hnode *ns, unsigned n, char *base)
{
    unsigned i;
    memset(ns, 0, n * sizeof(*ns));
    ASSERT(mkdtemp(base) != NULL);
    for (i = 0; i < n; i++) {
        struct lp2p_peer_id pid;
        int port = harness_free_port();
        ASSERT(port > 0);
        ASSERT_OK(lp2p_key_generate(&ns[i].key));
        ASSERT_OK(lp2p_peer_id_from_key(&ns[i].key, &pid));
        lp2p_peer_id_to_string(&pid, ns[i].id, sizeof(ns[i].id));
        snprintf(ns[i].dir, sizeof(ns[i].dir), "%s/n%u", base, i);
        snprintf(ns[i].listen, sizeof(ns[i].listen), "/ip4/127.0.0.1/tcp/%d",
                 port);
        snprintf(ns[i].peer_addr, sizeof(ns[i].peer_addr), "%s/p2p/%s",
                 ns[i].listen, ns[i].id);
    }
}

void nh_start(struct hnode *ns, unsigned n, unsigned i, bool bootstrap)
{
    struct p2praft_node_config cfg;
    const char *listen[1] = {ns[i].listen};
    char err[256];
    unsigned j, k = 0;
    for (j = 0; j < n; j++) {
        if (j != i) {
            ns[i].peers[k++] = ns[j].peer_addr;
        }
    }
    p2praft_node_config_init(&cfg);
    cfg.key = &ns[i].key;
    cfg.listen = listen;
    cfg.n_listen = 1;
    cfg.data_dir = ns[i].dir;
    cfg.peers = ns[i].peers;
    cfg.n_peers = k;
    cfg.bootstrap = bootstrap;
    if (harness_slow()) {
        cfg.election_ms = 1500;
        cfg.heartbeat_ms = 100;
        cfg.timeout_ms = 20000;
    }
#define COPY(f)                                                               \
    if (ns[i].f != 0) {                                                       \
        cfg.f = ns[i].f;                                                      \
    }
    COPY(api_max_inflight)
    COPY(api_max_requests)
    COPY(api_max_conns)
    COPY(api_idle_ms)
    COPY(timeout_ms)
    COPY(snapshot_threshold)
    COPY(snapshot_trailing)
    COPY(election_ms)
    COPY(heartbeat_ms)
    COPY(wire)
#undef COPY
    cfg.clients = ns[i].clients;
    cfg.n_clients = ns[i].n_clients;
    cfg.clients_file = ns[i].clients_file;
    if (p2praft_node_start(&ns[i].node, &cfg, err, sizeof(err)) != 0) {
        test__fail(__FILE__, __LINE__, "node %u: %s", i, err);
    }
}

void nh_teardown(struct hnode *ns, unsigned n, const char *base)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        p2praft_node_stop(ns[i].node);
        ns[i].node = NULL;
        lp2p_key_wipe(&ns[i].key);
        harness_rm_rf(ns[i].dir);
    }
    rmdir(base);
}

static const char *text_field(const char *text, const char *name, char *out,
                              size_t cap)
{
    char pat[64];
    const char *p;
    size_t n = 0;
    snprintf(pat, sizeof(pat), "\n%s: ", name);
    out[0] = '\0';
    p = strstr(text, pat);
    if (p != NULL) {
        p += strlen(pat);
        while (p[n] != '\0' && p[n] != '\n' && n + 1 < cap) {
            n++;
        }
        memcpy(out, p, n);
        out[n] = '\0';
    }
    return out;
}

const char *nh_field(struct hnode *nd, const char *name, char *out, size_t cap)
{
    char *text = NULL;
    ASSERT_OK(p2praft_node_status(nd->node, &text));
    text_field(text, name, out, cap);
    p2praft_free(text);
    return out;
}

unsigned long nh_field_num(struct hnode *nd, const char *name)
{
    char v[64];
    return strtoul(nh_field(nd, name, v, sizeof(v)), NULL, 10);
}

void nh_wait_field(struct hnode *nd, const char *name, const char *want,
                   unsigned timeout_ms)
{
    uint64_t end = nh_now_ms() + nh_scale(timeout_ms);
    char v[64];
    while (strcmp(nh_field(nd, name, v, sizeof(v)), want) != 0) {
        if (nh_now_ms() > end) {
            test__fail(__FILE__, __LINE__, "%s is '%s', not '%s', after %u ms",
                       name, v, want, timeout_ms);
        }
        nh_pause();
    }
}

void nh_wait_num(struct hnode *nd, const char *name, unsigned long want,
                 unsigned timeout_ms)
{
    char w[32];
    snprintf(w, sizeof(w), "%lu", want);
    nh_wait_field(nd, name, w, timeout_ms);
}

unsigned nh_wait_leader(struct hnode *ns, unsigned n, unsigned timeout_ms)
{
    uint64_t end = nh_now_ms() + nh_scale(timeout_ms);
    for (;;) {
        char leader[128] = "", l[128], role[32];
        int li = -1;
        unsigned i;
        bool agree = true;
        for (i = 0; i < n; i++) {
            if (ns[i].node == NULL) {
                continue;
            }
            nh_field(&ns[i], "leader", l, sizeof(l));
            if (strcmp(nh_field(&ns[i], "role", role, sizeof(role)),
                       "leader") == 0) {
                li = (int)i;
            }
            if (strcmp(l, "none") == 0 ||
                (leader[0] != '\0' && strcmp(leader, l) != 0)) {
                agree = false;
            }
            snprintf(leader, sizeof(leader), "%s", l);
        }
        if (agree && li >= 0 && strcmp(ns[li].id, leader) == 0) {
            return (unsigned)li;
        }
        ASSERT(nh_now_ms() < end);
        nh_pause();
    }
}

int nh_unix_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ASSERT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    return fd;
}

int nh_write_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t k = send(fd, b, len, MSG_NOSIGNAL);
        if (k <= 0) {
            return -1;
        }
        b += k;
        len -= (size_t)k;
    }
    return 0;
}

static int read_full(int fd, uint8_t *p, size_t len, uint64_t end)
{
    while (len > 0) {
        struct pollfd pf = {fd, POLLIN, 0};
        uint64_t now = nh_now_ms();
        ssize_t k;
        if (now >= end || poll(&pf, 1, (int)(end - now)) <= 0) {
            return -1;
        }
        k = read(fd, p, len);
        if (k <= 0) {
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

int nh_read_frame(int fd, uint8_t **body, size_t *len, unsigned timeout_ms)
{
    uint8_t hdr[P2PRAFT__API_PREFIX];
    uint32_t blen = 0;
    uint64_t end = nh_now_ms() + nh_scale(timeout_ms);
    *body = NULL;
    if (read_full(fd, hdr, sizeof(hdr), end) != 0 ||
        p2praft__api_frame(hdr, sizeof(hdr), &blen) == P2PRAFT_ETOOBIG) {
        return -1;
    }
    *body = malloc(blen + 1);
    ASSERT(*body != NULL);
    if (read_full(fd, *body, blen, end) != 0) {
        free(*body);
        *body = NULL;
        return -1;
    }
    *len = blen;
    return 0;
}

bool nh_wait_eof(int fd, unsigned timeout_ms)
{
    uint64_t end = nh_now_ms() + nh_scale(timeout_ms);
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        uint8_t tmp[4096];
        uint64_t now = nh_now_ms();
        ssize_t k;
        if (now >= end || poll(&pf, 1, (int)(end - now)) <= 0) {
            return false;
        }
        k = read(fd, tmp, sizeof(tmp));
        if (k <= 0) {
            return true;
        }
    }
}
