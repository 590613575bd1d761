/*
 * Internals of p2praft's raft_io (io.c: the raft_io methods, libraft
 * glue; io_store.c: storage, its stall detection, fast start; io_recv.c:
 * receiving, the snapshot shield; io_int.h: what those three share;
 * transport.c: messages on libp2p streams, admission, the election hint).
 * See p2praft.h, "Raft I/O over libp2p", for the contract.
 */
#ifndef P2PRAFT_RAFT_IO_H
#define P2PRAFT_RAFT_IO_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "p2praft.h"

struct pio;
struct tpeer;
struct tstream;
struct hcnet;

/* Work run at the end of the current loop turn (check or idle phase). */
struct p2praft__work {
    struct p2praft__work *next;
    void (*fn)(struct p2praft__work *w, int status);
};

/* The message transport (transport.c). */
struct p2praft__net {
    struct pio *io;
    struct lp2p_host *host;
    struct tpeer *peers;      /* every peer we talk to */
    struct tstream *streams;  /* every raft stream we hold */
    struct creq *creqs;       /* dials in flight */
    bool listening;
    bool observing;
    bool closing;
    bool hint_enabled;
    bool drop;                /* test hook: the node is cut off */
    p2praft_admit_fn admit;
    void *admit_ctx;
    struct lp2p_peer_id *members;
    size_t n_members;
    uint64_t members_gen;     /* bumped on every p2praft_io_set_members() */
    void (*closed_cb)(struct p2praft__net *n);
    bool hashicorp;           /* the /raft/1.0.0/rpc mode (hctransport.c) */
    struct hcnet *hc;
    bool hc_closed;
};

struct pio {
    struct raft_io *io; /* the raft_io implemented here */
    struct lp2p_host *host;
    uv_loop_t *loop;
    struct p2praft_io_config cfg; /* dir: copied */
    char *dir;
    struct p2praft__net net;

    /* storage */
    struct raft_io store;
    struct p2praft_memstore *mem;
    bool mem_owned;
    struct raft_uv_transport *null_tp; /* DISK: raft_uv's idle transport */
    bool store_ready;

    /* identity and raft's callbacks */
    raft_id id;
    char address[LP2P_PEER_ID_STRMAX];
    raft_io_tick_cb tick_cb;
    raft_io_recv_cb recv_cb;
    raft_term last_term; /* term of the last log entry (0: unknown) */
    /* Sees every message before raft does (p2praft__io_set_observer). */
    void (*observer)(void *ctx, const struct raft_message *m);
    void *observer_ctx;
    bool inited; /* io_init ran: the handles exist */
    bool started;

    /* handles */
    uv_timer_t tick;
    unsigned tick_ms;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_idle_t idle;
    unsigned handles_open;
    struct p2praft__work *work, *work_tail;
    bool draining;

    /* snapshot shield (libraft 0.22.1) */
    bool shield;
    unsigned puts_taking;      /* snapshot_put of a snapshot raft took */
    bool put_installing;       /* snapshot_put of an installed snapshot */
    bool delivering_install;   /* inside recv_cb(InstallSnapshot) */
    bool has_held;
    struct raft_message held;  /* an InstallSnapshot waiting for a take */
    char held_address[LP2P_PEER_ID_STRMAX];

    /* this node was removed from the cluster (p2praft__io_set_retired):
     * no election timeout, no RequestVote */
    bool retired;

    /* local storage health: appends handed to the store and not yet
     * completed (raft_uv retries a failed write, e.g. on a full disk,
     * until it succeeds, and queues every later append behind it) */
    unsigned appends_pending;
    uint64_t append_entries_pending;
    uint64_t append_bytes_pending;
    bool append_progress;        /* one completed since the last tick */
    uint64_t watch_ms;           /* the last tick's time */
    uint64_t stall_ms;           /* loop time with appends and no progress */
    bool stall_logged;
    uint64_t stall_since_ms;
    uint64_t transfer_ms;        /* when we last asked for a transfer */
    struct xfer *xfer;           /* our raft_transfer in flight */

    /* fast start: a freshly bootstrapped cluster elects at once */
    bool fresh;

    /* members, for lp2p_host_protect() */
    raft_index conf_committed_seen, conf_uncommitted_seen;
    unsigned conf_n_seen;
    struct lp2p_peer_id *prot; /* the peers this io protects */
    size_t n_prot;

    uint64_t rng;
    struct p2praft_io_stats stats;

    /* close */
    bool closing;
    bool net_closed, store_closed;
    raft_io_close_cb close_cb;
};

/* ---- io.c, io_store.c, io_recv.c, for transport.c (and tests) ---- */

/* Fire raft's completed client requests (apply, barrier, change, transfer
 * callbacks), oldest first: in libraft 0.22's raft_io mode that is the io's
 * job, after every call into raft. */
void p2praft__raft_fire_requests(struct raft *r);

/* Queue `w` to run at the end of this loop turn. */
void p2praft__io_defer(struct pio *p, struct p2praft__work *w);

/* A message arrived from peer (server_id and server_address are set): hand
 * it to raft (now, or once a snapshot being taken is stored). Ownership of
 * what it points at passes to this call. */
void p2praft__io_recv(struct pio *p, struct raft_message *m);

/* Tick raft now (then every tick period again). */
void p2praft__io_tick_now(struct pio *p);

/* The raft instance this io serves (io->data once raft_init ran), or NULL. */
struct raft *p2praft__io_raft(struct pio *p);

/* Local storage has stopped writing: appends pending with no progress for
 * P2PRAFT__STALL_MS, counted over ticks only (a tick late because the loop
 * was busy counts for two at most: a blocked loop is no storage stall).
 * The node then sends no RequestVote (it must not lead
 * while it cannot write), drops AppendEntries that carry entries (they
 * would only grow the backlog), and, as a leader, hands leadership over. */
#define P2PRAFT__STALL_MS 1000
bool p2praft__io_stalled(struct pio *p);

/* May this node ask for votes? Not while its storage is stalled, nor once
 * it was removed from the cluster (retired). */
bool p2praft__io_may_campaign(struct pio *p);

/* ---- transport.c, for io.c ---- */

void p2praft__net_init(struct p2praft__net *n, struct pio *io,
                       struct lp2p_host *host);
/* Observe the host's connections (the election hint); from io init on. */
int p2praft__net_observe(struct p2praft__net *n);
int p2praft__net_listen(struct p2praft__net *n);
/* Send m (borrowed until cb) to its server: 0, or a raft error when the
 * message can never be sent (cb then not called). */
int p2praft__net_send(struct p2praft__net *n, struct raft_io_send *req,
                      const struct raft_message *m, raft_io_send_cb cb);
/* Close every stream and dial; closed_cb once nothing refers to n. */
void p2praft__net_close(struct p2praft__net *n,
                        void (*closed_cb)(struct p2praft__net *n));
/* Free what is left (after close, or when never started). */
void p2praft__net_free(struct p2praft__net *n);
/* The peer of a raft server address: a peer ID string, or a multiaddr
 * ending in /p2p/<peer id> (a member added with its address). 0, or
 * LP2P_EINVAL when it is neither. */
int p2praft__addr_peer(const char *address, struct lp2p_peer_id *out);

bool p2praft__net_admits(struct p2praft__net *n,
                         const struct lp2p_peer_id *peer);

/* What p2praft__net_still_admits() last found for a stream's peer, and
 * under which configuration and member list. Zeroed: nothing found yet. */
struct p2praft__admit_cache {
    bool admitted;
    raft_index ci, ui; /* configuration committed, uncommitted index */
    uint64_t gen;      /* members_gen */
};

/* Is the peer of an open stream still admitted? Admission is checked when a
 * stream opens, but a member removed from the configuration keeps the
 * streams it held while it was one: the transports ask again for every
 * message on them, and refuse it (closing the stream) as a stream it opened
 * now would be. Looked up anew only when the configuration or the member
 * list moved since the cache's last look, and always with an admit hook. */
bool p2praft__net_still_admits(struct p2praft__net *n,
                               const struct lp2p_peer_id *peer,
                               struct p2praft__admit_cache *c);

/* The hashicorp mode's streams are all closed (hctransport.c, at close). */
void p2praft__net_hc_closed(struct p2praft__net *n);

/* ---- test hooks ---- */

/* The memory store of an io (NULL for DISK). */
struct p2praft_memstore *p2praft__io_memstore(struct raft_io *io);
/* raft_uv's raft_io under an io with the disk store (NULL for MEM), which
 * the io passes every storage call to: bench_e2e wraps its append to count
 * the appends that reach raft_uv. */
struct raft_io *p2praft__io_raft_uv(struct raft_io *io);
/* Switch the snapshot shield off (to reproduce libraft's races). */
void p2praft__io_set_shield(struct raft_io *io, bool on);
/*
 * This node was removed from the cluster (members.c): from now on raft
 * gets no election timeout unless it leads, and its RequestVotes
 * (pre-votes included) are withheld (counted in votes_withheld), so a
 * removed node that never received the entry removing it cannot disrupt
 * the cluster with elections. false undoes it (a member again).
 */
void p2praft__io_set_retired(struct raft_io *io, bool retired);
/*
 * libraft 0.22.1 workaround (io_store.c, its comment says more), called by this
 * io's append with the entries libraft hands it: when `r` is a follower
 * whose batch holds a configuration entry that is not its first, and
 * libraft recorded the batch's first index as the uncommitted
 * configuration's, set that index to the batch's last configuration
 * entry's. true when it was changed.
 */
bool p2praft__io_fix_conf_index(struct raft *r,
                                const struct raft_entry entries[],
                                unsigned n);
/* Cut the node off: every message to or from it is dropped. */
void p2praft__io_set_drop(struct raft_io *io, bool drop);
/*
 * For the consensus layer: true when raft_io `io` is p2praft's and its
 * storage is stalled or holds more unwritten entries than it may
 * (p2praft__io_stalled(), or 256 entries or 16 MiB not yet written);
 * `why` (may be NULL) then says which. A new entry must not be submitted:
 * it would only lengthen the backlog that raft_uv re-encodes once the
 * disk writes again.
 */
bool p2praft__io_storage_behind(struct raft_io *io, char *why, size_t len);
/* Raft streams held (not closing), and those we may write on. */
unsigned p2praft__io_streams(struct raft_io *io, unsigned *writable);
unsigned p2praft__net_streams(struct p2praft__net *n, unsigned *writable);

/* Call `fn(ctx, m)` for every message handed to raft, before raft sees
 * it (m borrowed for the call); NULL stops. Loop thread. */
void p2praft__io_set_observer(struct raft_io *io,
                              void (*fn)(void *ctx,
                                         const struct raft_message *m),
                              void *ctx);

/* A raft_uv transport that connects nowhere and listens to nothing: raft_uv
 * as storage only (p2praft's raft I/O; an offline restore). */
void p2praft__null_transport_init(struct raft_uv_transport *t);

#endif
