/*
 * Closed-loop load generator for MIT krb5kdc, built against libkrb5 at bench time.
 *
 *   kdc_load as|tgs THREADS SECONDS CLIENT SERVICE
 *
 * Each thread has its own krb5_context and runs back-to-back exchanges until
 * the deadline:
 *   as:  krb5_get_init_creds_keytab for CLIENT (key from KRB5_CLIENT_KTNAME;
 *        a keytab, not a password, so no PBKDF2 string-to-key on the generator),
 *        with the encrypted timestamp sent optimistically
 *        (krb5_get_init_creds_opt_set_preauth_list), so one pre-authenticated
 *        request per login, as in tallystick;
 *   tgs: one TGT per thread in a MEMORY ccache, then krb5_get_credentials for
 *        SERVICE with KRB5_GC_NO_STORE, so every call is a fresh TGS-REQ with a
 *        fresh authenticator.
 * Prints one JSON object: completed exchanges, errors, elapsed seconds, p50/p99 ms.
 */
#include <krb5.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SAMPLES 4000000

static int mode_tgs;
static double deadline;
static const char *client_name, *service_name;

struct worker {
    pthread_t thread;
    double *lat;
    long n, errors, cap;
    krb5_error_code first_error;
    char message[256];
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void record(struct worker *w, krb5_context ctx, krb5_error_code code, double t0) {
    if (code) {
        if (!w->errors++) {
            const char *msg = krb5_get_error_message(ctx, code);
            w->first_error = code;
            snprintf(w->message, sizeof w->message, "%s", msg);
            for (char *c = w->message; *c; c++)  /* it goes into a JSON string */
                if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) *c = '\'';
            krb5_free_error_message(ctx, msg);
        }
        return;
    }
    if (w->n < w->cap) w->lat[w->n] = now() - t0;
    w->n++;
}

static void *run(void *arg) {
    struct worker *w = arg;
    krb5_context ctx;
    krb5_principal client, service;
    krb5_keytab kt;
    krb5_get_init_creds_opt *opt;
    krb5_preauthtype preauth[] = { KRB5_PADATA_ENC_TIMESTAMP };
    krb5_ccache cc = NULL;
    krb5_creds tgt, in, *out;
    double t0;
    krb5_error_code code;

    if (krb5_init_context(&ctx) || krb5_parse_name(ctx, client_name, &client) ||
        krb5_parse_name(ctx, service_name, &service) || krb5_kt_client_default(ctx, &kt) ||
        krb5_get_init_creds_opt_alloc(ctx, &opt)) {
        w->errors = -1;
        return NULL;
    }
    krb5_get_init_creds_opt_set_preauth_list(opt, preauth, 1);
    if (mode_tgs) {
        code = krb5_get_init_creds_keytab(ctx, &tgt, client, kt, 0, NULL, opt);
        if (!code) code = krb5_cc_new_unique(ctx, "MEMORY", NULL, &cc);
        if (!code) code = krb5_cc_initialize(ctx, cc, client);
        if (!code) code = krb5_cc_store_cred(ctx, cc, &tgt);
        if (code) {
            record(w, ctx, code, 0);
            w->errors = -1;
            return NULL;
        }
        krb5_free_cred_contents(ctx, &tgt);
    }
    while ((t0 = now()) < deadline) {
        if (mode_tgs) {
            memset(&in, 0, sizeof in);
            in.client = client;
            in.server = service;
            code = krb5_get_credentials(ctx, KRB5_GC_NO_STORE, cc, &in, &out);
            record(w, ctx, code, t0);
            if (!code) krb5_free_creds(ctx, out);
        } else {
            krb5_creds creds;
            code = krb5_get_init_creds_keytab(ctx, &creds, client, kt, 0, NULL, opt);
            record(w, ctx, code, t0);
            if (!code) krb5_free_cred_contents(ctx, &creds);
        }
    }
    if (cc) krb5_cc_destroy(ctx, cc);
    krb5_get_init_creds_opt_free(ctx, opt);
    krb5_kt_close(ctx, kt);
    krb5_free_principal(ctx, client);
    krb5_free_principal(ctx, service);
    krb5_free_context(ctx);
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int threads, i;
    double seconds, start, elapsed;
    long total = 0, errors = 0, kept = 0;
    struct worker *ws;
    double *all;
    const char *message = "";

    if (argc != 6 || (strcmp(argv[1], "as") && strcmp(argv[1], "tgs"))) {
        fprintf(stderr, "usage: %s as|tgs THREADS SECONDS CLIENT SERVICE\n", argv[0]);
        return 2;
    }
    mode_tgs = !strcmp(argv[1], "tgs");
    threads = atoi(argv[2]);
    seconds = atof(argv[3]);
    client_name = argv[4];
    service_name = argv[5];
    if (threads < 1 || seconds <= 0) return 2;
    ws = calloc(threads, sizeof *ws);
    start = now();
    deadline = start + seconds;
    for (i = 0; i < threads; i++) {
        ws[i].cap = MAX_SAMPLES / threads;
        ws[i].lat = malloc(ws[i].cap * sizeof(double));
        pthread_create(&ws[i].thread, NULL, run, &ws[i]);
    }
    for (i = 0; i < threads; i++) pthread_join(ws[i].thread, NULL);
    elapsed = now() - start;
    all = malloc(MAX_SAMPLES * sizeof(double));
    for (i = 0; i < threads; i++) {
        long keep = ws[i].n < ws[i].cap ? ws[i].n : ws[i].cap;
        if (ws[i].errors < 0) {
            fprintf(stderr, "thread %d could not start: %s\n", i, ws[i].message);
            return 1;
        }
        memcpy(all + kept, ws[i].lat, keep * sizeof(double));
        kept += keep;
        total += ws[i].n;
        errors += ws[i].errors;
        if (ws[i].errors && !*message) message = ws[i].message;
    }
    qsort(all, kept, sizeof(double), cmp);
    printf("{\"ok\": %ld, \"errors\": %ld, \"seconds\": %.3f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
           "\"first_error\": \"%s\"}\n", total, errors, elapsed,
           kept ? all[kept / 2] * 1e3 : 0.0, kept ? all[(long)(kept * 0.99)] * 1e3 : 0.0, message);
    return 0;
}
