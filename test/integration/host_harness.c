#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_harness.h"
#include "test.h"

int th_valgrind(void)
{
    const char *v = getenv("P2PRAFT_VALGRIND");
    return v != NULL && v[0] == '1';
}

static void on_wake(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

int th_run_until_fn(uv_loop_t *loop, int (*pred)(void *), void *arg,
                    uint64_t timeout_ms)
{
    uv_timer_t timer;
    int expired = 0, ok;
    if (th_valgrind()) {
        timeout_ms *= 10;
    }
    uv_timer_init(loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, on_wake, timeout_ms, 0);
    while (!(ok = pred(arg)) && !expired) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok ? 1 : 0;
}

static int flag_pred(void *arg)
{
    return *(const int *)arg != 0;
}

int th_run_until(uv_loop_t *loop, const int *flag, uint64_t timeout_ms)
{
    return th_run_until_fn(loop, flag_pred, (void *)(uintptr_t)flag,
                           timeout_ms);
}

struct lp2p_host *th_host(uv_loop_t *loop, const struct lp2p_host_config *cfg,
                          char addr[LP2P_MULTIADDR_STRMAX])
{
    struct lp2p_host *h = NULL;
    char la[LP2P_MULTIADDR_STRMAX], id[LP2P_PEER_ID_STRMAX];
    ASSERT_OK(lp2p_host_new(&h, loop, cfg));
    ASSERT_OK(lp2p_host_listen(h, "/ip4/127.0.0.1/tcp/0"));
    ASSERT_OK(lp2p_host_listen_addr(h, 0, la, sizeof(la)));
    ASSERT_OK(lp2p_peer_id_to_string(lp2p_host_id(h), id, sizeof(id)));
    if (addr != NULL) {
        size_t n = strlen(la);
        ASSERT(n + 5 + strlen(id) < LP2P_MULTIADDR_STRMAX);
        memcpy(addr, la, n);
        memcpy(addr + n, "/p2p/", 5);
        memcpy(addr + n + 5, id, strlen(id) + 1);
    }
    return h;
}

void th_on_host_closed(struct lp2p_host *h, void *data)
{
    (void)h;
    *(int *)data = 1;
}

void th_host_close(uv_loop_t *loop, struct lp2p_host *host)
{
    int closed = 0;
    lp2p_host_close(host, th_on_host_closed, &closed);
    ASSERT(th_run_until(loop, &closed, 5000));
}

static void walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "open handle: %s\n", uv_handle_type_name(h->type));
}

void th_loop_close(uv_loop_t *loop)
{
    int i;
    for (i = 0; i < 100 && uv_loop_alive(loop); i++) {
        uv_run(loop, UV_RUN_NOWAIT);
    }
    if (uv_loop_close(loop) != 0) {
        uv_walk(loop, walk_cb, NULL);
        ASSERT(!"loop still has handles");
    }
}

int th_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n - 1; /* the directory's own fd */
}

int th_socket_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[300], link[64];
    int n = 0;
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        ssize_t k;
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        k = readlink(path, link, sizeof(link) - 1);
        if (k > 0) {
            link[k] = '\0';
            n += strncmp(link, "socket:", 7) == 0;
        }
    }
    closedir(d);
    return n;
}

struct conn_wait {
    int done;
    int status;
};

static void on_connected(struct lp2p_host *h, int status,
                         const struct lp2p_peer_id *peer, void *data)
{
    struct conn_wait *w = data;
    (void)h;
    (void)peer;
    w->done = 1;
    w->status = status;
}

int th_connect(uv_loop_t *loop, struct lp2p_host *a, const char *addr)
{
    struct conn_wait w = {0, 0};
    int rv = lp2p_host_connect(a, addr, on_connected, &w);
    if (rv != 0) {
        return rv;
    }
    ASSERT(th_run_until(loop, &w.done, 10000));
    return w.status;
}
