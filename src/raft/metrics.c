/*
 * Metrics (see metrics.h): counting, and the Prometheus text format.
 *
 * Every family gets its # HELP and # TYPE lines and one sample; the
 * latency histogram gets cumulative _bucket lines with `le` labels, then
 * _sum (seconds) and _count, as the format requires. Names follow
 * Prometheus conventions: a _total suffix on counters, base units
 * (seconds, bytes).
 */
#include <inttypes.h>
#include <raft.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lp2p.h"
#include "raft/metrics.h"

const uint64_t p2praft__metrics_bounds_us[P2PRAFT__METRICS_BUCKETS] = {
    500,    1000,   2500,    5000,    10000,   25000,  50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000};

void p2praft__metrics_commit(struct p2praft__metrics *m, bool ok, uint64_t us)
{
    size_t i;
    if (!ok) {
        m->commit_failures++;
        return;
    }
    m->commits++;
    m->lat_sum_us += us;
    for (i = 0; i < P2PRAFT__METRICS_BUCKETS; i++) {
        if (us <= p2praft__metrics_bounds_us[i]) {
            break;
        }
    }
    m->lat_count[i]++;
}

void p2praft__metrics_state(struct p2praft__metrics *m, int state,
                            uint64_t term)
{
    if ((state == RAFT_CANDIDATE || state == RAFT_LEADER) &&
        term != m->election_term) {
        m->elections++;
        m->election_term = term;
    }
    m->last_state = state;
}

enum kind { COUNTER, GAUGE };

/* One family with a single unlabelled sample, read from the sample
 * struct at `off` (a uint64_t) or, for `flag`, a bool. */
struct family {
    const char *name;
    enum kind kind;
    const char *help;
    size_t off;
    bool flag;
};

#define U(f) offsetof(struct p2praft__metrics_sample, f), false
#define B(f) offsetof(struct p2praft__metrics_sample, f), true

static const struct family families[] = {
    {"p2praft_term", GAUGE, "Current raft term.", U(term)},
    {"p2praft_commit_index", GAUGE, "Highest raft index known committed.",
     U(commit_index)},
    {"p2praft_applied_index", GAUGE, "Highest raft index applied here.",
     U(applied_index)},
    {"p2praft_last_index", GAUGE, "Index of the last entry in the log.",
     U(last_index)},
    {"p2praft_is_leader", GAUGE, "1 when this node is the leader.",
     B(is_leader)},
    {"p2praft_has_leader", GAUGE, "1 when this node knows a leader.",
     B(has_leader)},
    {"p2praft_caught_up", GAUGE,
     "1 once this node applied an index learned from a leader since it "
     "started.",
     B(caught_up)},
    {"p2praft_members", GAUGE, "Servers in the raft configuration.",
     U(members)},
    {"p2praft_peers_reachable", GAUGE,
     "Configured peers connected now.", U(peers_reachable)},
    {"p2praft_keys", GAUGE, "Keys in the store.", U(keys)},
    {"p2praft_snapshots_taken_total", COUNTER,
     "Snapshots this node took.", U(snapshots_taken)},
    {"p2praft_snapshots_installed_total", COUNTER,
     "Snapshots installed from a leader since start.",
     U(snapshots_installed)},
    {"p2praft_snapshot_last_bytes", GAUGE,
     "Size of the last snapshot this node took.", U(snapshot_bytes_last)},
    {"p2praft_snapshot_bytes_total", COUNTER,
     "Bytes of all snapshots this node took.", U(snapshot_bytes_total)},
    {"p2praft_connections", GAUGE, "libp2p connections, in any state.",
     U(connections)},
    {"p2praft_streams", GAUGE, "Open libp2p streams.", U(streams)},
    {"p2praft_api_connections", GAUGE, "Open API socket connections.",
     U(api_connections)},
    {"p2praft_client_connections", GAUGE,
     "Open remote client protocol connections.", U(client_connections)},
    {"p2praft_watches", GAUGE, "Live watches.", U(watches)},
    {"p2praft_received_bytes_total", COUNTER,
     "Bytes read from libp2p sockets.", U(bytes_in)},
    {"p2praft_sent_bytes_total", COUNTER,
     "Bytes written to libp2p sockets.", U(bytes_out)},
    {"p2praft_raft_messages_sent_total", COUNTER,
     "Raft messages written to streams.", U(raft_msgs_sent)},
    {"p2praft_raft_messages_received_total", COUNTER,
     "Raft messages handed to raft.", U(raft_msgs_received)},
    {"p2praft_raft_messages_dropped_total", COUNTER,
     "Raft messages not sent (no connection, full queue).",
     U(raft_msgs_dropped)},
    {"p2praft_forwarded_total", COUNTER,
     "Requests this node forwarded to a leader.", U(forwarded)},
    {"p2praft_served_forwards_total", COUNTER,
     "Forwarded requests this node served as leader.", U(served_forwards)},
};

static int head(struct lp2p_buf *b, const char *name, const char *type,
                const char *help)
{
    int rv = lp2p__buf_printf(b, "# HELP %s %s\n", name, help);
    return rv != 0 ? rv : lp2p__buf_printf(b, "# TYPE %s %s\n", name, type);
}

static int counter(struct lp2p_buf *b, const char *name, const char *help,
                   uint64_t v)
{
    int rv = head(b, name, "counter", help);
    return rv != 0 ? rv : lp2p__buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* Microseconds as seconds, exactly (no floating point). */
static void seconds(char *out, size_t len, uint64_t us)
{
    uint64_t frac = us % 1000000;
    if (frac == 0) {
        snprintf(out, len, "%" PRIu64, us / 1000000);
        return;
    }
    snprintf(out, len, "%" PRIu64 ".%06" PRIu64, us / 1000000, frac);
    /* trim trailing zeros */
    for (size_t n = strlen(out); n > 0 && out[n - 1] == '0'; n--) {
        out[n - 1] = '\0';
    }
}

int p2praft__metrics_render(const struct p2praft__metrics *m,
                            const struct p2praft__metrics_sample *s,
                            struct lp2p_buf *b)
{
    const char *h = "p2praft_commit_latency_seconds";
    char le[32];
    uint64_t cum = 0;
    size_t i;
    int rv = 0;

    for (i = 0; rv == 0 && i < sizeof(families) / sizeof(families[0]); i++) {
        const struct family *f = &families[i];
        const uint8_t *base = (const uint8_t *)s + f->off;
        uint64_t v;
        if (f->flag) {
            v = *(const bool *)(const void *)base ? 1 : 0;
        } else {
            memcpy(&v, base, sizeof(v));
        }
        rv = head(b, f->name, f->kind == COUNTER ? "counter" : "gauge",
                  f->help);
        if (rv == 0) {
            rv = lp2p__buf_printf(b, "%s %" PRIu64 "\n", f->name, v);
        }
    }
    if (rv == 0) {
        rv = counter(b, "p2praft_commits_total",
                     "Writes (set, del, cas) this node answered as applied.",
                     m->commits);
    }
    if (rv == 0) {
        rv = counter(b, "p2praft_commit_failures_total",
                     "Writes answered failed or with an unknown outcome.",
                     m->commit_failures);
    }
    if (rv == 0) {
        rv = head(b, h, "histogram",
                  "Time from a write's arrival to its answer as applied "
                  "(forwarding included).");
    }
    for (i = 0; rv == 0 && i < P2PRAFT__METRICS_BUCKETS; i++) {
        cum += m->lat_count[i];
        seconds(le, sizeof(le), p2praft__metrics_bounds_us[i]);
        rv = lp2p__buf_printf(b, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", h, le,
                              cum);
    }
    if (rv == 0) {
        cum += m->lat_count[P2PRAFT__METRICS_BUCKETS];
        seconds(le, sizeof(le), m->lat_sum_us);
        rv = lp2p__buf_printf(b,
                              "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %s\n"
                              "%s_count %" PRIu64 "\n",
                              h, cum, h, le, h, cum);
    }
    if (rv == 0) {
        rv = counter(b, "p2praft_leader_changes_total",
                     "Leader or term changes this node saw.",
                     m->leader_changes);
    }
    if (rv == 0) {
        rv = counter(b, "p2praft_elections_total",
                     "Elections this node started (terms it stood in).", m->elections);
    }
    if (rv == 0) {
        rv = head(b, "p2praft_refused_total", "counter",
                  "Streams and connections refused, by protocol.");
    }
    if (rv == 0) {
        rv = lp2p__buf_printf(
            b,
            "p2praft_refused_total{protocol=\"raft\"} %" PRIu64 "\n"
            "p2praft_refused_total{protocol=\"forward\"} %" PRIu64 "\n"
            "p2praft_refused_total{protocol=\"client\"} %" PRIu64 "\n"
            "p2praft_refused_total{protocol=\"api\"} %" PRIu64 "\n",
            s->refused_raft, s->refused_forward, s->refused_client,
            s->refused_api);
    }
    return rv;
}
