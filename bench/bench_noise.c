/*
 * Noise transport throughput against raw OpenSSL ChaCha20-Poly1305.
 *
 * Ours: 64 KiB application messages through lp2p__noise_transport_encrypt
 * (framed into a 65519-byte and a 17-byte plaintext chunk) and then
 * lp2p__noise_transport_decrypt, after a real libp2p handshake, with
 * output buffers reused. Throughput counts every byte twice, once when
 * encrypted and once when decrypted, over the time of both:
 *     cipher MB/s = 2 * bytes / (t_encrypt + t_decrypt)
 * so it is the bytes pushed through ChaCha20-Poly1305 per second, which is
 * what `openssl speed -evp chacha20-poly1305` reports for encryption (it
 * prints 1000s of bytes per second). openssl speed divides by the CPU user
 * time of its process unless given -elapsed, so ours is timed with the
 * process CPU clock too (wall-clock figure printed alongside: on a shared
 * machine the two differ). MB = 10^6 bytes. Figures are medians
 * of REPS repetitions, ours and OpenSSL's interleaved so that both see the
 * same machine load. Target: ratio >= 0.85.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lp2p.h"
#include "p2p/noise.h"
#include "util/buf.h"

#define MSG (64 * 1024)
#define REPS 5
#define OUR_SECS 1.5

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int die(const char *what, int rv)
{
    fprintf(stderr, "bench_noise: %s: %s\n", what, lp2p_strerror(rv));
    exit(1);
}

static void setup(struct lp2p_noise_transport *ta,
                  struct lp2p_noise_transport *tb)
{
    struct lp2p_key ka, kb;
    struct lp2p_noise_config ca, cb;
    struct lp2p_noise_hs a, b;
    struct lp2p_buf ab, ba;
    int rv;
    lp2p__buf_init(&ab);
    lp2p__buf_init(&ba);
    if ((rv = lp2p_key_generate(&ka)) != 0 ||
        (rv = lp2p_key_generate(&kb)) != 0) {
        die("keygen", rv);
    }
    memset(&ca, 0, sizeof(ca));
    memset(&cb, 0, sizeof(cb));
    ca.identity = &ka;
    cb.identity = &kb;
    if ((rv = lp2p__noise_hs_init(&a, 1, &ca)) != 0 ||
        (rv = lp2p__noise_hs_init(&b, 0, &cb)) != 0 ||
        (rv = lp2p__noise_hs_start(&a, &ab)) != 0 ||
        (rv = lp2p__noise_hs_start(&b, &ba)) != 0) {
        die("handshake init", rv);
    }
    if ((rv = lp2p__noise_hs_feed(&b, ab.data, ab.len, &ba)) < 0) {
        die("msg1", rv);
    }
    ab.len = 0;
    if ((rv = lp2p__noise_hs_feed(&a, ba.data, ba.len, &ab)) < 0) {
        die("msg2", rv);
    }
    if ((rv = lp2p__noise_hs_feed(&b, ab.data, ab.len, &ba)) < 0) {
        die("msg3", rv);
    }
    if ((rv = lp2p__noise_hs_split(&a, ta)) != 0 ||
        (rv = lp2p__noise_hs_split(&b, tb)) != 0) {
        die("split", rv);
    }
    lp2p__noise_hs_close(&a);
    lp2p__noise_hs_close(&b);
    lp2p_key_wipe(&ka);
    lp2p_key_wipe(&kb);
    lp2p__buf_free(&ab);
    lp2p__buf_free(&ba);
}

struct ours {
    double cipher_cpu, cipher_wall, enc_cpu; /* MB/s */
};

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define BATCH 32

/* One repetition: batches of BATCH messages until OUR_SECS of CPU time.
 * The clocks are read per batch only (the CPU clock is a system call). */
static struct ours run_ours(struct lp2p_noise_transport *ta,
                            struct lp2p_noise_transport *tb,
                            struct lp2p_noise_transport *te, uint8_t *msg)
{
    struct lp2p_buf ct, pt;
    double cpu = 0, wall = 0, ecpu = 0, c0, w0;
    long n = 0, ne = 0;
    struct ours r;
    int rv, i;
    lp2p__buf_init(&ct);
    lp2p__buf_init(&pt);
    while (cpu < OUR_SECS) {
        c0 = cpu_now();
        w0 = now();
        for (i = 0; i < BATCH; i++) {
            ct.len = 0;
            pt.len = 0;
            if ((rv = lp2p__noise_transport_encrypt(ta, msg, MSG, &ct)) != 0) {
                die("encrypt", rv);
            }
            if ((rv = lp2p__noise_transport_decrypt(tb, ct.data, ct.len,
                                                    &pt)) != 0) {
                die("decrypt", rv);
            }
            if (pt.len != MSG) {
                die("decrypt length", LP2P_EINVAL);
            }
        }
        cpu += cpu_now() - c0;
        wall += now() - w0;
        n += BATCH;
    }
    if (memcmp(pt.data, msg, MSG) != 0) {
        die("round trip", LP2P_EINVAL);
    }
    /* Encryption alone (its own transport, since nonces advance). */
    while (ecpu < OUR_SECS / 3) {
        c0 = cpu_now();
        for (i = 0; i < BATCH; i++) {
            ct.len = 0;
            if ((rv = lp2p__noise_transport_encrypt(te, msg, MSG, &ct)) != 0) {
                die("encrypt", rv);
            }
        }
        ecpu += cpu_now() - c0;
        ne += BATCH;
    }
    r.cipher_cpu = 2.0 * (double)n * MSG / cpu / 1e6;
    r.cipher_wall = 2.0 * (double)n * MSG / wall / 1e6;
    r.enc_cpu = (double)ne * MSG / ecpu / 1e6;
    lp2p__buf_free(&ct);
    lp2p__buf_free(&pt);
    return r;
}

/* `openssl speed` for one block size: MB/s, or -1 if it fails. */
static double run_openssl(int bytes)
{
    char cmd[256], line[512];
    double kbs = -1;
    FILE *f;
    snprintf(cmd, sizeof(cmd),
             "openssl speed -evp chacha20-poly1305 -bytes %d -seconds 3 "
             "2>/dev/null",
             bytes);
    f = popen(cmd, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        double v;
        /* "ChaCha20-Poly1305  3753967.62k" (1000s of bytes per second) */
        if (strncasecmp(line, "chacha20-poly1305", 17) == 0 &&
            sscanf(line + 17, " %lfk", &v) == 1) {
            kbs = v;
        }
    }
    if (pclose(f) != 0) {
        return -1;
    }
    return kbs < 0 ? -1 : kbs * 1000.0 / 1e6;
}

int main(void)
{
    struct lp2p_noise_transport ta, tb, te, tf;
    double cipher[REPS], wall[REPS], enc[REPS], o16[REPS], o64[REPS];
    double m_cipher, m16, m64;
    uint8_t *msg = malloc(MSG);
    int i, have64 = 1;
    if (msg == NULL) {
        return 1;
    }
    for (i = 0; i < MSG; i++) {
        msg[i] = (uint8_t)(i * 131 + 17);
    }
    setup(&ta, &tb);
    setup(&te, &tf);
    for (i = 0; i < REPS; i++) {
        struct ours r = run_ours(&ta, &tb, &te, msg);
        cipher[i] = r.cipher_cpu;
        wall[i] = r.cipher_wall;
        enc[i] = r.enc_cpu;
        o16[i] = run_openssl(16384);
        if (o16[i] < 0) {
            fprintf(stderr, "bench_noise: openssl speed failed\n");
            return 1;
        }
        if (have64) {
            o64[i] = run_openssl(65536);
            have64 = o64[i] > 0;
        }
    }
    m_cipher = median(cipher, REPS);
    m16 = median(o16, REPS);
    m64 = have64 ? median(o64, REPS) : -1;
    printf("Noise transport, 64 KiB messages (65519 + 17 byte frames), "
           "median of %d runs, MB = 10^6 B\n", REPS);
    printf("  ours: each byte counted once encrypted and once decrypted, "
           "2*bytes/(t_enc+t_dec),\n"
           "  timed in process CPU time, as openssl speed divides by CPU "
           "user time by default\n");
    printf("  %-46s %9.1f MB/s\n", "lp2p noise encrypt+decrypt (cipher MB/s)",
           m_cipher);
    printf("  %-46s %9.1f MB/s\n", "  same, wall-clock time (machine is shared)",
           median(wall, REPS));
    printf("  %-46s %9.1f MB/s\n", "lp2p noise encrypt only", median(enc, REPS));
    printf("  %-46s %9.1f MB/s\n",
           "openssl speed -evp chacha20-poly1305 16384", m16);
    if (have64) {
        printf("  %-46s %9.1f MB/s\n",
               "openssl speed -evp chacha20-poly1305 65536", m64);
    } else {
        printf("  openssl speed -bytes 65536: not accepted by this OpenSSL\n");
    }
    printf("  ratio vs openssl 16384: %.3f (target >= 0.85) %s\n",
           m_cipher / m16, m_cipher / m16 >= 0.85 ? "MET" : "NOT MET");
    if (have64) {
        printf("  ratio vs openssl 65536: %.3f\n", m_cipher / m64);
    }
    lp2p__noise_transport_close(&ta);
    lp2p__noise_transport_close(&tb);
    lp2p__noise_transport_close(&te);
    lp2p__noise_transport_close(&tf);
    free(msg);
    return 0;
}
