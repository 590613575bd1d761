/* p2praft node: one member of a replicated key-value store (see
 * p2praft_node_start() in p2praft.h), until SIGINT or SIGTERM, or until
 * it learns it was removed from the cluster (exit NODE_EXIT_REMOVED). */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "metrics_http.h"
#include "p2praft.h"
#include "testproto.h"

#define MAX_ADDRS 64
/* Removed from the cluster by a `peers rm`: a supervisor must not restart
 * it (contrib/p2praft.service: RestartPreventExitStatus). */
#define NODE_EXIT_REMOVED 8

static pthread_t main_thread;
static volatile sig_atomic_t removed;

/* On the node's loop thread: wake the sigwait() in run(). */
static void on_removed(void *data)
{
    (void)data;
    removed = 1;
    pthread_kill(main_thread, SIGUSR1);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: p2praft node --key FILE --data-dir DIR [--listen MA]...\n"
            "                    [--peer MA]... [--bootstrap] [--api PATH]\n"
            "                    [--election-ms N] [--heartbeat-ms N]\n"
            "                    [--snapshot-threshold N] "
            "[--snapshot-trailing N]\n"
            "                    [--timeout-ms N] [--api-max-conns N] "
            "[--api-idle-ms N]\n"
            "                    [--api-max-inflight N] "
            "[--api-max-requests N]\n"
            "                    [--client PEERID]... [--clients-file F]\n"
            "                    [--store disk|mem] [--metrics-listen "
            "HOST:PORT]\n"
            "                    [--join MA]... [--leave]\n"
            "                    [--wire p2praft|hashicorp] "
            "[--busy-poll-us N]\n"
            "Run one node of a replicated key-value store until SIGINT or "
            "SIGTERM.\n"
            "  --key FILE        identity key (p2praft keygen -o FILE)\n"
            "  --data-dir DIR    raft log and snapshots (created if "
            "missing), the API socket\n"
            "  --store disk|mem  where raft's state lives: raft_uv in DIR "
            "(default), or\n"
            "                    memory (lost with the process: start it "
            "once, with\n"
            "                    --bootstrap; a second start on DIR is "
            "refused, as it\n"
            "                    forgot its vote and the writes it "
            "acknowledged)\n"
            "  --wire W          raft wire of the cluster: p2praft (default) "
            "or hashicorp\n"
            "                    (go-libp2p-raft's /raft/1.0.0/rpc and the "
            "seed's log\n"
            "                    format, to share a cluster with Go nodes)\n"
            "  --listen MA       default /ip4/127.0.0.1/tcp/0\n"
            "  --peer MA         another member, /ip4/../tcp/../p2p/<id>\n"
            "  --bootstrap       first start only: the configuration is this "
            "node + the\n"
            "                    peers (refused when DIR already holds "
            "state; without it\n"
            "                    the node loads its state from DIR)\n"
            "  --join MA         first start of a new member, with an empty "
            "DIR: dial the\n"
            "                    member at MA (repeatable: list them all) "
            "and wait for\n"
            "                    the leader, after 'p2praft peers add' of "
            "this node on any\n"
            "                    member; ignored, with a warning, once DIR "
            "holds state\n"
            "  --leave           start from DIR, remove this node from the "
            "cluster for\n"
            "                    good (p2praft peers rm), and exit: 0 "
            "removed, 3 outcome\n"
            "                    unknown, 5 not removed\n"
            "  --api PATH        unix socket of the client API (default "
            "DIR/api.sock)\n"
            "  --election-ms N   election timeout, randomized in [N, 2N) "
            "(150)\n"
            "  --heartbeat-ms N  (10)\n"
            "  --snapshot-threshold N  entries between snapshots (1024;\n"
            "                          at least keys/4 on a larger store)\n"
            "  --snapshot-trailing N   entries kept after one (128)\n"
            "  --timeout-ms N    bound on one client request (5000)\n"
            "  --api-max-conns N API connections served at once; one more "
            "is answered\n"
            "                    BUSY and closed (64)\n"
            "  --api-idle-ms N   an API connection idle this long is closed "
            "(30000)\n"
            "  --api-max-inflight N  requests and watches in flight on one "
            "connection;\n"
            "                    one more is answered BUSY (128)\n"
            "  --api-max-requests N  the same over the whole node (4096)\n"
            "  --busy-poll-us N  after network activity or a log write, "
            "keep the loop\n"
            "                    polling without sleeping for N us (0 = off, "
            "the default;\n"
            "                    at most 1000000): CPU for latency, on VMs "
            "whose idle\n"
            "                    vCPUs halt at once or with a core of its own\n"
            "  --client PEERID   a remote client that may use the API over "
            "libp2p\n"
            "                    (/p2praft/client/1.0.0; p2praft kv --node "
            "MA --key F)\n"
            "  --clients-file F  more of them, one peer ID per line ('#' "
            "comments)\n"
            "  --metrics-listen HOST:PORT  serve GET /metrics (Prometheus "
            "text) and\n"
            "                    /healthz (200 with a leader heard from and "
            "caught up,\n"
            "                    else 503 and why) over\n"
            "                    HTTP; ':PORT' listens on every IPv4 "
            "interface\n"
            "Prints 'peer_id: ID', one 'listen: MA/p2p/ID' line per address, "
            "'api: PATH',\n'metrics: http://HOST:PORT' (with --metrics-listen) and 'ready'. On stderr, at the default log level "
            "(P2PRAFT_LOG=warn):\nleader changes, no leader for long, "
            "configured peers unreachable or with\nanother key than their "
            "/p2p/ ID, and refused streams, with counts.\n"
            "Exit status: 0 stopped by SIGINT/SIGTERM, 1 could not start, "
            "2 usage,\n8 removed from the cluster (one line says so; do not "
            "restart it as it is:\nremove DIR, `p2praft peers add` it, start "
            "with --join).\n");
}

/* Warn, as etcd does, when group or others may read the key file: it is
 * the node's identity. */
static void warn_key_mode(const char *path)
{
    struct stat st;
    if (lp2p_log_level() <= LP2P_LOG_WARN && stat(path, &st) == 0 &&
        (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        fprintf(stderr,
                "warn  node: key file %s is accessible by group or others "
                "(mode %04o); it is this node's identity: chmod 600 %s\n",
                path, (unsigned)(st.st_mode & 07777), path);
    }
}

static int num(const char *s, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v == 0 || v > UINT_MAX / 2) {
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* --leave: remove this node (through the leader), then stop. */
static int leave_cluster(struct p2praft_node *node, const char *id)
{
    char err[512] = "";
    int rv = p2praft_node_remove(node, id, err, sizeof(err));
    int code = 0;
    if (rv == 0) {
        printf("removed %s\n", id);
    } else {
        fprintf(stderr, "p2praft node --leave: %s%s\n",
                err[0] != '\0' ? err : p2praft_strerror(rv),
                p2praft_outcome_unknown(rv)
                    ? " (OUTCOME UNKNOWN: check p2praft peers ls)"
                    : " (not removed)");
        code = p2praft_outcome_unknown(rv) ? 3 : 5;
    }
    fflush(stdout);
    p2praft_node_stop(node);
    return code;
}

static int run(int argc, char **argv)
{
    const char *listen[MAX_ADDRS], *peers[MAX_ADDRS], *clients[MAX_ADDRS];
    struct p2praft_node_config cfg;
    struct p2praft_node *node;
    const char *keyfile = NULL, *metrics_addr = NULL;
    struct metrics_http *mh = NULL;
    char bound[96];
    struct lp2p_key key;
    char err[512], *status = NULL, id[LP2P_PEER_ID_STRMAX];
    sigset_t set;
    int a, rv, sig = 0;
    bool leave = false;

    p2praft_node_config_init(&cfg);
    cfg.listen = listen;
    cfg.peers = peers;
    cfg.clients = clients;
    for (a = 1; a < argc; a++) {
        const char *o = argv[a];
        const char *v = a + 1 < argc ? argv[a + 1] : NULL;
        unsigned *np = NULL;
        if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(o, "--bootstrap") == 0) {
            cfg.bootstrap = true;
            continue;
        }
        if (strcmp(o, "--leave") == 0) {
            leave = true;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "p2praft node: '%s' needs a value or is "
                            "unknown\n", o);
            usage(stderr);
            return 2;
        }
        a++;
        if (strcmp(o, "--key") == 0 || strcmp(o, "-k") == 0) {
            keyfile = v;
        } else if (strcmp(o, "--data-dir") == 0) {
            cfg.data_dir = v;
        } else if (strcmp(o, "--api") == 0) {
            cfg.api_path = v;
        } else if (strcmp(o, "--store") == 0) {
            if (strcmp(v, "disk") == 0) {
                cfg.store = P2PRAFT_STORE_DISK;
            } else if (strcmp(v, "mem") == 0) {
                cfg.store = P2PRAFT_STORE_MEM;
            } else {
                fprintf(stderr, "p2praft node: --store is disk or mem, not "
                                "'%s'\n", v);
                return 2;
            }
        } else if (strcmp(o, "--join") == 0) {
            if (cfg.n_peers == MAX_ADDRS) {
                fprintf(stderr, "p2praft node: at most %d --peer/--join\n",
                        MAX_ADDRS);
                return 2;
            }
            cfg.join = true;
            peers[cfg.n_peers++] = v;
        } else if (strcmp(o, "--wire") == 0) {
            if (strcmp(v, "p2praft") == 0) {
                cfg.wire = P2PRAFT_WIRE_P2PRAFT;
            } else if (strcmp(v, "hashicorp") == 0) {
                cfg.wire = P2PRAFT_WIRE_HASHICORP;
            } else {
                fprintf(stderr, "p2praft node: --wire is p2praft or "
                                "hashicorp, not '%s'\n", v);
                return 2;
            }
        } else if (strcmp(o, "--listen") == 0 || strcmp(o, "--peer") == 0) {
            bool is_listen = o[2] == 'l';
            size_t *cnt = is_listen ? &cfg.n_listen : &cfg.n_peers;
            if (*cnt == MAX_ADDRS) {
                fprintf(stderr, "p2praft node: at most %d %s\n", MAX_ADDRS, o);
                return 2;
            }
            (is_listen ? listen : peers)[(*cnt)++] = v;
        } else if (strcmp(o, "--client") == 0) {
            if (cfg.n_clients == MAX_ADDRS) {
                fprintf(stderr, "p2praft node: at most %d --client (use "
                                "--clients-file)\n", MAX_ADDRS);
                return 2;
            }
            clients[cfg.n_clients++] = v;
        } else if (strcmp(o, "--metrics-listen") == 0) {
            metrics_addr = v;
        } else if (strcmp(o, "--clients-file") == 0) {
            cfg.clients_file = v;
        } else if (strcmp(o, "--api-max-inflight") == 0) {
            np = &cfg.api_max_inflight;
        } else if (strcmp(o, "--api-max-requests") == 0) {
            np = &cfg.api_max_requests;
        } else if (strcmp(o, "--election-ms") == 0) {
            np = &cfg.election_ms;
        } else if (strcmp(o, "--heartbeat-ms") == 0) {
            np = &cfg.heartbeat_ms;
        } else if (strcmp(o, "--snapshot-threshold") == 0) {
            np = &cfg.snapshot_threshold;
        } else if (strcmp(o, "--snapshot-trailing") == 0) {
            np = &cfg.snapshot_trailing;
        } else if (strcmp(o, "--timeout-ms") == 0) {
            np = &cfg.timeout_ms;
        } else if (strcmp(o, "--api-max-conns") == 0) {
            np = &cfg.api_max_conns;
        } else if (strcmp(o, "--api-idle-ms") == 0) {
            np = &cfg.api_idle_ms;
        } else if (strcmp(o, "--busy-poll-us") == 0) {
            if (cli_busy_poll_us(v, &cfg.busy_poll_us) != 0) {
                fprintf(stderr, "p2praft node: --busy-poll-us wants 0 to "
                                "%u, not '%s'\n", LP2P_BUSY_POLL_US_MAX, v);
                return 2;
            }
        } else {
            fprintf(stderr, "p2praft node: unknown argument '%s'\n", o);
            usage(stderr);
            return 2;
        }
        if (np != NULL && num(v, np) != 0) {
            fprintf(stderr, "p2praft node: %s wants a positive number, not "
                            "'%s'\n", o, v);
            return 2;
        }
    }
    if (cfg.join && cfg.bootstrap) {
        fprintf(stderr, "p2praft node: --join and --bootstrap exclude each "
                        "other\n");
        return 2;
    }
    if (keyfile == NULL || cfg.data_dir == NULL) {
        fprintf(stderr, "p2praft node: --key and --data-dir are required\n");
        usage(stderr);
        return 2;
    }
    if (cfg.heartbeat_ms >= cfg.election_ms) {
        fprintf(stderr, "p2praft node: --heartbeat-ms must be below "
                        "--election-ms\n");
        return 2;
    }
    if (cfg.n_listen == 0) {
        listen[cfg.n_listen++] = "/ip4/127.0.0.1/tcp/0";
    }
    /* A server says why it refuses things unless told otherwise. */
    if (getenv("P2PRAFT_LOG") == NULL) {
        lp2p_log_set(LP2P_LOG_WARN, NULL, NULL);
    }
    if (cli_load_key(keyfile, &key) != 0) {
        return 1;
    }
    warn_key_mode(keyfile);
    cfg.key = &key;
    /* The node's thread inherits the blocked signals: only sigwait()
     * below sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1); /* on_removed() */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    main_thread = pthread_self();
    cfg.on_removed = on_removed;
    /* Before the node starts: a bad address or a port in use must not
     * leave a data directory bootstrapped (a second --bootstrap there is
     * refused) or a member running for a moment. */
    if (metrics_addr != NULL &&
        metrics_http_bind(&mh, metrics_addr, err, sizeof(err)) != 0) {
        lp2p_key_wipe(&key);
        fprintf(stderr, "p2praft node: %s (nothing started)\n", err);
        return 1;
    }
    rv = p2praft_node_start(&node, &cfg, err, sizeof(err));
    lp2p_key_wipe(&key);
    if (rv != 0 && leave && rv == P2PRAFT_EREMOVED) {
        metrics_http_stop(mh);
        fprintf(stderr, "p2praft node --leave: %s (not removed: it was "
                        "already)\n", err);
        return 5; /* nothing changed, as for any non-member */
    }
    if (rv != 0) {
        metrics_http_stop(mh);
        fprintf(stderr, "p2praft node: %s\n", err[0] != '\0' ? err
                                                              : p2praft_strerror(rv));
        /* removed earlier: as when removed while running (the unit does
         * not restart it) */
        return rv == P2PRAFT_EREMOVED ? NODE_EXIT_REMOVED : 1;
    }
    p2praft_node_peer_id(node, id, sizeof(id));
    printf("peer_id: %s\n", id);
    if (p2praft_node_status(node, &status) == 0) {
        const char *p = status;
        while ((p = strstr(p, "listen: ")) != NULL) {
            const char *e = strchr(p, '\n');
            int len = e != NULL ? (int)(e - p) : (int)strlen(p);
            printf("%.*s\n", len, p);
            p += len;
        }
        p2praft_free(status);
    }
    printf("api: %s\n", p2praft_node_api_path(node));
    if (metrics_addr != NULL) {
        if (metrics_http_start(mh, node, bound, sizeof(bound), err,
                               sizeof(err)) != 0) {
            fprintf(stderr, "p2praft node: %s\n", err);
            metrics_http_stop(mh);
            p2praft_node_stop(node);
            return 1;
        }
        printf("metrics: http://%s\n", bound);
    }
    printf("ready\n");
    fflush(stdout);
    if (leave) {
        metrics_http_stop(mh); /* it reads the node, which leave stops */
        return leave_cluster(node, id);
    }
    do {
        sigwait(&set, &sig);
    } while (sig == SIGUSR1 && !removed); /* someone else's SIGUSR1 */
    if (sig == SIGUSR1) {
        /* The node said why in one line; it no longer campaigns. */
        metrics_http_stop(mh);
        p2praft_node_stop(node);
        return NODE_EXIT_REMOVED;
    }
    if (sig == SIGTERM) {
        /* A leader stopped by its supervisor hands over first, so that
         * the cluster does not wait an election timeout for a new one. */
        int tries = 0;
        /* A transfer gives up after an election timeout (the target
         * lagged, or the loop was slow): a few tries, still bounded. */
        do {
            rv = p2praft_node_handover(node);
        } while (rv == P2PRAFT_ERAFT && ++tries < 3);
        if (rv != 0) {
            fprintf(stderr, "warn  node: leadership not handed over before "
                            "stopping: %s\n", p2praft_strerror(rv));
        }
    }
    metrics_http_stop(mh);
    p2praft_node_stop(node);
    return 0;
}

const struct cli_command cli_cmd_node = {
    "node", "run a node of a replicated key-value store", run};
