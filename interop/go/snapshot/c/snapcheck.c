/*
 * Cross-language snapshot check, C side (see ../main.go for the Go side).
 *   snapcheck write FILE   p2praft_encode_snapshot of the fixed values
 *   snapcheck read FILE    p2praft_decode_snapshot, canonical text form
 *   snapcheck print-fixed  canonical text of the fixed values
 * Built by run.sh against build/libp2praft.a.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../test/unit/codec_types.h"

static void hx(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    for (; *p; p++) {
        printf("%02x", *p);
    }
}

static void inner(const struct inner *i)
{
    printf("{D:%lld,Name:", (long long)i->D);
    hx(i->Name);
    printf("}");
}

static int cmp_idx_keys(const void *a, const void *b, void *keys)
{
    char **k = keys;
    return strcmp(k[*(const size_t *)a], k[*(const size_t *)b]);
}

/* Indices of m's keys in sorted order (caller frees). */
static size_t *sorted(const struct p2praft_map *m)
{
    size_t *ix = malloc((m->len + 1) * sizeof(*ix)), i;
    for (i = 0; i < m->len; i++) {
        ix[i] = i;
    }
    qsort_r(ix, m->len, sizeof(*ix), cmp_idx_keys, m->keys);
    return ix;
}

static void strarr(const struct p2praft_array *a)
{
    size_t i;
    if (a->items == NULL) {
        printf("nil");
        return;
    }
    printf("[");
    for (i = 0; i < a->len; i++) {
        if (i) {
            printf(",");
        }
        hx(((char **)a->items)[i]);
    }
    printf("]");
}

static void canon(const struct everything *e)
{
    size_t i, *ix;
    printf("B=%s\n", e->B ? "true" : "false");
    printf("I=%lld\n", (long long)e->I);
    printf("U=%llu\n", (unsigned long long)e->U);
    printf("F=%.17e\n", e->F);
    printf("S=");
    hx(e->S);
    printf("\n");
    if (e->Bytes.data == NULL) {
        printf("Bytes=nil\n");
    } else {
        printf("Bytes=");
        for (i = 0; i < e->Bytes.len; i++) {
            printf("%02x", e->Bytes.data[i]);
        }
        printf("\n");
    }
    printf("In=");
    inner(&e->In);
    printf("\n");
    if (e->Ints.items == NULL) {
        printf("Ints=nil\n");
    } else {
        printf("Ints=[");
        for (i = 0; i < e->Ints.len; i++) {
            printf("%s%lld", i ? "," : "", (long long)((int64_t *)e->Ints.items)[i]);
        }
        printf("]\n");
    }
    printf("Strs=");
    strarr(&e->Strs);
    printf("\n");
    if (e->Inners.items == NULL) {
        printf("Inners=nil\n");
    } else {
        printf("Inners=[");
        for (i = 0; i < e->Inners.len; i++) {
            if (i) {
                printf(",");
            }
            inner(&((struct inner *)e->Inners.items)[i]);
        }
        printf("]\n");
    }
    if (e->Nested.items == NULL) {
        printf("Nested=nil\n");
    } else {
        printf("Nested=[");
        for (i = 0; i < e->Nested.len; i++) {
            const struct p2praft_array *a =
                &((struct p2praft_array *)e->Nested.items)[i];
            size_t j;
            printf("%s", i ? "," : "");
            if (a->items == NULL) {
                printf("nil");
                continue;
            }
            printf("[");
            for (j = 0; j < a->len; j++) {
                printf("%s%llu", j ? "," : "",
                       (unsigned long long)((uint64_t *)a->items)[j]);
            }
            printf("]");
        }
        printf("]\n");
    }
    if (e->M.keys == NULL) {
        printf("M=nil\n");
    } else {
        ix = sorted(&e->M);
        printf("M={");
        for (i = 0; i < e->M.len; i++) {
            printf("%s", i ? "," : "");
            hx(e->M.keys[ix[i]]);
            printf(":%lld", (long long)((int64_t *)e->M.values)[ix[i]]);
        }
        printf("}\n");
        free(ix);
    }
    if (e->MS.keys == NULL) {
        printf("MS=nil\n");
    } else {
        ix = sorted(&e->MS);
        printf("MS={");
        for (i = 0; i < e->MS.len; i++) {
            printf("%s", i ? "," : "");
            hx(e->MS.keys[ix[i]]);
            printf(":");
            inner(&((struct inner *)e->MS.values)[ix[i]]);
        }
        printf("}\n");
        free(ix);
    }
    if (e->MA.keys == NULL) {
        printf("MA=nil\n");
    } else {
        ix = sorted(&e->MA);
        printf("MA={");
        for (i = 0; i < e->MA.len; i++) {
            printf("%s", i ? "," : "");
            hx(e->MA.keys[ix[i]]);
            printf(":");
            strarr(&((struct p2praft_array *)e->MA.values)[ix[i]]);
        }
        printf("}\n");
        free(ix);
    }
    printf("Nil=nil\n");
}

int main(int argc, char **argv)
{
    struct everything e;
    uint8_t *buf;
    size_t len;
    int rv;
    FILE *f;
    if (argc == 2 && strcmp(argv[1], "print-fixed") == 0) {
        everything_fixed(&e);
        canon(&e);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: snapcheck write|read FILE | print-fixed\n");
        return 2;
    }
    if (strcmp(argv[1], "write") == 0) {
        everything_fixed(&e);
        rv = p2praft_encode_snapshot(&everything_type, &e, &buf, &len);
        if (rv != 0) {
            fprintf(stderr, "encode: %s\n", p2praft_strerror(rv));
            return 1;
        }
        f = fopen(argv[2], "wb");
        if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
            perror(argv[2]);
            return 1;
        }
        p2praft_free(buf);
        return 0;
    }
    if (strcmp(argv[1], "read") == 0) {
        long n;
        f = fopen(argv[2], "rb");
        if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
            perror(argv[2]);
            return 1;
        }
        rewind(f);
        buf = malloc((size_t)n + 1);
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            perror(argv[2]);
            return 1;
        }
        fclose(f);
        memset(&e, 0, sizeof(e));
        rv = p2praft_decode_snapshot(&everything_type, &e, buf, (size_t)n);
        free(buf);
        if (rv != 0) {
            fprintf(stderr, "decode: %s (%s)\n", p2praft_strerror(rv),
                    lp2p_errname(rv));
            return 1;
        }
        canon(&e);
        p2praft_value_release(&everything_type, &e);
        return 0;
    }
    fprintf(stderr, "usage: snapcheck write|read FILE | print-fixed\n");
    return 2;
}
