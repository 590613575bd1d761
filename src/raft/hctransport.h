/*
 * The /raft/1.0.0/rpc mode of the raft I/O (hctransport.c): the same entry
 * points as transport.c's, which dispatches here when the io was made with
 * P2PRAFT_WIRE_HASHICORP.
 */
#ifndef P2PRAFT_RAFT_HCTRANSPORT_H
#define P2PRAFT_RAFT_HCTRANSPORT_H

#include "raft/io.h"

int p2praft__hc_listen(struct p2praft__net *n);
int p2praft__hc_send(struct p2praft__net *n, struct raft_io_send *req,
                     const struct raft_message *m, raft_io_send_cb cb);
/* Close every stream; p2praft__net_hc_closed() once none is left. */
void p2praft__hc_close(struct p2praft__net *n);
void p2praft__hc_free(struct p2praft__net *n);
unsigned p2praft__hc_streams(struct p2praft__net *n, unsigned *writable);

#endif
