/*
 * p2praft_node's typed blocking API (p2praft.h: get, set, del, cas,
 * status, and the membership block: peers, add, remove, transfer,
 * handover): each call builds an API request (api.c), sends it through
 * p2praft_node_call() and maps the response to a return code and a value.
 * It uses nothing of the node but that call; the node itself (lifecycle,
 * loop thread, the call's crossing to the loop) is node.c.
 */
#include <stdio.h>
#include <string.h>

#include "raft/api.h"
#include "util/heap.h"

/* ---- the blocking API ---------------------------------------------------- */

/* Typed calls: build the request, map the response. */
static int kv_call(struct p2praft_node *n, uint8_t op, uint8_t flags,
                   const char *key, const void *exp, size_t elen,
                   const void *val, size_t vlen, uint8_t **out,
                   size_t *out_len, char *errmsg, size_t errmsg_len)
{
    struct p2praft__api_req q;
    struct p2praft__api_resp a;
    uint8_t *frame, *resp = NULL;
    size_t flen = 0, rlen = 0;
    int rv;
    if (errmsg != NULL && errmsg_len > 0) {
        errmsg[0] = '\0';
    }
    memset(&q, 0, sizeof(q));
    q.id = 1; /* one request per call */
    q.op = op;
    q.flags = flags;
    q.key = (char *)key;
    q.exp = (uint8_t *)exp;
    q.elen = elen;
    q.val = (uint8_t *)val;
    q.vlen = vlen;
    if (key != NULL &&
        ((key[0] == '\0' && !p2praft__api_is_member(op)) ||
         strlen(key) > P2PRAFT_KV_KEY_MAX ||
         vlen > P2PRAFT_KV_VALUE_MAX || elen > P2PRAFT_KV_VALUE_MAX)) {
        return LP2P_EINVAL;
    }
    frame = p2praft__api_request_encode(&q, &flen);
    if (frame == NULL) {
        return LP2P_ENOMEM;
    }
    rv = p2praft_node_call(n, frame + P2PRAFT__API_PREFIX,
                           flen - P2PRAFT__API_PREFIX, &resp, &rlen);
    lp2p__free(frame);
    if (rv != 0) {
        return rv;
    }
    if (p2praft__api_response_parse(&a, resp, rlen) != 0) {
        lp2p__free(resp);
        return LP2P_EPROTO;
    }
    rv = p2praft__api_status_code(a.status);
    if (rv != 0 && errmsg != NULL && errmsg_len > 0) {
        size_t k = a.len < errmsg_len - 1 ? a.len : errmsg_len - 1;
        memcpy(errmsg, a.payload, k);
        errmsg[k] = '\0';
    }
    if (rv == 0 && out != NULL) {
        *out_len = a.len;
        *out = NULL;
        if (a.len > 0) {
            *out = lp2p__malloc(a.len + 1);
            if (*out == NULL) {
                lp2p__free(resp);
                return LP2P_ENOMEM;
            }
            memcpy(*out, a.payload, a.len);
            (*out)[a.len] = 0;
        }
    }
    lp2p__free(resp);
    return rv;
}

int p2praft_node_get(struct p2praft_node *n, const char *key, bool consistent,
                     uint8_t **value, size_t *len, char *errmsg,
                     size_t errmsg_len)
{
    if (key == NULL || value == NULL || len == NULL) {
        return LP2P_EINVAL;
    }
    return kv_call(n, P2PRAFT_API_GET,
                   consistent ? P2PRAFT__API_CONSISTENT : 0, key, NULL, 0,
                   NULL, 0, value, len, errmsg, errmsg_len);
}

int p2praft_node_set(struct p2praft_node *n, const char *key,
                     const void *value, size_t len, char *errmsg,
                     size_t errmsg_len)
{
    if (key == NULL || (value == NULL && len > 0)) {
        return LP2P_EINVAL;
    }
    return kv_call(n, P2PRAFT_API_SET, 0, key, NULL, 0, value, len, NULL, NULL,
                   errmsg, errmsg_len);
}

int p2praft_node_del(struct p2praft_node *n, const char *key, char *errmsg,
                     size_t errmsg_len)
{
    if (key == NULL) {
        return LP2P_EINVAL;
    }
    return kv_call(n, P2PRAFT_API_DEL, 0, key, NULL, 0, NULL, 0, NULL, NULL,
                   errmsg, errmsg_len);
}

int p2praft_node_cas(struct p2praft_node *n, const char *key,
                     const void *expected, size_t expected_len,
                     const void *value, size_t len, char *errmsg,
                     size_t errmsg_len)
{
    if (key == NULL || (value == NULL && len > 0) ||
        (expected == NULL && expected_len > 0)) {
        return LP2P_EINVAL;
    }
    return kv_call(n, P2PRAFT_API_CAS, 0, key, expected, expected_len, value,
                   len, NULL, NULL, errmsg, errmsg_len);
}

int p2praft_node_status(struct p2praft_node *n, char **text)
{
    uint8_t *out = NULL;
    size_t len = 0;
    int rv;
    if (text == NULL) {
        return LP2P_EINVAL;
    }
    rv = kv_call(n, P2PRAFT_API_STATUS, 0, NULL, NULL, 0, NULL, 0, &out, &len,
                 NULL, 0);
    if (rv != 0) {
        return rv;
    }
    if (out == NULL) {
        out = lp2p__calloc(1, 1);
        if (out == NULL) {
            return LP2P_ENOMEM;
        }
    }
    *text = (char *)out;
    return 0;
}

/* ---- membership (p2praft.h, the membership block) ------------------------ */

int p2praft_node_peers(struct p2praft_node *n, char **text, char *errmsg,
                       size_t errmsg_len)
{
    uint8_t *out = NULL;
    size_t len = 0;
    int rv;
    if (text == NULL) {
        return LP2P_EINVAL;
    }
    rv = kv_call(n, P2PRAFT_API_PEERS, 0, NULL, NULL, 0, NULL, 0, &out, &len,
                 errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    if (out == NULL) {
        out = lp2p__calloc(1, 1);
        if (out == NULL) {
            return LP2P_ENOMEM;
        }
    }
    *text = (char *)out;
    return 0;
}

/* A membership call whose argument travels in the key field. */
static int member_call(struct p2praft_node *n, uint8_t op, uint8_t flags,
                       const char *arg, char *out, size_t out_len,
                       char *errmsg, size_t errmsg_len)
{
    uint8_t *resp = NULL;
    size_t len = 0;
    int rv;
    if (arg != NULL && strlen(arg) > P2PRAFT_KV_KEY_MAX) {
        return LP2P_EINVAL;
    }
    rv = kv_call(n, op, flags, arg != NULL ? arg : "", NULL, 0, NULL, 0,
                 &resp, &len, errmsg, errmsg_len);
    if (rv == 0 && out != NULL && out_len > 0) {
        snprintf(out, out_len, "%.*s", (int)len, resp != NULL ? (char *)resp
                                                              : "");
    }
    lp2p__free(resp);
    return rv;
}

int p2praft_node_add(struct p2praft_node *n, const char *multiaddr,
                     char *errmsg, size_t errmsg_len)
{
    if (multiaddr == NULL || multiaddr[0] == '\0') {
        return LP2P_EINVAL;
    }
    return member_call(n, P2PRAFT_API_PEER_ADD, 0, multiaddr, NULL, 0, errmsg,
                       errmsg_len);
}

int p2praft_node_remove(struct p2praft_node *n, const char *peer_id,
                        char *errmsg, size_t errmsg_len)
{
    if (peer_id == NULL || peer_id[0] == '\0') {
        return LP2P_EINVAL;
    }
    return member_call(n, P2PRAFT_API_PEER_RM, 0, peer_id, NULL, 0, errmsg,
                       errmsg_len);
}

int p2praft_node_transfer(struct p2praft_node *n, const char *peer_id,
                          char *leader, char *errmsg, size_t errmsg_len)
{
    return member_call(n, P2PRAFT_API_TRANSFER, 0, peer_id, leader,
                       leader != NULL ? LP2P_PEER_ID_STRMAX : 0, errmsg,
                       errmsg_len);
}

int p2praft_node_handover(struct p2praft_node *n)
{
    return member_call(n, P2PRAFT_API_TRANSFER, P2PRAFT__API_HANDOVER, NULL,
                       NULL, 0, NULL, 0);
}
