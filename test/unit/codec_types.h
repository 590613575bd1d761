/* Test types covering every codec kind (shared by unit tests and the fuzz
 * target). The Go twin lives in interop/go/snapshot/main.go. */
#ifndef P2PRAFT_TEST_CODEC_TYPES_H
#define P2PRAFT_TEST_CODEC_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "p2praft.h"

struct inner {
    int64_t D;
    char *Name;
};

struct everything {
    bool B;
    int64_t I;
    uint64_t U;
    double F;
    char *S;
    struct p2praft_bytes Bytes;
    struct inner In;
    struct p2praft_array Ints;    /* int64 */
    struct p2praft_array Strs;    /* string */
    struct p2praft_array Inners;  /* struct inner */
    struct p2praft_array Nested;  /* array of array of uint64 */
    struct p2praft_map M;         /* string -> int64 */
    struct p2praft_map MS;        /* string -> struct inner */
    struct p2praft_map MA;        /* string -> array of string */
    char Nil;                     /* nil kind: placeholder storage */
};

static const struct p2praft_field inner_fields[] = {
    {"D", offsetof(struct inner, D), {P2PRAFT_KIND_INT64, NULL, NULL}},
    {"Name", offsetof(struct inner, Name), {P2PRAFT_KIND_STRING, NULL, NULL}},
};
static const struct p2praft_type inner_type = {
    "inner", sizeof(struct inner), inner_fields, 2, NULL, NULL, NULL, NULL};

static const struct p2praft_desc d_int64 = {P2PRAFT_KIND_INT64, NULL, NULL};
static const struct p2praft_desc d_uint64 = {P2PRAFT_KIND_UINT64, NULL, NULL};
static const struct p2praft_desc d_string = {P2PRAFT_KIND_STRING, NULL, NULL};
static const struct p2praft_desc d_inner = {P2PRAFT_KIND_STRUCT, &inner_type,
                                            NULL};
static const struct p2praft_desc d_uarr = {P2PRAFT_KIND_ARRAY, NULL,
                                           &d_uint64};
static const struct p2praft_desc d_sarr = {P2PRAFT_KIND_ARRAY, NULL,
                                           &d_string};

static const struct p2praft_field everything_fields[] = {
    {"B", offsetof(struct everything, B), {P2PRAFT_KIND_BOOL, NULL, NULL}},
    {"I", offsetof(struct everything, I), {P2PRAFT_KIND_INT64, NULL, NULL}},
    {"U", offsetof(struct everything, U), {P2PRAFT_KIND_UINT64, NULL, NULL}},
    {"F", offsetof(struct everything, F), {P2PRAFT_KIND_DOUBLE, NULL, NULL}},
    {"S", offsetof(struct everything, S), {P2PRAFT_KIND_STRING, NULL, NULL}},
    {"Bytes", offsetof(struct everything, Bytes),
     {P2PRAFT_KIND_BYTES, NULL, NULL}},
    {"In", offsetof(struct everything, In),
     {P2PRAFT_KIND_STRUCT, &inner_type, NULL}},
    {"Ints", offsetof(struct everything, Ints),
     {P2PRAFT_KIND_ARRAY, NULL, &d_int64}},
    {"Strs", offsetof(struct everything, Strs),
     {P2PRAFT_KIND_ARRAY, NULL, &d_string}},
    {"Inners", offsetof(struct everything, Inners),
     {P2PRAFT_KIND_ARRAY, NULL, &d_inner}},
    {"Nested", offsetof(struct everything, Nested),
     {P2PRAFT_KIND_ARRAY, NULL, &d_uarr}},
    {"M", offsetof(struct everything, M), {P2PRAFT_KIND_MAP, NULL, &d_int64}},
    {"MS", offsetof(struct everything, MS), {P2PRAFT_KIND_MAP, NULL, &d_inner}},
    {"MA", offsetof(struct everything, MA), {P2PRAFT_KIND_MAP, NULL, &d_sarr}},
    {"Nil", offsetof(struct everything, Nil), {P2PRAFT_KIND_NIL, NULL, NULL}},
};
static const struct p2praft_type everything_type = {
    "everything", sizeof(struct everything), everything_fields,
    sizeof(everything_fields) / sizeof(everything_fields[0]),
    NULL, NULL, NULL, NULL};

/* The fixed value both languages write (interop/go/snapshot). It points at
 * static storage: encode it, never release it. */
static inline void everything_fixed(struct everything *e)
{
    static int64_t ints[3] = {1, -200, 70000};
    static char *strs[2] = {"a", "bc"};
    static struct inner inners[2] = {{7, "x"}, {-8, "y"}};
    static uint64_t n1[2] = {1, 2};
    static struct p2praft_array nested[2] = {{n1, 2}, {NULL, 0}};
    static char *keys[1] = {"k1"};
    static int64_t vals[1] = {10};
    static char *mskeys[1] = {"in"};
    static struct inner msvals[1] = {{3, "z"}};
    static char *makeys[1] = {"list"};
    static struct p2praft_array mavals[1] = {{strs, 2}};
    static uint8_t bytes[3] = {0, 1, 0xff};
    memset(e, 0, sizeof(*e));
    e->B = true;
    e->I = -5;
    e->U = 300;
    e->F = 2.5;
    e->S = "hola, \"mundo\"";
    e->Bytes.data = bytes;
    e->Bytes.len = 3;
    e->In.D = 1;
    e->In.Name = "in";
    e->Ints.items = ints;
    e->Ints.len = 3;
    e->Strs.items = strs;
    e->Strs.len = 2;
    e->Inners.items = inners;
    e->Inners.len = 2;
    e->Nested.items = nested;
    e->Nested.len = 2;
    e->M.keys = keys;
    e->M.values = vals;
    e->M.len = 1;
    e->MS.keys = mskeys;
    e->MS.values = msvals;
    e->MS.len = 1;
    e->MA.keys = makeys;
    e->MA.values = mavals;
    e->MA.len = 1;
}

#endif
