/*
 * bare_loop.c: our bare C benchmark against a librknnrt (the vendor's or our stand-in),
 * shaped like the vendor's rknn_benchmark: the model read into memory, one rknn_inputs_set
 * before the loop, 5 warm-up runs, then rknn_run alone timed (CLOCK_MONOTONIC here). It
 * loads the library with dlopen, so one binary measures any librknnrt.so. Prints JSON.
 *
 *   bare_loop LIB MODEL [--runs N] [--warmup N] [--core-mask M] [--flags F]
 *   bare_loop LIB MODEL --contexts N [--core-masks 1,2,4] [--seconds S] [--warmup N]
 *
 * The second form runs N threads, each with its own context and core mask (masks are
 * taken in turn from the list), for S seconds, and prints per-context run counts and the
 * total FPS: the figure a multi-context runtime should reach.
 */
#define _GNU_SOURCE
#include "glibc_compat.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rknn_abi.h"

typedef struct {
    int (*init)(rknn_context *, void *, uint32_t, uint32_t, rknn_init_extend *);
    int (*destroy)(rknn_context);
    int (*query)(rknn_context, rknn_query_cmd, void *, uint32_t);
    int (*inputs_set)(rknn_context, uint32_t, rknn_input *);
    int (*run)(rknn_context, rknn_run_extend *);
    int (*outputs_get)(rknn_context, uint32_t, rknn_output *, rknn_output_extend *);
    int (*outputs_release)(rknn_context, uint32_t, rknn_output *);
    int (*set_core_mask)(rknn_context, rknn_core_mask);
} api;

static api rt;
static uint8_t *g_model;
static size_t g_model_len;

static void die(const char *fmt, const char *a, long b) {
    fprintf(stderr, "bare_loop: error: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    exit(1);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void load_api(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) die("cannot load %s (%ld)", dlerror(), 0);
#define SYM(field, name)                                          \
    *(void **)&rt.field = dlsym(h, name);                         \
    if (!rt.field) die("the library lacks %s (%ld)", name, 0)
    SYM(init, "rknn_init");
    SYM(destroy, "rknn_destroy");
    SYM(query, "rknn_query");
    SYM(inputs_set, "rknn_inputs_set");
    SYM(run, "rknn_run");
    SYM(outputs_get, "rknn_outputs_get");
    SYM(outputs_release, "rknn_outputs_release");
    SYM(set_core_mask, "rknn_set_core_mask");
#undef SYM
}

static void load_model(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open model %s (%ld)", path, 0);
    size_t cap = 1 << 20;
    g_model = malloc(cap);
    size_t n;
    while (g_model && (n = fread(g_model + g_model_len, 1, cap - g_model_len, f)) > 0) {
        g_model_len += n;
        if (g_model_len == cap) g_model = realloc(g_model, cap *= 2);
    }
    fclose(f);
    if (!g_model) die("out of memory reading %s (%ld)", path, 0);
}

/* A context with its inputs set once: uint8 data in each input's reported layout. */
typedef struct {
    rknn_context ctx;
    uint32_t n_out;
} prepared;

static prepared prepare(uint32_t flags, unsigned core_mask) {
    prepared p = {0, 0};
    int rc = rt.init(&p.ctx, g_model, (uint32_t)g_model_len, flags, NULL);
    if (rc) die("rknn_init failed: %s%ld", "", rc);
    if (core_mask && (rc = rt.set_core_mask(p.ctx, (rknn_core_mask)core_mask))) die("rknn_set_core_mask failed: %s%ld", "", rc);
    rknn_input_output_num io;
    if ((rc = rt.query(p.ctx, RKNN_QUERY_IN_OUT_NUM, &io, sizeof(io)))) die("IN_OUT_NUM query failed: %s%ld", "", rc);
    p.n_out = io.n_output;
    rknn_input *inputs = calloc(io.n_input, sizeof(rknn_input));
    for (uint32_t i = 0; i < io.n_input; i++) {
        rknn_tensor_attr a;
        memset(&a, 0, sizeof(a));
        a.index = i;
        if ((rc = rt.query(p.ctx, RKNN_QUERY_INPUT_ATTR, &a, sizeof(a)))) die("INPUT_ATTR query failed: %s%ld", "", rc);
        uint8_t *buf = malloc(a.n_elems ? a.n_elems : 1);
        for (uint32_t k = 0; k < a.n_elems; k++) buf[k] = (uint8_t)(k * 31 + i);
        inputs[i] = (rknn_input){.index = i, .buf = buf, .size = a.n_elems, .pass_through = 0,
                                 .type = RKNN_TENSOR_UINT8, .fmt = a.fmt == RKNN_TENSOR_NCHW ? RKNN_TENSOR_NCHW : RKNN_TENSOR_NHWC};
    }
    if ((rc = rt.inputs_set(p.ctx, io.n_input, inputs))) die("rknn_inputs_set failed: %s%ld", "", rc);
    for (uint32_t i = 0; i < io.n_input; i++) free(inputs[i].buf);
    free(inputs);
    return p;
}

static void run_or_die(rknn_context ctx) {
    int rc = rt.run(ctx, NULL);
    if (rc) die("rknn_run failed: %s%ld", "", rc);
}

static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

static int single(const char *lib, const char *model, long runs, long warmup, unsigned mask, uint32_t flags) {
    prepared p = prepare(flags, mask);
    for (long i = 0; i < warmup; i++) run_or_die(p.ctx);
    int64_t *ns = malloc(sizeof(int64_t) * (size_t)(runs ? runs : 1));
    for (long i = 0; i < runs; i++) {
        int64_t t0 = now_ns();
        run_or_die(p.ctx);
        ns[i] = now_ns() - t0;
    }
    rknn_output *outs = calloc(p.n_out, sizeof(rknn_output));
    for (uint32_t i = 0; i < p.n_out; i++) outs[i].index = i;
    int rc = rt.outputs_get(p.ctx, p.n_out, outs, NULL);
    if (rc) die("rknn_outputs_get failed: %s%ld", "", rc);
    rt.outputs_release(p.ctx, p.n_out, outs);
    free(outs);
    rknn_perf_run perf = {0};
    rknn_mem_size mem;
    rknn_sdk_version sdk;
    memset(&mem, 0, sizeof(mem));
    memset(&sdk, 0, sizeof(sdk));
    int perf_rc = rt.query(p.ctx, RKNN_QUERY_PERF_RUN, &perf, sizeof(perf));
    int mem_rc = rt.query(p.ctx, RKNN_QUERY_MEM_SIZE, &mem, sizeof(mem));
    int sdk_rc = rt.query(p.ctx, RKNN_QUERY_SDK_VERSION, &sdk, sizeof(sdk));
    rt.destroy(p.ctx);

    printf("{\"lib\": ");
    json_string(lib);
    printf(", \"model\": ");
    json_string(model);
    printf(", \"core_mask\": %u, \"warmup\": %ld, \"runs\": %ld, \"run_ns\": [", mask, warmup, runs);
    for (long i = 0; i < runs; i++) printf(i ? ", %lld" : "%lld", (long long)ns[i]);
    printf("], \"perf_run_us\": ");
    if (perf_rc) printf("null");
    else printf("%lld", (long long)perf.run_duration);
    printf(", \"mem\": ");
    if (mem_rc) printf("null");
    else
        printf("{\"weight\": %u, \"internal\": %u, \"dma\": %llu, \"sram_total\": %u, \"sram_free\": %u}",
               mem.total_weight_size, mem.total_internal_size, (unsigned long long)mem.total_dma_allocated_size,
               mem.total_sram_size, mem.free_sram_size);
    printf(", \"sdk\": ");
    if (sdk_rc) printf("null");
    else {
        printf("{\"api\": ");
        json_string(sdk.api_version);
        printf(", \"drv\": ");
        json_string(sdk.drv_version);
        printf("}");
    }
    printf("}\n");
    free(ns);
    return 0;
}

typedef struct {
    unsigned mask;
    long warmup;
    int64_t stop_ns;
    pthread_barrier_t *ready;
    int64_t *go_ns;
    long runs;
    int64_t end_ns;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    prepared p = prepare(0, w->mask);
    for (long i = 0; i < w->warmup; i++) run_or_die(p.ctx);
    pthread_barrier_wait(w->ready); /* all contexts ready: the main thread sets the clock */
    pthread_barrier_wait(w->ready);
    int64_t stop = *w->go_ns + w->stop_ns;
    int64_t t;
    do {
        run_or_die(p.ctx);
        w->runs++;
    } while ((t = now_ns()) < stop);
    w->end_ns = t;
    rt.destroy(p.ctx);
    return NULL;
}

static int multi(long n, const char *masks, double seconds, long warmup) {
    unsigned list[64];
    int n_masks = 0;
    for (const char *p = masks; *p && n_masks < 64;) {
        char *end;
        list[n_masks++] = (unsigned)strtoul(p, &end, 0);
        if (end == p) die("--core-masks: '%s' is not a list of numbers (%ld)", masks, 0);
        p = *end == ',' ? end + 1 : end;
    }
    worker *ws = calloc((size_t)n, sizeof(worker));
    pthread_t *th = calloc((size_t)n, sizeof(pthread_t));
    pthread_barrier_t ready;
    int64_t go = 0;
    pthread_barrier_init(&ready, NULL, (unsigned)n + 1);
    for (long i = 0; i < n; i++) {
        ws[i] = (worker){list[i % n_masks], warmup, (int64_t)(seconds * 1e9), &ready, &go, 0, 0};
        if (pthread_create(&th[i], NULL, work, &ws[i])) die("cannot start thread %s%ld", "", i);
    }
    pthread_barrier_wait(&ready);
    go = now_ns();
    pthread_barrier_wait(&ready);
    long total = 0;
    int64_t end = go;
    for (long i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total += ws[i].runs;
        if (ws[i].end_ns > end) end = ws[i].end_ns;
    }
    double elapsed = (double)(end - go) / 1e9;
    printf("{\"contexts\": [");
    for (long i = 0; i < n; i++)
        printf("%s{\"core_mask\": %u, \"runs\": %ld, \"fps\": %.3f}", i ? ", " : "", ws[i].mask, ws[i].runs,
               (double)ws[i].runs / ((double)(ws[i].end_ns - go) / 1e9));
    printf("], \"seconds\": %.6f, \"total_runs\": %ld, \"total_fps\": %.3f}\n", elapsed, total, (double)total / elapsed);
    pthread_barrier_destroy(&ready);
    free(ws);
    free(th);
    return 0;
}

static long number(const char *opt, const char *v) {
    char *end;
    long x = v ? strtol(v, &end, 0) : -1;
    if (!v || *end || x < 0) {
        fprintf(stderr, "bare_loop: error: %s needs a whole number, got '%s'\n", opt, v ? v : "");
        exit(2);
    }
    return x;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bare_loop LIB MODEL [--runs N] [--warmup N] [--core-mask M] [--flags F]\n"
                        "       bare_loop LIB MODEL --contexts N [--core-masks 1,2,4] [--seconds S] [--warmup N]\n");
        return 2;
    }
    long runs = 100, warmup = 5, contexts = 0, mask = 0, flags = 0;
    const char *masks = "0";
    double seconds = 2.0;
    for (int i = 3; i < argc; i++) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(opt, "--runs")) runs = number(opt, v);
        else if (!strcmp(opt, "--warmup")) warmup = number(opt, v);
        else if (!strcmp(opt, "--core-mask")) mask = number(opt, v);
        else if (!strcmp(opt, "--flags")) flags = number(opt, v);
        else if (!strcmp(opt, "--contexts")) contexts = number(opt, v);
        else if (!strcmp(opt, "--core-masks") && v) masks = v;
        else if (!strcmp(opt, "--seconds") && v) {
            char *end;
            seconds = strtod(v, &end);
            if (*end || !(seconds > 0)) {
                fprintf(stderr, "bare_loop: error: --seconds needs a positive number, got '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "bare_loop: error: unknown option %s\n", opt);
            return 2;
        }
        i++;
    }
    load_api(argv[1]);
    load_model(argv[2]);
    if (contexts > 0) return multi(contexts, masks, seconds, warmup);
    return single(argv[1], argv[2], runs, warmup, (unsigned)mask, (uint32_t)flags);
}
