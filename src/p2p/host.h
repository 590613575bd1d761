/*
 * Internal structure of the libp2p host (host*.c, peerstore.c, ping.c,
 * identify.c). The host is the only place where bytes meet sockets: it
 * reads from libuv, feeds the sans-I/O machines (multistream, Noise,
 * Yamux) and writes what they produce. The machines never see a socket or
 * a clock.
 *
 * Object graph (all owned by the host, all on the loop thread):
 *
 *   lp2p_host --+-- listeners (a socket of ours + uv_poll each)
 *               +-- dials: one per target peer or address in flight
 *               |     (DNS -> TCP connect -> conn upgrade), with a list of
 *               |     waiters (connect callbacks) that join it
 *               +-- conns: TCP + upgrade state + Yamux session
 *               |     +-- streams (Yamux streams, negotiated by mss)
 *               +-- peerstore, handlers, observers
 *
 * Handles close asynchronously; every object that embeds uv handles counts
 * them and is freed when the count reaches zero. The host is freed when
 * it has no object left and close was requested.
 */
#ifndef LP2P_P2P_HOST_H
#define LP2P_P2P_HOST_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "lp2p.h"
#include "multistream.h"
#include "noise.h"
#include "yamux.h"
#include "../util/buf.h"
#include "../util/list.h"

/* A callback to run on a later loop iteration (never re-entrantly). The
 * owner embeds it, so deferring never allocates and never fails; it must
 * stay valid until `fn` runs, and may be freed inside `fn`. */
struct lp2p_deferred {
    struct lp2p__list link;
    void (*fn)(struct lp2p_host *host, void *arg, int status);
    void *arg;
    int status;
};

/* A multiaddr the host can dial or listen on, decoded from text. */
enum lp2p_addr_kind {
    LP2P_ADDR_IP4 = 4,
    LP2P_ADDR_IP6 = 6,
    LP2P_ADDR_DNS = 1,  /* /dns: any family */
    LP2P_ADDR_DNS4 = 2, /* /dns4 */
    LP2P_ADDR_DNS6 = 3  /* /dns6 */
};

struct lp2p_tcp_addr {
    enum lp2p_addr_kind kind;
    char host[256]; /* literal IP or DNS name */
    uint16_t port;
    int has_peer;
    struct lp2p_peer_id peer;
};

/* Parse text into `out`. LP2P_EBADADDR with a reason in `err` (may be
 * NULL) for anything that is not ip4/ip6/dns/dns4/dns6 + tcp [+ p2p]. */
int lp2p__tcp_addr_parse(const char *text, struct lp2p_tcp_addr *out,
                         char *err, size_t errcap);

/* Text multiaddr of a socket address (/ip4/../tcp/..). */
int lp2p__tcp_addr_format(const struct sockaddr *sa, char *out, size_t cap);

/* Binary multiaddr of the text one (for identify). */
int lp2p__maddr_to_bytes(const char *text, struct lp2p_buf *out);
/* Text of a binary multiaddr (for identify). */
int lp2p__maddr_to_text(const uint8_t *p, size_t len, char *out, size_t cap);

/* ---------------------------------------------------------------------
 * Peerstore
 */
struct lp2p_ps_addr {
    char *text;      /* without /p2p */
    uint64_t expiry; /* uv_now() ms; UINT64_MAX: never */
};

struct lp2p_ps_peer {
    struct lp2p_peer_id id;
    struct lp2p_ps_addr *addrs;
    size_t n_addrs;
    int has_pubkey;
    uint8_t pubkey[32];
    int identified;
    char *agent;
    char **protocols;
    size_t n_protocols;
};

struct lp2p_peerstore {
    struct lp2p_ps_peer *peers;
    size_t n, cap;
};

void lp2p__ps_init(struct lp2p_peerstore *ps);
void lp2p__ps_free(struct lp2p_peerstore *ps);
struct lp2p_ps_peer *lp2p__ps_find(struct lp2p_peerstore *ps,
                                   const struct lp2p_peer_id *id);
/* Find or create. NULL on ENOMEM or when the store is full. */
struct lp2p_ps_peer *lp2p__ps_get(struct lp2p_peerstore *ps,
                                  const struct lp2p_peer_id *id);
int lp2p__ps_add_addr(struct lp2p_peerstore *ps,
                      const struct lp2p_peer_id *id, const char *text,
                      uint64_t now, uint64_t ttl_ms);
/* The i-th unexpired address or NULL. */
const char *lp2p__ps_addr(struct lp2p_peerstore *ps,
                          const struct lp2p_peer_id *id, uint64_t now,
                          size_t i);
int lp2p__ps_set_pubkey(struct lp2p_peerstore *ps,
                        const struct lp2p_peer_id *id, const uint8_t pub[32]);
/* Takes `agent` and `protocols` (heap) on success only. */
int lp2p__ps_set_identity(struct lp2p_peerstore *ps,
                          const struct lp2p_peer_id *id, char *agent,
                          char **protocols, size_t n);

/* ---------------------------------------------------------------------
 * Host objects
 */
struct lp2p_conn;

enum lp2p_sec_phase {
    LP2P_SEC_MSS = 0, /* multistream for the security protocol */
    LP2P_SEC_NOISE,   /* Noise XX handshake */
    LP2P_SEC_MUX_MSS, /* multistream for /yamux/1.0.0, inside Noise */
    LP2P_SEC_MUXED    /* Yamux session running */
};

/* Upgrade, secure channel and muxer state of one connection. */
struct lp2p_sec {
    enum lp2p_sec_phase phase;
    struct lp2p_mss mss;
    struct lp2p_noise_hs hs;
    int hs_init;
    struct lp2p_noise_transport tr;
    int tr_init;
    struct lp2p__yamux_session *ymx;
    int inlined;
    int in_feed;  /* inside lp2p__yamux_feed(): flush afterwards */
    int dirty;    /* yamux may have output to pull */
    struct lp2p_buf out;   /* bytes for the socket */
    struct lp2p_buf plain; /* decrypted bytes not yet fed */
    uint8_t pull[LP2P_NOISE_MAX_PLAIN];
};

enum lp2p_stream_phase {
    LP2P_STREAM_NEGOTIATING = 0,
    LP2P_STREAM_OPEN,
    LP2P_STREAM_DEAD /* destroyed, waiting for its timer to close */
};

struct lp2p_swreq {
    struct lp2p__list link;
    const uint8_t *buf;
    size_t len, off;
    lp2p_stream_write_cb cb;
    void *data;
    int status;
};

struct lp2p_stream {
    struct lp2p__list link; /* in conn->streams */
    struct lp2p_host *host;
    struct lp2p_conn *conn; /* NULL once the connection is gone */
    struct lp2p__yamux_stream *ys; /* NULL once released */
    struct lp2p_peer_id peer;
    enum lp2p_stream_phase phase;
    int inbound;
    int owned;       /* handed to the application */
    struct lp2p_mss *mss;
    char **protos;   /* outbound proposals (copies) */
    size_t n_protos;
    char *protocol;
    lp2p_stream_open_cb open_cb;
    void *open_data;
    lp2p_stream_read_cb read_cb;
    int reading;
    struct lp2p_buf rbuf;  /* received, not yet delivered */
    size_t unconsumed;     /* bytes delivered/buffered not yet credited */
    int rstatus;           /* terminal read status to deliver, 0: none */
    int rdone;             /* terminal status delivered */
    int remote_fin;
    int reset;             /* non-zero: the status that killed it */
    struct lp2p__list wq;   /* lp2p_swreq pending */
    struct lp2p__list wdone;/* completed, callbacks to run */
    size_t wq_bytes;
    int fin_wanted;        /* close_write() called: FIN after wq */
    int fin_sent;
    int app_closed;
    lp2p_stream_close_cb close_cb;
    void *close_data;
    uv_timer_t timer; /* negotiation timeout, deadline, close linger */
    int timer_purpose;
    int jobs;              /* deferred jobs referring to this stream */
    int job_flags;
    struct lp2p_deferred job;
    int destroyed;
    void *user;
};

struct lp2p_handler {
    char *protocol;
    lp2p_protocol_match match;
    lp2p_stream_handler handler;
    void *data;
};

struct lp2p_observer {
    lp2p_conn_event_cb cb;
    void *data;
    int removed;
};

struct lp2p_listener {
    struct lp2p__list link;
    struct lp2p_host *host;
    int fd;          /* the listening socket, ours */
    uv_poll_t poll;  /* readable: connections to accept */
    uv_timer_t pause; /* out of descriptors: accepting resumes later */
    int handles;     /* open uv handles; freed at 0 */
    char addr[LP2P_MULTIADDR_STRMAX]; /* as bound */
    /* What we advertise: `addr`, or for 0.0.0.0 / :: one address per
     * interface of that family, with the bound port. */
    char **addrs;
    size_t n_addrs;
};

/* The i-th advertised listen address of the host, or NULL past the end. */
const char *lp2p__listen_addr(const struct lp2p_host *host, size_t i);

/* Someone waiting for a connection to a peer. */
struct lp2p_waiter {
    struct lp2p__list link;
    lp2p_connect_cb cb;
    void *data;
};

/* A dial in flight: resolve, connect, upgrade. */
struct lp2p_dial {
    struct lp2p__list link;
    struct lp2p_host *host;
    struct lp2p_tcp_addr addr;
    char *text;                 /* the multiaddr dialed */
    struct lp2p__list waiters;   /* lp2p_waiter */
    uv_getaddrinfo_t gai;
    int resolving;
    struct addrinfo *ai_list;   /* results, tried in turn */
    struct addrinfo *ai_next;
    struct lp2p_conn *conn;     /* the current attempt */
    int last_error;
    /* connect_peer: remaining peerstore addresses to try */
    char **fallback;
    size_t n_fallback, i_fallback;
};

enum lp2p_conn_state {
    LP2P_CONN_S_CONNECTING = 0, /* TCP connect in flight */
    LP2P_CONN_S_UPGRADING,      /* mss / noise / muxer negotiation */
    LP2P_CONN_S_READY,          /* Yamux running */
    LP2P_CONN_S_CLOSING         /* handles closing */
};

/* Bytes the socket did not take yet; the bytes follow the struct. */
struct lp2p_chunk {
    struct lp2p__list link;
    size_t len, off;
    uint8_t data[];
};

struct lp2p_conn {
    struct lp2p__list link;
    struct lp2p__list plink; /* in host->pending while counted_pending */
    struct lp2p_host *host;
    int fd;           /* the TCP socket, ours; -1 once closed */
    uv_poll_t poll;   /* readiness of fd */
    int poll_events;  /* UV_READABLE / UV_WRITABLE being watched */
    uv_timer_t timer; /* handshake, then idle and first-protocol limits */
    uv_timer_t keepalive;
    int ping_outstanding;
    int handles;      /* open uv handles and pending jobs; freed at 0 */
    int inbound;
    enum lp2p_conn_state state;
    int counted_pending;     /* inbound handshake: in host->pending */
    int counted_unprotected; /* inbound, peer not protected: capped */
    int negotiated;          /* a stream negotiated a protocol on it */
    int draining;        /* lost a simultaneous dial: no new streams */
    int close_status;
    int fail_status;     /* a write failed: the close is on its way */
    struct lp2p_deferred job; /* connect refused at once, write failure */
    struct lp2p_dial *dial; /* outbound: the dial that owns this attempt */
    struct lp2p_peer_id peer; /* valid from Noise on */
    int has_expected;
    struct lp2p_peer_id expected;
    uint8_t ip[16];  /* remote address: 4 bytes (IPv4) or 16 */
    uint8_t ip_len;
    char local_addr[LP2P_MULTIADDR_STRMAX];
    char remote_addr[LP2P_MULTIADDR_STRMAX];
    struct lp2p_sec *sec;
    struct lp2p__list streams;
    uint32_t n_in_streams, n_out_streams;
    struct lp2p__list wq;   /* struct lp2p_chunk, oldest first */
    uint64_t write_queued; /* bytes in wq */
    uint64_t idle_since;
    uint64_t ready_at;     /* uv_now() when the upgrade finished */
    int ready_announced;
};

/* What the connection limits did (host_limits.c), counted per kind. */
enum lp2p_limit_kind {
    LP2P_LIM_EVICTED_PENDING = 0, /* handshakes evicted for newer ones */
    LP2P_LIM_REFUSED_UNPROTECTED, /* over max_unprotected_conns */
    LP2P_LIM_REFUSED_FULL,        /* over max_conns, nothing to evict */
    LP2P_LIM_EVICTED_FOR_PROTECTED, /* unprotected conns closed for one */
    LP2P_LIM_CLOSED_NO_PROTOCOL,  /* no stream negotiated in time */
    LP2P_LIM_ACCEPT_FAILED,       /* out of descriptors or memory */
    LP2P_LIM_N
};

struct lp2p_host {
    uv_loop_t *loop;
    struct lp2p_host_config cfg;
    char *agent;
    struct lp2p_key key;
    struct lp2p_peer_id id;
    char id_str[LP2P_PEER_ID_STRMAX];
    struct lp2p__list listeners;
    struct lp2p__list conns;
    struct lp2p__list dials;
    struct lp2p__list pending; /* inbound conns in handshake, oldest first */
    struct lp2p_handler *handlers;
    size_t n_handlers;
    struct lp2p_observer *observers;
    size_t n_observers;
    int notifying;
    struct lp2p_peerstore ps;
    uint32_t n_conns;       /* every conn, any state */
    uint32_t n_pending;     /* inbound, handshake not finished */
    uint32_t n_unprotected; /* inbound, ready, peer not protected */
    struct lp2p_peer_id *protected_peers; /* lp2p_host_protect() */
    size_t n_protected;
    uint64_t lim[LP2P_LIM_N];       /* since the last report */
    uint64_t lim_total[LP2P_LIM_N]; /* since the host started */
    uv_timer_t lim_timer;   /* the next report, while counts wait */
    uint64_t lim_reported;  /* uv_now() of the last report */
    uint64_t bytes_in, bytes_out; /* socket bytes read and written */
    int lim_ever;           /* a report was made */
    int closing;
    lp2p_host_close_cb close_cb;
    void *close_data;
    int objects;        /* live listeners, conns, dials, timers */
    uv_idle_t reaper;   /* runs deferred callbacks and the final free */
    int reaper_active;
    /* Busy polling (cfg.busy_poll_us > 0 only: otherwise never
     * initialised). Unref'd; while started, uv_run polls with timeout 0. */
    uv_idle_t busy;
    int busy_active;
    uint64_t busy_ns;   /* cfg.busy_poll_us in ns; 0: off */
    uint64_t busy_last; /* uv_hrtime() of the last activity */
    struct lp2p__list deferred; /* struct lp2p_deferred */
    struct lp2p_ping_state *pings;
    uint8_t rbuf[65536 + 1024];
};

void lp2p__host_defer(struct lp2p_host *host, struct lp2p_deferred *d,
                      void (*fn)(struct lp2p_host *, void *, int), void *arg,
                      int status);

/* Busy polling: socket activity now (host.c). Inline, since it runs on
 * every read and write: a compare when busy polling is off. */
void lp2p__host_busy_start(struct lp2p_host *host);
static inline void lp2p__host_busy_kick(struct lp2p_host *host)
{
    if (host->busy_ns != 0) {
        host->busy_last = uv_hrtime();
        if (!host->busy_active) {
            lp2p__host_busy_start(host);
        }
    }
}

/* Object accounting for the asynchronous close. */
void lp2p__host_ref(struct lp2p_host *host);
void lp2p__host_unref(struct lp2p_host *host);

/* host_tcp.c */
int lp2p__dial_start(struct lp2p_host *host, const char *text,
                     const struct lp2p_peer_id *peer, char **fallback,
                     size_t n_fallback, lp2p_connect_cb cb, void *data);
void lp2p__dial_cancel_all(struct lp2p_host *host);
void lp2p__listeners_close(struct lp2p_host *host);
void lp2p__conn_close(struct lp2p_conn *c, int status);
/* Close `c` with `status` from a deferred job: for failures found inside
 * an API call, which must not see the connection vanish under it. */
void lp2p__conn_fail(struct lp2p_conn *c, int status);
int lp2p__conn_write(struct lp2p_conn *c, const uint8_t *p, size_t len);

/* host_limits.c: connection slots, their timers, and the reports */
void lp2p__limits_init(struct lp2p_host *host);
/* Report what is left and close the report timer (host close). */
void lp2p__limits_close(struct lp2p_host *host);
int lp2p__host_is_protected(const struct lp2p_host *host,
                            const struct lp2p_peer_id *peer);
/* An inbound connection from `ip` is being accepted: make room among the
 * pending handshakes (evicting the oldest of the busiest address). */
void lp2p__limits_accept(struct lp2p_host *host, const uint8_t *ip,
                         size_t ip_len);
/* The handshake of `c` finished: 0 if it may stay, LP2P_ELIMIT if not
 * (the caller closes it). May evict an unprotected connection. */
int lp2p__limits_admit(struct lp2p_conn *c);
/* A dial to `peer` (NULL: unknown) wants a slot: 0 or LP2P_ELIMIT. */
int lp2p__limits_dial(struct lp2p_host *host,
                      const struct lp2p_peer_id *peer);
/* `c` closes: it leaves the counters. */
void lp2p__limits_conn_gone(struct lp2p_conn *c);
/* Count one event of `kind`; reports at warn level, rate-limited. */
void lp2p__limits_note(struct lp2p_host *host, enum lp2p_limit_kind kind);
/* The upgrade finished: the conn's timer now watches for idleness and,
 * for an unprotected inbound one, for a first protocol. */
void lp2p__conn_ready_timers(struct lp2p_conn *c);
/* Re-arm the conn's idle/first-protocol timer after a change. */
void lp2p__conn_timer_arm(struct lp2p_conn *c);
void lp2p__conn_touch(struct lp2p_conn *c);
/* No new streams; close DRAIN_GRACE_MS after the last one. */
void lp2p__conn_drain(struct lp2p_conn *c);

/* host_conn.c: called by the TCP layer */
int lp2p__conn_upgrade_start(struct lp2p_conn *c);
/* Feed bytes read from the socket. An error closes the connection. */
int lp2p__conn_feed(struct lp2p_conn *c, const uint8_t *p, size_t len);
void lp2p__conn_sec_free(struct lp2p_conn *c);
/* The write queue drained below the limit: let streams write again. */
void lp2p__conn_writable(struct lp2p_conn *c);
/* The connection closes: fail every stream. */
void lp2p__conn_streams_abort(struct lp2p_conn *c, int status);

/* host.c: connection life events */
void lp2p__host_conn_ready(struct lp2p_conn *c);
void lp2p__host_conn_gone(struct lp2p_conn *c, int status);
struct lp2p_conn *lp2p__host_find_conn(const struct lp2p_host *host,
                                       const struct lp2p_peer_id *peer);
const struct lp2p_handler *lp2p__host_match(const struct lp2p_host *host,
                                            const char *protocol);
void lp2p__host_notify(struct lp2p_host *host, struct lp2p_conn *c,
                       enum lp2p_conn_event ev, int status);

/* host_stream.c: Yamux events of one connection */
void lp2p__stream_inbound(struct lp2p_conn *c, struct lp2p__yamux_stream *ys);
void lp2p__stream_on_data(struct lp2p_stream *s, const uint8_t *p, size_t n);
void lp2p__stream_on_fin(struct lp2p_stream *s);
void lp2p__stream_on_reset(struct lp2p_stream *s);
void lp2p__stream_on_writable(struct lp2p_stream *s);
void lp2p__stream_conn_lost(struct lp2p_stream *s, int status);
/* host_conn.c: pull and send what the session queued */
void lp2p__conn_kick(struct lp2p_conn *c);
/* Send a Yamux keepalive PING now (its ACK clears ping_outstanding). */
int lp2p__conn_ping(struct lp2p_conn *c);
/* host_tcp.c */
void lp2p__dial_done(struct lp2p_dial *d, struct lp2p_conn *c);

/* Services */
void lp2p__ping_handler(struct lp2p_stream *s, void *data);
void lp2p__identify_handler(struct lp2p_stream *s, void *data);
void lp2p__ping_free_all(struct lp2p_host *host);
/* Parse length-prefixed Identify messages until the end of `p` and merge
 * them, as the initiator does; counts what was kept. 0, LP2P_EPROTO
 * (framing, size, count, malformed protobuf), LP2P_EPEERID (publicKey of
 * another peer), LP2P_EBADKEY, LP2P_ENOMEM. */
int lp2p__identify_check(const struct lp2p_peer_id *peer, const uint8_t *p,
                         size_t len, size_t *n_protocols, size_t *n_addrs);
int lp2p__identify_build(struct lp2p_host *host, const char *observed,
                         struct lp2p_buf *out);

#endif
