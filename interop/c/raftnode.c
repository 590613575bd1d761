/*
 * c-raftnode: a p2praft node on the hashicorp wire (go-libp2p-raft's
 * /raft/1.0.0/rpc, the seed's log format), driven through the control
 * protocol of interop/go/raftnode, so that the same scripts (and
 * `go-raftnode ctl -sock`) drive Go and C nodes of one mixed cluster.
 *
 *   c-raftnode [-key FILE] [-listen MA] [-peer MA]... [-bootstrap]
 *              -control SOCK [-mode consensus|oplog|oplog-bad]
 *              [-heartbeat MS] [-election MS] [-snapshot-threshold N]
 *              [-trailing-logs N] [-prevote] [-wire hashicorp|p2praft]
 *              [-log LEVEL]
 *
 * Prints `id <peer ID>`, `listen <MA>/p2p/<id>`, `ready p2praft <mode>`,
 * then serves the control socket: each connection sends lines and gets
 * one reply line per command ("ok ..." or "err ..."). The commands and
 * replies are raftnode's (README there): id, status, leader, config,
 * state, commit-state V, commit-op S, rollback V, example N, barrier,
 * add-voter ID|MA, add-nonvoter ID|MA, remove ID, transfer [ID],
 * set-snapshot THRESHOLD INTERVAL TRAILING, peer-add MA, wait-leader T,
 * wait-state-leader T, wait-applied INDEX T, shutdown. Differences:
 * `status` reports `last_snapshot=TAKEN+RESTORED/0` (libraft has no
 * public snapshot index) and `snapshot` is refused (libraft snapshots on
 * its threshold only: use set-snapshot).
 *
 * The state types are the seed's: consensus mode raftState{Value int};
 * oplog modes msgState{Msg string} with appendOp{Append string} (Msg +=
 * Append) or badOp{} (ApplyTo fails).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <raft.h>

#include "p2praft.h"

#define MAX_PEERS 32
#define LINE_MAX_ 4096

/* ---- the seed's types ---------------------------------------------------- */

struct value_state {
    int64_t Value;
};
static const struct p2praft_field value_fields[] = {
    {"Value", offsetof(struct value_state, Value), {P2PRAFT_KIND_INT64, 0, 0}}};
static const struct p2praft_type value_type = {
    "raftState", sizeof(struct value_state), value_fields, 1,
    NULL, NULL, NULL, NULL};

struct msg_state {
    char *Msg;
};
static const struct p2praft_field msg_fields[] = {
    {"Msg", offsetof(struct msg_state, Msg), {P2PRAFT_KIND_STRING, 0, 0}}};
static const struct p2praft_type msg_type = {
    "msgState", sizeof(struct msg_state), msg_fields, 1,
    NULL, NULL, NULL, NULL};

struct append_op {
    char *Append;
};
static const struct p2praft_field append_fields[] = {
    {"Append", offsetof(struct append_op, Append), {P2PRAFT_KIND_STRING, 0, 0}}};
static const struct p2praft_type append_type = {
    "appendOp", sizeof(struct append_op), append_fields, 1,
    NULL, NULL, NULL, NULL};

struct bad_op {
    int unused;
};
static const struct p2praft_field no_fields[1];
static const struct p2praft_type bad_type = {
    "badOp", sizeof(struct bad_op), no_fields, 0, NULL, NULL, NULL, NULL};

static int append_apply(const void *op, const void *state, void *new_state,
                        void *ctx)
{
    const struct append_op *o = op;
    const struct msg_state *s = state;
    struct msg_state *ns = new_state;
    size_t a = s->Msg != NULL ? strlen(s->Msg) : 0;
    size_t b = o->Append != NULL ? strlen(o->Append) : 0;
    (void)ctx;
    ns->Msg = p2praft_malloc(a + b + 1);
    if (ns->Msg == NULL) {
        return P2PRAFT_ENOMEM;
    }
    memcpy(ns->Msg, s->Msg != NULL ? s->Msg : "", a);
    memcpy(ns->Msg + a, o->Append != NULL ? o->Append : "", b);
    ns->Msg[a + b] = 0;
    return 0;
}

static int bad_apply(const void *op, const void *state, void *new_state,
                     void *ctx)
{
    (void)op;
    (void)state;
    (void)new_state;
    (void)ctx;
    return -1; /* "whops" */
}

static const struct p2praft_op_type append_op_type = {&append_type,
                                                      append_apply, NULL,
                                                      NULL, NULL};
static const struct p2praft_op_type bad_op_type = {&bad_type, bad_apply, NULL,
                                                   NULL, NULL};

/* ---- the node -------------------------------------------------------------- */

struct node {
    uv_loop_t *loop;
    struct lp2p_key key;
    struct lp2p_peer_id pid;
    char self[LP2P_PEER_ID_STRMAX];
    struct lp2p_host *host;
    struct raft_io io;
    struct raft raft;
    struct p2praft_consensus *c;
    struct p2praft_actor *actor;
    const struct p2praft_type *st;
    const char *mode;
    struct lp2p_peer_id members[MAX_PEERS + 1];
    size_t n_members;
    uv_pipe_t ctl;
    uv_signal_t sigterm;
};

static struct node N;

struct conn {
    uv_pipe_t pipe;
    char buf[LINE_MAX_];
    size_t len;
    bool busy;
    bool closing;
    /* async commands */
    uv_timer_t timer;
    bool timer_on;
    uint64_t deadline;
    char cmd[32];
    uint64_t arg;
    int count, done_n;
    int64_t last;
    struct raft_change change;
    struct raft_transfer transfer;
    struct raft_barrier barrier;
    raft_id target;
    int role;
};

static void conn_next(struct conn *c);

static void write_done(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static bool quitting;

static void exit_now(uv_write_t *w, int status)
{
    write_done(w, status);
    _exit(0);
}

/* Send one reply line and go on with the next command. */
static void reply(struct conn *c, const char *fmt, ...)
{
    char *line = malloc(LINE_MAX_ * 4);
    uv_write_t *w = malloc(sizeof(*w));
    uv_buf_t b;
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(line, LINE_MAX_ * 4 - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || n > LINE_MAX_ * 4 - 2) {
        n = LINE_MAX_ * 4 - 2;
    }
    line[n++] = '\n';
    w->data = line;
    b = uv_buf_init(line, (unsigned)n);
    if (c->closing || uv_write(w, (uv_stream_t *)&c->pipe, &b, 1,
                               quitting ? exit_now : write_done) != 0) {
        free(line);
        free(w);
        if (quitting) {
            _exit(0);
        }
    }
    c->busy = false;
    conn_next(c);
}

static const char *state_name(void)
{
    switch (raft_state(&N.raft)) {
    case RAFT_LEADER:
        return "Leader";
    case RAFT_CANDIDATE:
        return "Candidate";
    case RAFT_FOLLOWER:
        return "Follower";
    default:
        return "Shutdown";
    }
}

static const char *leader_str(void)
{
    raft_id id;
    const char *addr = NULL;
    raft_leader(&N.raft, &id, &addr);
    return addr != NULL && id != 0 ? addr : "";
}

/* JSON of a state value (as Go's encoding/json writes these types). */
static void json_of(const void *v, char *out, size_t cap)
{
    if (v == NULL) {
        snprintf(out, cap, "null");
    } else if (N.st == &value_type) {
        snprintf(out, cap, "{\"Value\":%lld",
                 (long long)((const struct value_state *)v)->Value);
        strncat(out, "}", cap - strlen(out) - 1);
    } else {
        const char *m = ((const struct msg_state *)v)->Msg;
        size_t k = 0;
        k += (size_t)snprintf(out, cap, "{\"Msg\":\"");
        for (; m != NULL && *m != 0 && k + 8 < cap; m++) {
            unsigned char ch = (unsigned char)*m;
            if (ch == '"' || ch == '\\') {
                out[k++] = '\\';
                out[k++] = (char)ch;
            } else if (ch < 0x20) {
                k += (size_t)snprintf(out + k, cap - k, "\\u%04x", ch);
            } else {
                out[k++] = (char)ch;
            }
        }
        snprintf(out + k, cap - k, "\"}");
    }
}

static const char *err_text(int rv)
{
    if (rv == P2PRAFT_EINCONSISTENT) {
        return "the state on this node is not consistent";
    }
    if (rv == P2PRAFT_ENOSTATE) {
        return "no state has been agreed upon yet";
    }
    return p2praft_strerror(rv);
}

/* Go-quoted or bare argument: everything after the command word. */
static void arg_rest(const char *line, const char *cmd, char *out, size_t cap)
{
    const char *s = line;
    size_t n, k = 0;
    while (*s == ' ') {
        s++;
    }
    s += strlen(cmd);
    while (*s == ' ') {
        s++;
    }
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\r')) {
        n--;
    }
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        size_t i;
        for (i = 1; i + 1 < n && k + 1 < cap; i++) {
            if (s[i] == '\\' && i + 2 < n) {
                i++;
            }
            out[k++] = s[i];
        }
        out[k] = 0;
        return;
    }
    snprintf(out, cap, "%.*s", (int)n, s);
}

static int state_arg(const char *s, void **out)
{
    if (N.st == &value_type) {
        struct value_state *v = p2praft_value_new(&value_type);
        char *end;
        if (v == NULL) {
            return P2PRAFT_ENOMEM;
        }
        v->Value = strtoll(s, &end, 10);
        if (*s == 0 || *end != 0) {
            p2praft_value_destroy(&value_type, v);
            return P2PRAFT_EINVAL;
        }
        *out = v;
        return 0;
    }
    struct msg_state *m = p2praft_value_new(&msg_type);
    if (m == NULL || (m->Msg = p2praft_strdup(s)) == NULL) {
        p2praft_value_destroy(&msg_type, m);
        return P2PRAFT_ENOMEM;
    }
    *out = m;
    return 0;
}

/* A peer ID string or a multiaddr ending in /p2p/ID (added to the
 * peerstore and to the admitted members). */
static int server_arg(const char *s, struct lp2p_peer_id *pid)
{
    int rv;
    if (s[0] == '/') {
        struct lp2p_multiaddr ma;
        char err[LP2P_ERRMSG_MAX];
        lp2p_multiaddr_init(&ma);
        rv = lp2p_multiaddr_parse(&ma, s, err, sizeof(err));
        if (rv == 0) {
            rv = lp2p_multiaddr_peer_id(&ma, pid);
        }
        lp2p_multiaddr_free(&ma);
        if (rv == 0) {
            rv = lp2p_peerstore_add_addr(N.host, pid, s, LP2P_TTL_PERMANENT);
        }
    } else {
        rv = lp2p_peer_id_parse(pid, s);
    }
    if (rv != 0) {
        return rv;
    }
    for (size_t i = 0; i < N.n_members; i++) {
        if (lp2p_peer_id_equal(&N.members[i], pid)) {
            return 0;
        }
    }
    if (N.n_members < MAX_PEERS + 1) {
        N.members[N.n_members++] = *pid;
        p2praft_io_set_members(&N.io, N.members, N.n_members);
    }
    return 0;
}

/* ---- async commands ------------------------------------------------------ */

static void committed(void *ctx, int status, void *state, const char *errmsg)
{
    struct conn *c = ctx;
    char js[LINE_MAX_];
    if (strcmp(c->cmd, "example") == 0) {
        if (status != 0 || state == NULL) {
            reply(c, "err after %d updates: %s%s%s", c->done_n,
                  p2praft_strerror(status), errmsg != NULL ? ": " : "",
                  errmsg != NULL ? errmsg : "");
            p2praft_value_destroy(N.st, state);
            return;
        }
        c->last = ((struct value_state *)state)->Value;
        p2praft_value_destroy(N.st, state);
        c->done_n++;
        if (c->done_n % 200 == 0) {
            fprintf(stderr, "Performed %d updates. Current state value: %lld\n",
                    c->done_n, (long long)c->last);
        }
        if (c->done_n < c->count) {
            struct value_state v = {(int64_t)c->done_n * 2};
            int rv = p2praft_consensus_commit_state(N.c, &v, committed, c);
            if (rv != 0) {
                reply(c, "err after %d updates: %s", c->done_n,
                      p2praft_strerror(rv));
            }
            return;
        }
        reply(c, "ok %lld", (long long)c->last);
        return;
    }
    if (status == P2PRAFT_EAPPLY && strcmp(c->cmd, "commit-op") == 0) {
        reply(c, "ok null"); /* the seed's CommitOp: nil, no error */
        return;
    }
    if (status != 0) {
        reply(c, "err %s%s%s", p2praft_strerror(status),
              errmsg != NULL ? ": " : "", errmsg != NULL ? errmsg : "");
        p2praft_value_destroy(N.st, state);
        return;
    }
    if (strcmp(c->cmd, "rollback") == 0) {
        p2praft_value_destroy(N.st, state);
        reply(c, "ok");
        return;
    }
    json_of(state, js, sizeof(js));
    p2praft_value_destroy(N.st, state);
    reply(c, "ok %s", js);
}

static bool wait_cond(struct conn *c)
{
    if (strcmp(c->cmd, "wait-leader") == 0) {
        return leader_str()[0] != 0;
    }
    if (strcmp(c->cmd, "wait-state-leader") == 0) {
        return raft_state(&N.raft) == RAFT_LEADER;
    }
    return raft_last_applied(&N.raft) >= c->arg; /* wait-applied */
}

static void wait_tick(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (wait_cond(c)) {
        uv_timer_stop(t);
        if (strcmp(c->cmd, "wait-applied") == 0) {
            reply(c, "ok applied_index=%llu",
                  (unsigned long long)raft_last_applied(&N.raft));
        } else {
            reply(c, "ok %s", leader_str());
        }
    } else if (uv_now(N.loop) >= c->deadline) {
        uv_timer_stop(t);
        if (strcmp(c->cmd, "wait-applied") == 0) {
            reply(c, "err timed out at applied_index=%llu",
                  (unsigned long long)raft_last_applied(&N.raft));
        } else {
            reply(c, "err timed out");
        }
    }
}

static uint64_t dur_ms(const char *s)
{
    char *end;
    double v;
    if (s == NULL) {
        return 10000;
    }
    v = strtod(s, &end);
    if (strcmp(end, "ms") == 0) {
        return (uint64_t)v;
    }
    if (strcmp(end, "m") == 0) {
        return (uint64_t)(v * 60000);
    }
    return (uint64_t)(v * 1000); /* "s" or bare seconds */
}

static void transfer_cb(struct raft_transfer *req)
{
    struct conn *c = req->data;
    raft_id id;
    const char *addr;
    raft_leader(&N.raft, &id, &addr);
    if (raft_state(&N.raft) == RAFT_LEADER) {
        reply(c, "err leadership transfer failed");
    } else {
        reply(c, "ok");
    }
}

static void change_cb(struct raft_change *req, int status)
{
    struct conn *c = req->data;
    int rv;
    if (status != 0) {
        reply(c, "err %s", raft_strerror(status));
        return;
    }
    if (c->role >= 0) {
        int role = c->role;
        c->role = -1;
        rv = raft_assign(&N.raft, &c->change, c->target, role, change_cb);
        if (rv != 0) {
            reply(c, "err %s", raft_strerror(rv));
        }
        return;
    }
    reply(c, "ok index=%llu", (unsigned long long)raft_last_index(&N.raft));
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct conn *c = req->data;
    if (status != 0) {
        reply(c, "err %s", raft_strerror(status));
    } else {
        reply(c, "ok index=%llu", (unsigned long long)raft_last_index(&N.raft));
    }
}

/* ---- commands -------------------------------------------------------------- */

static void command(struct conn *c, char *line)
{
    char *f[8] = {0}, copy[LINE_MAX_], arg[LINE_MAX_], js[LINE_MAX_];
    int nf = 0, rv;
    char *save = NULL, *tok;
    snprintf(copy, sizeof(copy), "%s", line);
    for (tok = strtok_r(copy, " \t\r", &save); tok != NULL && nf < 8;
         tok = strtok_r(NULL, " \t\r", &save)) {
        f[nf++] = tok;
    }
    if (nf == 0) {
        reply(c, "err empty command");
        return;
    }
    c->busy = true;
    snprintf(c->cmd, sizeof(c->cmd), "%s", f[0]);
    if (strcmp(f[0], "id") == 0) {
        reply(c, "ok %s", N.self);
    } else if (strcmp(f[0], "version") == 0) {
        reply(c, "ok p2praft (hashicorp wire)");
    } else if (strcmp(f[0], "status") == 0) {
        const char *l = leader_str();
        reply(c,
              "ok state=%s leader=%s term=%llu last_index=%llu "
              "commit_index=%llu applied_index=%llu last_snapshot=%llu/0",
              state_name(), l[0] != 0 ? l : "none",
              (unsigned long long)raft_current_term(&N.raft),
              (unsigned long long)raft_last_index(&N.raft),
              (unsigned long long)N.raft.commit_index,
              (unsigned long long)raft_last_applied(&N.raft),
              (unsigned long long)(p2praft_consensus_snapshots(N.c) +
                                   p2praft_consensus_restored(N.c)));
    } else if (strcmp(f[0], "leader") == 0) {
        const char *l = leader_str();
        reply(c, "ok %s", l[0] != 0 ? l : "none");
    } else if (strcmp(f[0], "config") == 0) {
        char out[LINE_MAX_] = "";
        unsigned i;
        for (i = 0; i < N.raft.configuration.n; i++) {
            const struct raft_server *s = &N.raft.configuration.servers[i];
            const char *role = s->role == RAFT_VOTER     ? "voter"
                               : s->role == RAFT_STANDBY ? "nonvoter"
                                                         : "staging";
            snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s=%s",
                     i > 0 ? " " : "", s->address, role);
        }
        reply(c, "ok %s", out);
    } else if (strcmp(f[0], "state") == 0) {
        void *st = NULL;
        rv = p2praft_consensus_get_current_state(N.c, &st);
        if (rv != 0) {
            reply(c, "err %s", err_text(rv));
            return;
        }
        json_of(st, js, sizeof(js));
        p2praft_value_destroy(N.st, st);
        reply(c, "ok %s", js);
    } else if (strcmp(f[0], "commit-state") == 0 ||
               strcmp(f[0], "rollback") == 0) {
        void *st = NULL;
        arg_rest(line, f[0], arg, sizeof(arg));
        rv = state_arg(arg, &st);
        if (rv != 0) {
            reply(c, "err %s", N.st == &value_type
                                   ? "consensus mode: the state is an "
                                     "integer Value"
                                   : p2praft_strerror(rv));
            return;
        }
        rv = f[0][0] == 'r'
                 ? p2praft_consensus_rollback(N.c, st, committed, c)
                 : p2praft_consensus_commit_state(N.c, st, committed, c);
        p2praft_value_destroy(N.st, st);
        if (rv != 0) {
            reply(c, "err %s", p2praft_strerror(rv));
        }
    } else if (strcmp(f[0], "commit-op") == 0) {
        if (strcmp(N.mode, "oplog") == 0) {
            struct append_op op;
            arg_rest(line, f[0], arg, sizeof(arg));
            op.Append = arg;
            rv = p2praft_consensus_commit_op(N.c, &op, committed, c);
        } else if (strcmp(N.mode, "oplog-bad") == 0) {
            struct bad_op op = {0};
            rv = p2praft_consensus_commit_op(N.c, &op, committed, c);
        } else {
            reply(c, "err commit-op needs -mode oplog or oplog-bad");
            return;
        }
        if (rv != 0) {
            reply(c, "err %s", p2praft_strerror(rv));
        }
    } else if (strcmp(f[0], "example") == 0) {
        struct value_state v = {0};
        if (N.st != &value_type || f[1] == NULL) {
            reply(c, "err usage: example N (consensus mode)");
            return;
        }
        c->count = atoi(f[1]);
        c->done_n = 0;
        c->last = 0;
        if (c->count <= 0) {
            reply(c, "ok 0");
            return;
        }
        rv = p2praft_consensus_commit_state(N.c, &v, committed, c);
        if (rv != 0) {
            reply(c, "err after 0 updates: %s", p2praft_strerror(rv));
        }
    } else if (strcmp(f[0], "barrier") == 0) {
        c->barrier.data = c;
        rv = raft_barrier(&N.raft, &c->barrier, barrier_cb);
        if (rv != 0) {
            reply(c, "err %s", raft_strerror(rv));
        }
    } else if (strcmp(f[0], "add-voter") == 0 ||
               strcmp(f[0], "add-nonvoter") == 0 ||
               strcmp(f[0], "remove") == 0) {
        struct lp2p_peer_id pid;
        char s[LP2P_PEER_ID_STRMAX];
        if (f[1] == NULL || server_arg(f[1], &pid) != 0) {
            reply(c, "err usage: %s ID|MA", f[0]);
            return;
        }
        lp2p_peer_id_to_string(&pid, s, sizeof(s));
        c->target = p2praft_server_id(&pid);
        c->change.data = c;
        if (f[0][0] == 'r') {
            c->role = -1;
            rv = raft_remove(&N.raft, &c->change, c->target, change_cb);
        } else {
            c->role = f[0][4] == 'v' ? RAFT_VOTER : RAFT_STANDBY;
            rv = raft_add(&N.raft, &c->change, c->target, s, change_cb);
        }
        if (rv != 0) {
            reply(c, "err %s", raft_strerror(rv));
        }
    } else if (strcmp(f[0], "transfer") == 0) {
        raft_id id = 0;
        if (f[1] != NULL) {
            struct lp2p_peer_id pid;
            if (server_arg(f[1], &pid) != 0) {
                reply(c, "err bad peer ID");
                return;
            }
            id = p2praft_server_id(&pid);
        }
        c->transfer.data = c;
        rv = raft_transfer(&N.raft, &c->transfer, id, transfer_cb);
        if (rv != 0) {
            reply(c, "err %s", raft_strerror(rv));
        }
    } else if (strcmp(f[0], "set-snapshot") == 0) {
        if (f[1] == NULL) {
            reply(c, "err usage: set-snapshot THRESHOLD INTERVAL TRAILING");
            return;
        }
        raft_set_snapshot_threshold(&N.raft, (unsigned)atoi(f[1]));
        if (f[3] != NULL) {
            raft_set_snapshot_trailing(&N.raft, (unsigned)atoi(f[3]));
        }
        reply(c, "ok");
    } else if (strcmp(f[0], "snapshot") == 0) {
        reply(c, "err libraft snapshots on its threshold only: "
                 "use set-snapshot");
    } else if (strcmp(f[0], "peer-add") == 0) {
        struct lp2p_peer_id pid;
        if (f[1] == NULL || server_arg(f[1], &pid) != 0) {
            reply(c, "err usage: peer-add MA");
            return;
        }
        reply(c, "ok");
    } else if (strcmp(f[0], "wait-leader") == 0 ||
               strcmp(f[0], "wait-state-leader") == 0 ||
               strcmp(f[0], "wait-applied") == 0) {
        const char *d = f[1];
        if (strcmp(f[0], "wait-applied") == 0) {
            if (f[1] == NULL) {
                reply(c, "err usage: wait-applied INDEX TIMEOUT");
                return;
            }
            c->arg = strtoull(f[1], NULL, 10);
            d = f[2];
        }
        c->deadline = uv_now(N.loop) + dur_ms(d);
        if (!c->timer_on) {
            uv_timer_init(N.loop, &c->timer);
            c->timer.data = c;
            c->timer_on = true;
        }
        uv_timer_start(&c->timer, wait_tick, 0, 10);
    } else if (strcmp(f[0], "shutdown") == 0) {
        quitting = true;
        reply(c, "ok");
    } else {
        reply(c, "err unknown command \"%s\" (try help)", f[0]);
    }
}

/* ---- control socket -------------------------------------------------------- */

static void conn_freed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (c->timer_on) {
        c->timer_on = false;
        uv_close((uv_handle_t *)&c->timer, conn_freed);
        return;
    }
    free(c);
}

static void alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    static char tmp[65536];
    (void)h;
    (void)sz;
    *b = uv_buf_init(tmp, sizeof(tmp));
}

/* Run the next whole line in the buffer, if idle. */
static void conn_next(struct conn *c)
{
    char *nl;
    while (!c->busy && !c->closing &&
           (nl = memchr(c->buf, '\n', c->len)) != NULL) {
        char line[LINE_MAX_];
        size_t k = (size_t)(nl - c->buf);
        memcpy(line, c->buf, k);
        line[k] = 0;
        memmove(c->buf, nl + 1, c->len - k - 1);
        c->len -= k + 1;
        command(c, line);
    }
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;
    if (n < 0) {
        if (!c->busy) {
            c->closing = true;
            uv_close((uv_handle_t *)&c->pipe, conn_freed);
        } else {
            uv_read_stop(s);
        }
        return;
    }
    if ((size_t)n > sizeof(c->buf) - c->len) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->pipe, conn_freed);
        return;
    }
    memcpy(c->buf + c->len, b->base, (size_t)n);
    c->len += (size_t)n;
    conn_next(c);
}

static void on_conn(uv_stream_t *server, int status)
{
    struct conn *c;
    if (status != 0) {
        return;
    }
    c = calloc(1, sizeof(*c));
    uv_pipe_init(N.loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        uv_close((uv_handle_t *)&c->pipe, conn_freed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

static void on_sigterm(uv_signal_t *s, int sig)
{
    (void)s;
    (void)sig;
    _exit(0);
}

/* ---- main ---------------------------------------------------------------------- */

/* "300ms", "1s" or bare milliseconds. */
static unsigned parse_ms(const char *v)
{
    return strchr(v, 's') != NULL ? (unsigned)dur_ms(v) : (unsigned)atoi(v);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: c-raftnode [-key FILE] [-listen MA] [-peer MA]... "
            "[-bootstrap] -control SOCK\n"
            "                  [-mode consensus|oplog|oplog-bad] "
            "[-heartbeat MS] [-election MS]\n"
            "                  [-snapshot-threshold N] [-trailing-logs N] "
            "[-prevote]\n"
            "                  [-wire hashicorp|p2praft] [-log LEVEL]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *keyfile = NULL, *listen = "/ip4/127.0.0.1/tcp/0";
    const char *control = NULL, *peers[MAX_PEERS];
    size_t n_peers = 0, i;
    bool bootstrap = false, prevote = false;
    unsigned heartbeat = 30, election = 300, threshold = 8192, trailing = 1024;
    enum p2praft_wire wire = P2PRAFT_WIRE_HASHICORP;
    struct lp2p_host_config hcfg;
    struct p2praft_io_config icfg;
    char addr[LP2P_MULTIADDR_STRMAX];
    int rv, a;
    N.mode = "consensus";
    for (a = 1; a < argc; a++) {
        const char *o = argv[a];
        const char *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (o[0] == '-' && o[1] == '-') {
            o++;
        }
        if (strcmp(o, "-bootstrap") == 0) {
            bootstrap = true;
            continue;
        }
        if (strcmp(o, "-prevote") == 0) {
            prevote = true;
            continue;
        }
        if (v == NULL) {
            return usage();
        }
        a++;
        if (strcmp(o, "-key") == 0) {
            keyfile = v;
        } else if (strcmp(o, "-listen") == 0) {
            listen = v;
        } else if (strcmp(o, "-peer") == 0 && n_peers < MAX_PEERS) {
            peers[n_peers++] = v;
        } else if (strcmp(o, "-control") == 0) {
            control = v;
        } else if (strcmp(o, "-mode") == 0) {
            N.mode = v;
        } else if (strcmp(o, "-heartbeat") == 0) {
            heartbeat = parse_ms(v);
        } else if (strcmp(o, "-election") == 0) {
            election = parse_ms(v);
        } else if (strcmp(o, "-snapshot-threshold") == 0) {
            threshold = (unsigned)atoi(v);
        } else if (strcmp(o, "-trailing-logs") == 0) {
            trailing = (unsigned)atoi(v);
        } else if (strcmp(o, "-wire") == 0) {
            wire = strcmp(v, "p2praft") == 0 ? P2PRAFT_WIRE_P2PRAFT
                                             : P2PRAFT_WIRE_HASHICORP;
        } else if (strcmp(o, "-log") == 0) {
            enum lp2p_log_level lvl = LP2P_LOG_WARN;
            if (strcmp(v, "debug") == 0) {
                lvl = LP2P_LOG_DEBUG;
            } else if (strcmp(v, "info") == 0) {
                lvl = LP2P_LOG_INFO;
            } else if (strcmp(v, "error") == 0) {
                lvl = LP2P_LOG_ERROR;
            }
            p2praft_log_set(lvl, NULL, NULL);
        } else {
            return usage();
        }
    }
    if (control == NULL) {
        return usage();
    }
    signal(SIGPIPE, SIG_IGN);
    N.loop = uv_default_loop();
    if (strcmp(N.mode, "consensus") == 0) {
        N.st = &value_type;
        rv = p2praft_consensus_new(&N.c, N.loop, &value_type, NULL);
    } else if (strcmp(N.mode, "oplog") == 0 ||
               strcmp(N.mode, "oplog-bad") == 0) {
        N.st = &msg_type;
        rv = p2praft_oplog_new(&N.c, N.loop, &msg_type,
                               N.mode[5] == '-' ? &bad_op_type
                                                : &append_op_type,
                               NULL);
    } else {
        return usage();
    }
    if (rv != 0 || (wire == P2PRAFT_WIRE_HASHICORP &&
                    p2praft_consensus_set_seed_format(N.c, true) != 0)) {
        fprintf(stderr, "consensus: %s\n", p2praft_strerror(rv));
        return 1;
    }
    rv = keyfile != NULL ? lp2p_key_load(keyfile, &N.key)
                         : lp2p_key_generate(&N.key);
    if (rv == 0) {
        rv = lp2p_peer_id_from_key(&N.key, &N.pid);
    }
    if (rv == 0) {
        rv = lp2p_peer_id_to_string(&N.pid, N.self, sizeof(N.self));
    }
    lp2p_host_config_init(&hcfg);
    hcfg.key = &N.key;
    if (rv == 0) {
        rv = lp2p_host_new(&N.host, N.loop, &hcfg);
    }
    if (rv == 0) {
        rv = lp2p_host_listen(N.host, listen);
    }
    if (rv == 0) {
        rv = lp2p_host_listen_addr(N.host, 0, addr, sizeof(addr));
    }
    if (rv != 0) {
        fprintf(stderr, "host: %s\n", lp2p_strerror(rv));
        return 1;
    }
    p2praft_io_config_init(&icfg);
    icfg.wire = wire;
    icfg.retry_ms = 50;
    if ((rv = p2praft_io_init(&N.io, N.host, &icfg)) != 0) {
        fprintf(stderr, "io: %s\n", p2praft_strerror(rv));
        return 1;
    }
    N.members[N.n_members++] = N.pid;
    for (i = 0; i < n_peers; i++) {
        struct lp2p_peer_id pid;
        if (server_arg(peers[i], &pid) != 0) {
            fprintf(stderr, "bad -peer %s\n", peers[i]);
            return 2;
        }
    }
    p2praft_io_set_members(&N.io, N.members, N.n_members);
    if (raft_init(&N.raft, &N.io, p2praft_consensus_fsm(N.c),
                  p2praft_server_id(&N.pid), N.self) != 0) {
        fprintf(stderr, "raft_init: %s\n", raft_errmsg(&N.raft));
        return 1;
    }
    raft_set_election_timeout(&N.raft, election);
    raft_set_heartbeat_timeout(&N.raft, heartbeat);
    raft_set_snapshot_threshold(&N.raft, threshold);
    raft_set_snapshot_trailing(&N.raft, trailing);
    raft_set_pre_vote(&N.raft, prevote || wire == P2PRAFT_WIRE_P2PRAFT);
    if (bootstrap) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        for (i = 0; i < N.n_members; i++) {
            char s[LP2P_PEER_ID_STRMAX];
            lp2p_peer_id_to_string(&N.members[i], s, sizeof(s));
            raft_configuration_add(&conf, p2praft_server_id(&N.members[i]), s,
                                   RAFT_VOTER);
        }
        rv = raft_bootstrap(&N.raft, &conf);
        raft_configuration_close(&conf);
        if (rv != 0) {
            fprintf(stderr, "raft_bootstrap: %s\n", raft_errmsg(&N.raft));
            return 1;
        }
    }
    if (raft_start(&N.raft) != 0) {
        fprintf(stderr, "raft_start: %s\n", raft_errmsg(&N.raft));
        return 1;
    }
    if ((rv = p2praft_actor_new(&N.actor, &N.raft)) != 0) {
        return 1;
    }
    p2praft_consensus_set_actor(N.c, N.actor);
    unlink(control);
    uv_pipe_init(N.loop, &N.ctl, 0);
    if (uv_pipe_bind(&N.ctl, control) != 0 ||
        uv_listen((uv_stream_t *)&N.ctl, 16, on_conn) != 0) {
        fprintf(stderr, "control socket %s: %s\n", control, strerror(errno));
        return 1;
    }
    uv_signal_init(N.loop, &N.sigterm);
    uv_signal_start(&N.sigterm, on_sigterm, SIGTERM);
    printf("id %s\nlisten %s/p2p/%s\nready p2praft %s\n", N.self, addr, N.self,
           N.mode);
    fflush(stdout);
    uv_run(N.loop, UV_RUN_DEFAULT);
    return 0;
}
