/*
 * standin.c: a STAND-IN for Rockchip's librknnrt.so, written by the rkbench team from the
 * facts we hold about its C ABI (rknn_abi.h). There is no NPU behind it. It loads real
 * .rknn files, answers the runtime's queries from what the file says, keeps the timing
 * behaviour that matters for benchmarking (a run takes the configured NPU time, runs are
 * serialised per NPU core, multi-core masks help less than separate contexts), and returns
 * outputs that are a deterministic function of the input bytes. It says it is a stand-in in
 * its version strings and log lines. README.md lists the environment knobs.
 */
#define _GNU_SOURCE
#include "glibc_compat.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "model.h"
#include "perf_detail.h"
#include "rknn_abi.h"

#define API __attribute__((visibility("default")))

#ifndef RKNN_STANDIN_VERSION
#define RKNN_STANDIN_VERSION "2.5.0"
#endif
#define STANDIN_DATE "2026-12-01"
#define STANDIN_API_VERSION RKNN_STANDIN_VERSION " (standin@" STANDIN_DATE ")"

/* What `strings librknnrt.so | grep "librknnrt version"` finds: the one copy of that text. */
API __attribute__((used)) const char rknn_standin_version_string[] =
    "librknnrt version: " RKNN_STANDIN_VERSION " (stand-in standin@" STANDIN_DATE ", not the vendor runtime)";

/* ------------------------------------------------------------------------------------ */
/* Logging: one write per line, vendor-style level letter, always marked [stand-in].     */
/* ------------------------------------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static void log_line(char level, const char *fmt, ...) {
    char line[1024];
    int n = snprintf(line, sizeof(line), "%c RKNN: [stand-in] ", level);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2) len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}

#define FAIL(code, ...) (log_line('E', __VA_ARGS__), (code))

/* ------------------------------------------------------------------------------------ */
/* Failure injection: RKNN_STANDIN_FAIL and RKNN_STANDIN_UNSUPPORTED, read at every call. */
/* ------------------------------------------------------------------------------------ */

enum {
    SYM_INIT, SYM_DESTROY, SYM_QUERY, SYM_INPUTS_SET, SYM_RUN, SYM_OUTPUTS_GET, SYM_OUTPUTS_RELEASE,
    SYM_SET_CORE_MASK, SYM_SET_INPUT_SHAPES, SYM_CREATE_MEM, SYM_DESTROY_MEM, SYM_SET_IO_MEM, SYM_DUP_CONTEXT,
    SYM_COUNT
};
static const char *const SYM_NAMES[SYM_COUNT] = {
    "rknn_init", "rknn_destroy", "rknn_query", "rknn_inputs_set", "rknn_run", "rknn_outputs_get",
    "rknn_outputs_release", "rknn_set_core_mask", "rknn_set_input_shapes", "rknn_create_mem",
    "rknn_destroy_mem", "rknn_set_io_mem", "rknn_dup_context",
};
/* Process-wide call counts per symbol, for `symbol@N=code`; they restart from 0 whenever
 * RKNN_STANDIN_FAIL takes a new value, so N counts calls made since it was set. */
static pthread_mutex_t g_fail_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_calls[SYM_COUNT];
static char g_fail_seen[1024];

static uint64_t count_call(int sym, const char *spec) {
    pthread_mutex_lock(&g_fail_lock);
    if (strncmp(g_fail_seen, spec, sizeof(g_fail_seen) - 1)) {
        snprintf(g_fail_seen, sizeof(g_fail_seen), "%s", spec);
        memset(g_calls, 0, sizeof(g_calls));
    }
    uint64_t nth = ++g_calls[sym];
    pthread_mutex_unlock(&g_fail_lock);
    return nth;
}

/*
 * Counts the call and returns the code to fail it with, or 0. Entries are `symbol=code`
 * (every call fails) or `symbol@N=code` (the N-th call and every later one fails). A
 * malformed entry fails the call with PARAM_INVALID, so a typo in a test is loud.
 */
static int injected_failure(int sym) {
    const char *spec = getenv("RKNN_STANDIN_FAIL");
    uint64_t nth = count_call(sym, spec ? spec : "");
    if (!spec || !*spec) return 0;
    const char *name = SYM_NAMES[sym];
    size_t name_len = strlen(name);
    for (const char *p = spec; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char entry[128];
        if (len >= sizeof(entry)) len = sizeof(entry) - 1;
        memcpy(entry, p, len);
        entry[len] = 0;
        char *eq = strchr(entry, '=');
        char *at = strchr(entry, '@');
        char *num_end;
        long code = eq ? strtol(eq + 1, &num_end, 10) : 0;
        if (!eq || eq == entry || *num_end || eq[1] == 0 || (at && at > eq)) {
            return FAIL(RKNN_ERR_PARAM_INVALID,
                        "%s: RKNN_STANDIN_FAIL entry '%s' is malformed: use symbol=code or symbol@N=code", name, entry);
        }
        size_t sym_len = (size_t)((at ? at : eq) - entry);
        unsigned long from = 1;
        if (at) {
            from = strtoul(at + 1, &num_end, 10);
            if (num_end != eq || from == 0)
                return FAIL(RKNN_ERR_PARAM_INVALID, "%s: RKNN_STANDIN_FAIL entry '%s': N in symbol@N must be 1 or more",
                            name, entry);
        }
        if (sym_len == name_len && !strncmp(entry, name, name_len) && nth >= from) {
            log_line('E', "%s: injected failure %ld (RKNN_STANDIN_FAIL=%s, call %llu)", name, code, spec,
                     (unsigned long long)nth);
            return code ? (int)code : RKNN_ERR_FAIL;
        }
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

static const char *const QUERY_NAMES[] = {
    "IN_OUT_NUM", "INPUT_ATTR", "OUTPUT_ATTR", "PERF_DETAIL", "PERF_RUN", "SDK_VERSION", "MEM_SIZE",
    "CUSTOM_STRING", "NATIVE_INPUT_ATTR", "NATIVE_OUTPUT_ATTR", "NATIVE_NHWC_INPUT_ATTR",
    "NATIVE_NHWC_OUTPUT_ATTR", "DEVICE_MEM_INFO", "INPUT_DYNAMIC_RANGE", "CURRENT_INPUT_ATTR",
    "CURRENT_OUTPUT_ATTR", "CURRENT_NATIVE_INPUT_ATTR", "CURRENT_NATIVE_OUTPUT_ATTR",
};
#define N_QUERIES (int)(sizeof(QUERY_NAMES) / sizeof(QUERY_NAMES[0]))

/* RKNN_STANDIN_UNSUPPORTED=PERF_DETAIL,MEM_SIZE (RKNN_QUERY_ prefix optional). */
static int query_unsupported(int cmd) {
    const char *list = getenv("RKNN_STANDIN_UNSUPPORTED");
    if (!list || cmd < 0 || cmd >= N_QUERIES) return 0;
    const char *want = QUERY_NAMES[cmd];
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 11 && !strncmp(p, "RKNN_QUERY_", 11)) { p += 11; len -= 11; }
        if (len == strlen(want) && !strncmp(p, want, len)) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Clocks.                                                                                */
/* ------------------------------------------------------------------------------------ */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Sleeps to an absolute deadline: precise, and the thread gives up the CPU meanwhile. The
 * kernel may wake a normal thread up to its timer slack (50 us by default) late; a 1 us
 * slack for the sleep keeps a 2 ms run within a few microseconds of 2 ms.
 */
static void sleep_until_ns(int64_t deadline) {
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    if (slack > 1000) prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
    struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
    if (slack > 1000) prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0);
}

/* CPU-side work (copying, converting) keeps the CPU busy, unlike NPU time. */
static void spend_cpu_us(int64_t us) {
    if (us <= 0) return;
    int64_t end = now_ns() + us * 1000;
    while (now_ns() < end) {
    }
}

/* ------------------------------------------------------------------------------------ */
/* The board: SoC from <RKNN_STANDIN_ROOT>/proc/device-tree/compatible.                   */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    const char *name, *family;
    int cores, npu_mhz;
} soc_row;

/*
 * NPU cores: 3 on the RK3588 family, 2 on the RK3576 (the vendor's profile has a
 * WorkLoad(0/1) column "RK3576 only"; multi-core masks exist there), 1 on the others.
 * A model built for any SoC of a family runs on every SoC of that family.
 */
static const soc_row SOCS[] = {
    {"rk3588", "rk3588", 3, 1000}, {"rk3588s", "rk3588", 3, 1000}, {"rk3576", "rk3576", 2, 950},
    {"rk3566", "rk3566", 1, 900},  {"rk3568", "rk3566", 1, 900},   {"rk3562", "rk3562", 1, 900},
    {"rv1103", "rv1106", 1, 800},  {"rv1106", "rv1106", 1, 800},   {"rv1103b", "rv1106b", 1, 800},
    {"rv1106b", "rv1106b", 1, 800}, {"rk2118", "rk2118", 1, 600},
};

static const soc_row *soc_lookup(const char *name) {
    for (size_t i = 0; i < sizeof(SOCS) / sizeof(SOCS[0]); i++)
        if (!strcmp(SOCS[i].name, name)) return &SOCS[i];
    return NULL;
}

static const char *family_of(const char *soc) {
    const soc_row *row = soc_lookup(soc);
    return row ? row->family : soc;
}

static int read_board_soc(const soc_row **out) {
    const char *root = getenv("RKNN_STANDIN_ROOT");
    char path[4096];
    snprintf(path, sizeof(path), "%s/proc/device-tree/compatible", root ? root : "");
    FILE *f = fopen(path, "rb");
    if (!f)
        return FAIL(RKNN_ERR_DEVICE_UNAVAILABLE,
                    "cannot read %s: no Rockchip SoC to run on (set RKNN_STANDIN_ROOT to a directory holding "
                    "proc/device-tree/compatible)", path);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* NUL-separated entries, e.g. "rockchip,rk3588s-orangepi-5\0rockchip,rk3588\0". */
    for (size_t at = 0; at < n; at += strlen(buf + at) + 1) {
        if (strncmp(buf + at, "rockchip,", 9)) continue;
        const soc_row *row = soc_lookup(buf + at + 9);
        if (row) { *out = row; return 0; }
    }
    for (size_t i = 0; i < n; i++)
        if (!buf[i]) buf[i] = ' ';
    return FAIL(RKNN_ERR_DEVICE_UNAVAILABLE, "%s says '%s': not a Rockchip SoC with an RKNPU2 NPU", path, buf);
}

/* ------------------------------------------------------------------------------------ */
/* NPU cores: one FIFO queue per core, process-wide.                                       */
/* ------------------------------------------------------------------------------------ */

/*
 * A run takes a ticket on every core it occupies (all under one lock, so two runs are in
 * the same order on every core they share and multi-core runs cannot deadlock) and waits
 * until each of those cores serves its ticket: first come, first served, per core.
 */
static pthread_mutex_t g_sched = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_sched_cv = PTHREAD_COND_INITIALIZER;
static uint64_t g_next_ticket[3], g_serving[3];

static void cores_acquire(unsigned mask, int n_cores, int used[3]) {
    uint64_t ticket[3] = {0, 0, 0};
    pthread_mutex_lock(&g_sched);
    if (mask == RKNN_NPU_CORE_AUTO) {
        /* AUTO: the core with the shortest queue (running + waiting), lowest index on ties. */
        int best = 0;
        for (int c = 1; c < n_cores; c++)
            if (g_next_ticket[c] - g_serving[c] < g_next_ticket[best] - g_serving[best]) best = c;
        mask = 1u << best;
    }
    for (int c = 0; c < 3; c++) {
        used[c] = c < n_cores && (mask & (1u << c));
        if (used[c]) ticket[c] = g_next_ticket[c]++;
    }
    for (;;) {
        int ready = 1;
        for (int c = 0; c < 3; c++)
            if (used[c] && g_serving[c] != ticket[c]) ready = 0;
        if (ready) break;
        pthread_cond_wait(&g_sched_cv, &g_sched);
    }
    pthread_mutex_unlock(&g_sched);
}

static void cores_release(const int used[3]) {
    pthread_mutex_lock(&g_sched);
    for (int c = 0; c < 3; c++)
        if (used[c]) g_serving[c]++;
    pthread_cond_broadcast(&g_sched_cv);
    pthread_mutex_unlock(&g_sched);
}

/* ------------------------------------------------------------------------------------ */
/* Contexts.                                                                              */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    int64_t run_us, io_us;
    double multicore_overhead;
    int old_perf;
    char cpu_ops[256];
    uint64_t sram_bytes;
    int quiet;
} config;

typedef struct {
    sm_model m;
    int refs; /* contexts using it (under g_registry) */
} shared_model;

/* A zero-copy binding: the caller's buffer and how the caller describes its layout. */
typedef struct {
    rknn_tensor_mem *mem;
    rknn_tensor_attr attr;
} binding;

typedef struct standin_ctx {
    uint64_t handle;
    int refs; /* under g_registry: the owner's reference + calls in progress */
    struct standin_ctx *next;
    pthread_mutex_t lock; /* one call at a time on a context */

    shared_model *model;
    uint32_t n_in, n_out;
    int shares_weights; /* a dup_context or RKNN_FLAG_SHARE_WEIGHT_MEM: weights counted by the owner */
    uint32_t flags;
    const soc_row *soc;
    config cfg;
    unsigned core_mask;

    uint8_t **in_data; /* copies from rknn_inputs_set */
    uint32_t *in_len;
    binding *in_mem, *out_mem;

    int have_run;
    uint64_t last_digest;
    int64_t last_run_us;
    int last_cores[3];
    char *perf_text;
    void **out_allocs; /* output buffers we allocated, freed by rknn_outputs_release */
    uint32_t n_out_allocs, cap_out_allocs;
    uint64_t created_mem_bytes;
} standin_ctx;

/* The memory block behind an rknn_tensor_mem; priv_data points back to it. */
typedef struct {
    rknn_tensor_mem pub;
    uint64_t owner;
} mem_block;

static pthread_mutex_t g_registry = PTHREAD_MUTEX_INITIALIZER;
static standin_ctx *g_contexts;
static uint64_t g_next_handle = 1;


static void ctx_free(standin_ctx *c) {
    for (uint32_t i = 0; i < c->n_in; i++) free(c->in_data[i]);
    for (uint32_t i = 0; i < c->n_out_allocs; i++) free(c->out_allocs[i]);
    free(c->in_data);
    free(c->in_len);
    free(c->in_mem);
    free(c->out_mem);
    free(c->out_allocs);
    free(c->perf_text);
    pthread_mutex_lock(&g_registry);
    int last = --c->model->refs == 0;
    pthread_mutex_unlock(&g_registry);
    if (last) {
        sm_free(&c->model->m);
        free(c->model);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Looks a handle up and holds the context until ctx_put (so rknn_destroy cannot free it
 * under a call in progress). NULL for an unknown or destroyed handle. */
static standin_ctx *ctx_get(rknn_context handle) {
    pthread_mutex_lock(&g_registry);
    standin_ctx *c = g_contexts;
    while (c && c->handle != handle) c = c->next;
    if (c) c->refs++;
    pthread_mutex_unlock(&g_registry);
    return c;
}

static void ctx_put(standin_ctx *c) {
    pthread_mutex_lock(&g_registry);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&g_registry);
    if (last) ctx_free(c);
}

static void ctx_register(standin_ctx *c) {
    pthread_mutex_lock(&g_registry);
    c->handle = g_next_handle++;
    c->refs = 1;
    c->next = g_contexts;
    g_contexts = c;
    pthread_mutex_unlock(&g_registry);
}

/* A new context around a model (taking one reference to it). */
static standin_ctx *ctx_new(shared_model *model, const soc_row *soc, const config *cfg, uint32_t flags) {
    standin_ctx *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->n_in = model->m.n_in;
    c->n_out = model->m.n_out;
    c->in_data = calloc(c->n_in, sizeof(*c->in_data));
    c->in_len = calloc(c->n_in, sizeof(*c->in_len));
    c->in_mem = calloc(c->n_in, sizeof(*c->in_mem));
    c->out_mem = calloc(c->n_out, sizeof(*c->out_mem));
    if (!c->in_data || !c->in_len || !c->in_mem || !c->out_mem) {
        free(c->in_data); free(c->in_len); free(c->in_mem); free(c->out_mem); free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_lock(&g_registry);
    model->refs++;
    pthread_mutex_unlock(&g_registry);
    c->model = model;
    c->soc = soc;
    c->cfg = *cfg;
    c->flags = flags;
    c->core_mask = RKNN_NPU_CORE_AUTO;
    return c;
}


/* RKNN_STANDIN_MAX_CONTEXTS=K (read at every rknn_init / rknn_dup_context): with K contexts
 * alive, a new one fails with RKNN_ERR_MALLOC_FAIL, as NPU memory running out would. */
static int context_limit(const char *sym) {
    const char *v = getenv("RKNN_STANDIN_MAX_CONTEXTS");
    if (!v || !*v) return 0;
    char *end = NULL;
    long limit = strtol(v, &end, 10);
    if (!end || *end || limit < 0)
        return FAIL(RKNN_ERR_PARAM_INVALID, "%s: RKNN_STANDIN_MAX_CONTEXTS='%s' is not a count", sym, v);
    long alive = 0;
    pthread_mutex_lock(&g_registry);
    for (standin_ctx *c = g_contexts; c; c = c->next) alive++;
    pthread_mutex_unlock(&g_registry);
    if (alive >= limit)
        return FAIL(RKNN_ERR_MALLOC_FAIL, "%s: out of memory: %ld context(s) alive and RKNN_STANDIN_MAX_CONTEXTS=%ld",
                    sym, alive, limit);
    return 0;
}

#define WITH_CTX(sym, handle, c)                                                            \
    standin_ctx *c = ctx_get(handle);                                                       \
    if (!c) return FAIL(RKNN_ERR_CTX_INVALID, "%s: context %#llx is not valid (never created, or destroyed)", \
                        SYM_NAMES[sym], (unsigned long long)(handle));                      \
    pthread_mutex_lock(&c->lock)

#define END_CTX(c, rc)                  \
    do {                                \
        pthread_mutex_unlock(&(c)->lock); \
        ctx_put(c);                     \
        return (rc);                    \
    } while (0)

/* ------------------------------------------------------------------------------------ */
/* Configuration, read once per context at rknn_init.                                    */
/* ------------------------------------------------------------------------------------ */

static int env_int(const char *name, int64_t dflt, int64_t max, int64_t *out) {
    const char *v = getenv(name);
    if (!v || !*v) { *out = dflt; return 0; }
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*end || x < 0 || x > max)
        return FAIL(RKNN_ERR_PARAM_INVALID, "rknn_init: %s='%s' is not a whole number from 0 to %lld", name, v,
                    (long long)max);
    *out = x;
    return 0;
}

static int read_config(config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    int64_t sram_kb;
    if (env_int("RKNN_STANDIN_RUN_US", 2000, 60000000, &cfg->run_us) ||
        env_int("RKNN_STANDIN_IO_US", 20, 60000000, &cfg->io_us) ||
        env_int("RKNN_STANDIN_SRAM_KB", 0, 1 << 22, &sram_kb))
        return RKNN_ERR_PARAM_INVALID;
    cfg->sram_bytes = (uint64_t)sram_kb * 1024;
    const char *v = getenv("RKNN_STANDIN_MULTICORE_OVERHEAD");
    cfg->multicore_overhead = 0.5;
    if (v && *v) {
        char *end;
        cfg->multicore_overhead = strtod(v, &end);
        if (*end || !(cfg->multicore_overhead >= 0) || cfg->multicore_overhead > 100)
            return FAIL(RKNN_ERR_PARAM_INVALID,
                        "rknn_init: RKNN_STANDIN_MULTICORE_OVERHEAD='%s' is not a number from 0 to 100", v);
    }
    v = getenv("RKNN_STANDIN_PERF_FORMAT");
    if (v && *v && strcmp(v, "old") && strcmp(v, "current"))
        return FAIL(RKNN_ERR_PARAM_INVALID, "rknn_init: RKNN_STANDIN_PERF_FORMAT='%s': use current or old", v);
    cfg->old_perf = v && !strcmp(v, "old");
    v = getenv("RKNN_STANDIN_CPU_OPS");
    if (v && strlen(v) >= sizeof(cfg->cpu_ops))
        return FAIL(RKNN_ERR_PARAM_INVALID, "rknn_init: RKNN_STANDIN_CPU_OPS is longer than %zu characters",
                    sizeof(cfg->cpu_ops) - 1);
    snprintf(cfg->cpu_ops, sizeof(cfg->cpu_ops), "%s", v ? v : "");
    v = getenv("RKNN_STANDIN_QUIET");
    cfg->quiet = v && !strcmp(v, "1");
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Tensor attributes.                                                                     */
/* ------------------------------------------------------------------------------------ */

typedef enum { VIEW_NORMAL, VIEW_NATIVE, VIEW_NATIVE_NHWC } attr_view;

static void finish_attr(rknn_tensor_attr *a) {
    uint64_t n = a->n_dims ? 1 : 0;
    for (uint32_t d = 0; d < a->n_dims; d++) n *= a->dims[d];
    a->n_elems = (uint32_t)n;
    a->size = (uint32_t)(n * sm_type_bytes(a->type));
    a->size_with_stride = a->size;
}

/*
 * What the runtime reports for an input or output:
 * - NORMAL (INPUT_ATTR/OUTPUT_ATTR): 4-D inputs NHWC [N,H,W,C] (the file's layout), 4-D
 *   outputs NCHW, other ranks as in the model with fmt UNDEFINED; the NPU's type (INT8 with
 *   its zero point and scale for a quantized model, FLOAT16 for a float one).
 * - NATIVE: NC1HWC2 [N,C1,H,W,C2] where the file gives a 5-D native shape (4-D outputs,
 *   wide inputs); NHWC for 4-D inputs whose native shape is plain NHWC; else as NORMAL.
 * - NATIVE_NHWC: NHWC for any 4-D tensor, else as NORMAL.
 * Strides: w_stride = W and h_stride = H for NHWC/NC1HWC2 views (no row padding).
 */
static void fill_attr(const sm_io *io, uint32_t index, int is_input, attr_view view, rknn_tensor_attr *a) {
    memset(a, 0, sizeof(*a));
    a->index = index;
    snprintf(a->name, sizeof(a->name), "%s", io->name);
    a->type = io->type;
    a->qnt_type = io->qnt_type;
    a->zp = io->zp;
    a->scale = io->scale;
    const uint32_t *d = io->dims;
    int four = io->n_dims == 4;
    int nhwc = four && (view == VIEW_NATIVE_NHWC || (is_input && io->nhwc) || (!is_input && io->nhwc));
    /* An input whose native shape is [N,1,H,W,C] is plain NHWC; outputs stay NC1HWC2. */
    int plain_nhwc = io->n_native == 5 && io->native[1] == 1 && io->native[4] == d[1];
    int c1hwc2 = view == VIEW_NATIVE && four && io->n_native == 5 && !(is_input && plain_nhwc);
    if (view == VIEW_NATIVE && four && is_input && !c1hwc2) nhwc = 1;
    if (c1hwc2) {
        a->fmt = RKNN_TENSOR_NC1HWC2;
        a->n_dims = 5;
        memcpy(a->dims, io->native, 5 * sizeof(uint32_t));
        a->w_stride = io->native[3];
        a->h_stride = io->native[2];
    } else if (nhwc) {
        a->fmt = RKNN_TENSOR_NHWC;
        a->n_dims = 4;
        uint32_t nhwc_dims[4] = {d[0], d[2], d[3], d[1]};
        memcpy(a->dims, nhwc_dims, sizeof(nhwc_dims));
        a->w_stride = d[3];
        if (view != VIEW_NORMAL) a->h_stride = d[2];
    } else {
        a->fmt = four ? RKNN_TENSOR_NCHW : RKNN_TENSOR_UNDEFINED;
        a->n_dims = io->n_dims;
        memcpy(a->dims, d, io->n_dims * sizeof(uint32_t));
    }
    finish_attr(a);
}

/* ------------------------------------------------------------------------------------ */
/* Outputs: deterministic functions of the input bytes.                                   */
/* ------------------------------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (!man) bits = sign;
        else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            bits = sign | exp << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) bits = sign | 0x7f800000 | man << 13;
    else bits = sign | (exp + 127 - 15) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static uint16_t float_to_half(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof(bits));
    uint32_t sign = (bits >> 16) & 0x8000;
    int32_t exp = (int32_t)((bits >> 23) & 0xff) - 127 + 15;
    uint32_t man = bits & 0x7fffff;
    if (((bits >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift;
        if ((man >> (shift - 1)) & 1) half++; /* round half up */
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | (uint32_t)exp << 10 | man >> 13;
    if (man & 0x1000) half++; /* round half up (may carry into the exponent, which is right) */
    return (uint16_t)half;
}

/* The next value of an output's stream, as the NPU would hold it in its native type. */
static double native_value(const sm_io *io, uint64_t *state) {
    uint64_t r = splitmix(state);
    switch (io->type) {
    case RKNN_TENSOR_INT8: return ((double)(int8_t)(r & 0xff) - io->zp) * io->scale;
    case RKNN_TENSOR_UINT8: return ((double)(r & 0xff) - io->zp) * io->scale;
    case RKNN_TENSOR_INT16: return ((double)(int16_t)(r & 0xffff) - io->zp) * io->scale;
    default: { /* float types: a value in [-1, 1), exactly representable in float16 */
        float f = (float)((double)(r >> 11) * 0x1.0p-53 * 2.0 - 1.0);
        return half_to_float(float_to_half(f));
    }
    }
}

static void store_value(double v, rknn_tensor_type type, int32_t zp, float scale, uint8_t *dst) {
    if (type == RKNN_TENSOR_FLOAT32) { float f = (float)v; memcpy(dst, &f, 4); return; }
    if (type == RKNN_TENSOR_FLOAT16) { uint16_t h = float_to_half((float)v); memcpy(dst, &h, 2); return; }
    double q = nearbyint(v / (scale > 0 ? scale : 1.0f)) + zp;
    switch (type) {
    case RKNN_TENSOR_INT8: *(int8_t *)dst = (int8_t)fmax(-128, fmin(127, q)); return;
    case RKNN_TENSOR_UINT8: *dst = (uint8_t)fmax(0, fmin(255, q)); return;
    case RKNN_TENSOR_INT16: { int16_t x = (int16_t)fmax(-32768, fmin(32767, q)); memcpy(dst, &x, 2); return; }
    case RKNN_TENSOR_UINT16: { uint16_t x = (uint16_t)fmax(0, fmin(65535, q)); memcpy(dst, &x, 2); return; }
    case RKNN_TENSOR_INT32: { int32_t x = (int32_t)fmax(-2147483648.0, fmin(2147483647.0, q)); memcpy(dst, &x, 4); return; }
    default: *dst = (uint8_t)q; return;
    }
}

/*
 * Writes output `which` into dst in the layout `a` describes (NCHW/UNDEFINED: the model's
 * order; NHWC; NC1HWC2 with zero padding) and in a's type (quantized with a's zp/scale).
 */
static void write_output(const sm_io *io, uint32_t which, uint64_t digest, const rknn_tensor_attr *a, uint8_t *dst) {
    size_t elem = sm_type_bytes(a->type);
    uint64_t total = 1;
    for (uint32_t d = 0; d < a->n_dims; d++) total *= a->dims[d];
    memset(dst, 0, total * elem);
    uint64_t n = 1;
    for (uint32_t d = 0; d < io->n_dims; d++) n *= io->dims[d];
    uint32_t C = 1, H = 1, W = 1;
    if (io->n_dims == 4) { C = io->dims[1]; H = io->dims[2]; W = io->dims[3]; }
    uint64_t state = digest ^ (0xD1B54A32D192ED03ull * (which + 1));
    for (uint64_t k = 0; k < n; k++) {
        double v = native_value(io, &state);
        uint64_t at = k;
        if (io->n_dims == 4 && (a->fmt == RKNN_TENSOR_NHWC || a->fmt == RKNN_TENSOR_NC1HWC2)) {
            uint64_t w = k % W, h = k / W % H, c = k / W / H % C, b = k / W / H / C;
            if (a->fmt == RKNN_TENSOR_NHWC) at = ((b * H + h) * W + w) * C + c;
            else {
                uint64_t c2n = a->dims[4], c1n = a->dims[1];
                at = (((b * c1n + c / c2n) * H + h) * W + w) * c2n + c % c2n;
            }
        }
        store_value(v, a->type, a->zp, a->scale, dst + at * elem);
    }
}

/* The bytes of every input, hashed in index order: what the outputs are a function of. */
static uint64_t inputs_digest(const standin_ctx *c) {
    uint64_t h = 0x5354414E44494E00ull; /* "STANDIN" */
    for (uint32_t i = 0; i < c->n_in; i++) {
        const binding *b = &c->in_mem[i];
        if (b->mem) h = sm_hash((const uint8_t *)b->mem->virt_addr + b->mem->offset, b->attr.size, h);
        else h = sm_hash(c->in_data[i], c->in_len[i], h);
    }
    return h;
}

/* ------------------------------------------------------------------------------------ */
/* The API.                                                                               */
/* ------------------------------------------------------------------------------------ */

static int read_file(const char *path, const rknn_init_extend *ext, uint8_t **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return FAIL(RKNN_ERR_MODEL_INVALID, "rknn_init: cannot open model file %s: %s", path, strerror(errno));
    long offset = ext && ext->real_model_size ? ext->real_model_offset : 0;
    long size;
    if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || offset < 0 || offset > size ||
        fseek(f, offset, SEEK_SET)) {
        fclose(f);
        return FAIL(RKNN_ERR_MODEL_INVALID, "rknn_init: cannot read model file %s (offset %ld)", path, offset);
    }
    size_t want = ext && ext->real_model_size ? ext->real_model_size : (size_t)(size - offset);
    if (want > (size_t)(size - offset)) {
        fclose(f);
        return FAIL(RKNN_ERR_MODEL_INVALID, "rknn_init: %s has %ld bytes after offset %ld, real_model_size asks %zu",
                    path, size - offset, offset, want);
    }
    uint8_t *buf = malloc(want ? want : 1);
    if (!buf) { fclose(f); return FAIL(RKNN_ERR_MALLOC_FAIL, "rknn_init: out of memory reading %s", path); }
    size_t got = fread(buf, 1, want, f);
    fclose(f);
    if (got != want) {
        free(buf);
        return FAIL(RKNN_ERR_MODEL_INVALID, "rknn_init: short read on %s", path);
    }
    *out = buf;
    *len = want;
    return 0;
}

static int targets_match(const sm_model *m, const soc_row *soc) {
    for (int i = 0; i < m->n_targets; i++)
        if (!strcmp(family_of(m->targets[i]), soc->family)) return 1;
    return 0;
}

API int rknn_init(rknn_context *context, void *model, uint32_t size, uint32_t flag, rknn_init_extend *extend) {
    int rc = injected_failure(SYM_INIT);
    if (rc) return rc;
    if (!context || !model) return FAIL(RKNN_ERR_PARAM_INVALID, "rknn_init: context and model must not be NULL");
    if ((rc = context_limit("rknn_init"))) return rc;
    config cfg;
    if ((rc = read_config(&cfg))) return rc;
    const soc_row *soc;
    if ((rc = read_board_soc(&soc))) return rc;

    uint8_t *file = NULL;
    size_t len = size;
    const char *what = "the model buffer";
    if (size == 0) {
        what = model;
        if ((rc = read_file(model, extend, &file, &len))) return rc;
    }
    shared_model *sm = calloc(1, sizeof(*sm));
    if (!sm) { free(file); return FAIL(RKNN_ERR_MALLOC_FAIL, "rknn_init: out of memory"); }
    char why[256];
    rc = sm_parse(file ? file : model, len, &sm->m, why, sizeof(why));
    free(file);
    if (rc) {
        free(sm);
        return FAIL(RKNN_ERR_MODEL_INVALID, "rknn_init: %s is not a valid RKNN model: %s", what, why);
    }
    if (!targets_match(&sm->m, soc)) {
        rc = FAIL(RKNN_ERR_TARGET_PLATFORM_UNMATCH,
                  "rknn_init: the model was built for target platform %s, but this board is %s: rebuild it with "
                  "target_platform='%s' (RKNN_ERR_TARGET_PLATFORM_UNMATCH)",
                  sm->m.targets[0], soc->name, soc->name);
        sm_free(&sm->m);
        free(sm);
        return rc;
    }
    int shares = 0;
    if (flag & RKNN_FLAG_SHARE_WEIGHT_MEM) {
        standin_ctx *other = extend ? ctx_get(extend->ctx) : NULL;
        if (!other) rc = FAIL(RKNN_ERR_PARAM_INVALID, "rknn_init: RKNN_FLAG_SHARE_WEIGHT_MEM needs extend->ctx set to "
                                                      "a live context to share weights with");
        else if (other->model->m.weight_digest != sm->m.weight_digest)
            rc = FAIL(RKNN_ERR_MODEL_INVALID, "rknn_init: RKNN_FLAG_SHARE_WEIGHT_MEM: context %#llx holds another "
                                              "model's weights", (unsigned long long)extend->ctx);
        if (other) ctx_put(other);
        if (rc) { sm_free(&sm->m); free(sm); return rc; }
        shares = 1;
    }
    standin_ctx *c = ctx_new(sm, soc, &cfg, flag);
    if (!c) { sm_free(&sm->m); free(sm); return FAIL(RKNN_ERR_MALLOC_FAIL, "rknn_init: out of memory"); }
    c->shares_weights = shares;
    ctx_register(c);
    *context = c->handle;
    if (!cfg.quiet)
        log_line('I', "%s; no NPU here. Model for %s (compiler %s), board %s with %d NPU core%s, "
                      "%lld us per run (RKNN_STANDIN_QUIET=1 hides this line)",
                 rknn_standin_version_string, sm->m.targets[0], sm->m.compiler[0] ? sm->m.compiler : "unknown",
                 soc->name, soc->cores, soc->cores > 1 ? "s" : "", (long long)cfg.run_us);
    return RKNN_SUCC;
}

API int rknn_destroy(rknn_context context) {
    int rc = injected_failure(SYM_DESTROY);
    if (rc) return rc;
    pthread_mutex_lock(&g_registry);
    standin_ctx **link = &g_contexts;
    while (*link && (*link)->handle != context) link = &(*link)->next;
    standin_ctx *c = *link;
    if (c) *link = c->next;
    pthread_mutex_unlock(&g_registry);
    if (!c) return FAIL(RKNN_ERR_CTX_INVALID, "rknn_destroy: context %#llx is not valid (never created, or destroyed)",
                        (unsigned long long)context);
    ctx_put(c); /* the owner's reference; a call still in progress holds its own */
    return RKNN_SUCC;
}

#ifndef RKNN_STANDIN_OLD
API int rknn_dup_context(rknn_context *context_in, rknn_context *context_out) {
    int rc = injected_failure(SYM_DUP_CONTEXT);
    if (rc) return rc;
    if (!context_in || !context_out) return FAIL(RKNN_ERR_PARAM_INVALID, "rknn_dup_context: NULL argument");
    if ((rc = context_limit("rknn_dup_context"))) return rc;
    WITH_CTX(SYM_DUP_CONTEXT, *context_in, src);
    /* The duplicate shares the model and its weights; it starts on core mask AUTO. */
    standin_ctx *c = ctx_new(src->model, src->soc, &src->cfg, src->flags);
    if (!c) END_CTX(src, FAIL(RKNN_ERR_MALLOC_FAIL, "rknn_dup_context: out of memory"));
    c->shares_weights = 1;
    ctx_register(c);
    *context_out = c->handle;
    END_CTX(src, RKNN_SUCC);
}
#endif

static int check_size(const char *what, uint32_t got, size_t want) {
    if (got >= want) return 0;
    return FAIL(RKNN_ERR_PARAM_INVALID, "rknn_query: %s needs %zu bytes of info, got size %u", what, want, got);
}

static int query_attr(standin_ctx *c, int cmd, void *info, uint32_t size) {
    if (check_size(QUERY_NAMES[cmd], size, sizeof(rknn_tensor_attr))) return RKNN_ERR_PARAM_INVALID;
    rknn_tensor_attr *a = info;
    int is_input = cmd == RKNN_QUERY_INPUT_ATTR || cmd == RKNN_QUERY_NATIVE_INPUT_ATTR ||
                   cmd == RKNN_QUERY_NATIVE_NHWC_INPUT_ATTR || cmd == RKNN_QUERY_CURRENT_INPUT_ATTR ||
                   cmd == RKNN_QUERY_CURRENT_NATIVE_INPUT_ATTR;
    attr_view view = VIEW_NORMAL;
    if (cmd == RKNN_QUERY_NATIVE_INPUT_ATTR || cmd == RKNN_QUERY_NATIVE_OUTPUT_ATTR ||
        cmd == RKNN_QUERY_CURRENT_NATIVE_INPUT_ATTR || cmd == RKNN_QUERY_CURRENT_NATIVE_OUTPUT_ATTR)
        view = VIEW_NATIVE;
    if (cmd == RKNN_QUERY_NATIVE_NHWC_INPUT_ATTR || cmd == RKNN_QUERY_NATIVE_NHWC_OUTPUT_ATTR) view = VIEW_NATIVE_NHWC;
    uint32_t count = is_input ? c->n_in : c->n_out;
    uint32_t index = a->index;
    if (index >= count)
        return FAIL(RKNN_ERR_PARAM_INVALID, "rknn_query: %s index %u, but the model has %u %s", QUERY_NAMES[cmd], index,
                    count, is_input ? "inputs" : "outputs");
    fill_attr(is_input ? &c->model->m.in[index] : &c->model->m.out[index], index, is_input, view, a);
    return RKNN_SUCC;
}

static int query_perf_detail(standin_ctx *c, void *info, uint32_t size) {
    if (check_size("PERF_DETAIL", size, sizeof(rknn_perf_detail))) return RKNN_ERR_PARAM_INVALID;
    if (!(c->flags & RKNN_FLAG_COLLECT_PERF_MASK))
        return FAIL(RKNN_ERR_PARAM_INVALID, "rknn_query: PERF_DETAIL needs the context initialised with "
                                            "RKNN_FLAG_COLLECT_PERF_MASK (0x8)");
    pd_config pc = {c->cfg.old_perf, c->soc->cores, {0, 0, 0}, c->have_run ? c->last_run_us : 0, c->soc->npu_mhz,
                    c->cfg.cpu_ops[0] ? c->cfg.cpu_ops : NULL};
    memcpy(pc.core_used, c->last_cores, sizeof(pc.core_used));
    if (!c->have_run) pc.core_used[0] = 1;
    char *text = pd_render(&c->model->m, &pc);
    if (!text) return FAIL(RKNN_ERR_MALLOC_FAIL, "rknn_query: out of memory rendering PERF_DETAIL");
    free(c->perf_text);
    c->perf_text = text; /* ours until the next PERF_DETAIL query or rknn_destroy */
    rknn_perf_detail *pd = info;
    pd->perf_data = text;
    pd->data_len = strlen(text);
    return RKNN_SUCC;
}

static int query_mem_size(standin_ctx *c, void *info, uint32_t size) {
    if (check_size("MEM_SIZE", size, sizeof(rknn_mem_size))) return RKNN_ERR_PARAM_INVALID;
    rknn_mem_size *ms = info;
    memset(ms, 0, sizeof(*ms));
    /* Shared weights are counted once: by the context that loaded them, not by its dups. */
    uint64_t weight = c->shares_weights ? 0 : c->model->m.payload_bytes;
    uint64_t internal = c->model->m.internal_bytes;
    ms->total_weight_size = (uint32_t)weight;
    ms->total_internal_size = (uint32_t)internal;
    ms->total_dma_allocated_size = weight + internal + c->created_mem_bytes;
    ms->total_sram_size = (uint32_t)c->cfg.sram_bytes;
    uint64_t used = c->flags & RKNN_FLAG_ENABLE_SRAM ? (internal < c->cfg.sram_bytes ? internal : c->cfg.sram_bytes) : 0;
    ms->free_sram_size = (uint32_t)(c->cfg.sram_bytes - used);
    return RKNN_SUCC;
}

API int rknn_query(rknn_context context, rknn_query_cmd cmd, void *info, uint32_t size) {
    int rc = injected_failure(SYM_QUERY);
    if (rc) return rc;
    WITH_CTX(SYM_QUERY, context, c);
    int id = (int)cmd;
    if (!info) END_CTX(c, FAIL(RKNN_ERR_PARAM_INVALID, "rknn_query: info is NULL (query %d)", id));
    if (query_unsupported(id))
        END_CTX(c, FAIL(RKNN_ERR_PARAM_INVALID, "rknn_query: query %s (%d) is not supported by this runtime "
                                                "(RKNN_STANDIN_UNSUPPORTED)", QUERY_NAMES[id], id));
    switch (id) {
    case RKNN_QUERY_IN_OUT_NUM:
        if (check_size("IN_OUT_NUM", size, sizeof(rknn_input_output_num))) rc = RKNN_ERR_PARAM_INVALID;
        else {
            rknn_input_output_num *io = info;
            io->n_input = c->n_in;
            io->n_output = c->n_out;
        }
        break;
    case RKNN_QUERY_INPUT_ATTR: case RKNN_QUERY_OUTPUT_ATTR: case RKNN_QUERY_NATIVE_INPUT_ATTR:
    case RKNN_QUERY_NATIVE_OUTPUT_ATTR: case RKNN_QUERY_NATIVE_NHWC_INPUT_ATTR:
    case RKNN_QUERY_NATIVE_NHWC_OUTPUT_ATTR: case RKNN_QUERY_CURRENT_INPUT_ATTR: case RKNN_QUERY_CURRENT_OUTPUT_ATTR:
    case RKNN_QUERY_CURRENT_NATIVE_INPUT_ATTR: case RKNN_QUERY_CURRENT_NATIVE_OUTPUT_ATTR:
        /* The stand-in knows static shapes only, so CURRENT_* equals the plain views. */
        rc = query_attr(c, id, info, size);
        break;
    case RKNN_QUERY_PERF_DETAIL:
        rc = query_perf_detail(c, info, size);
        break;
    case RKNN_QUERY_PERF_RUN:
        if (check_size("PERF_RUN", size, sizeof(rknn_perf_run))) rc = RKNN_ERR_PARAM_INVALID;
        else ((rknn_perf_run *)info)->run_duration = c->have_run ? c->last_run_us : 0;
        break;
    case RKNN_QUERY_SDK_VERSION:
        if (check_size("SDK_VERSION", size, sizeof(rknn_sdk_version))) rc = RKNN_ERR_PARAM_INVALID;
        else {
            rknn_sdk_version *v = info;
            memset(v, 0, sizeof(*v));
            snprintf(v->api_version, sizeof(v->api_version), "%s", STANDIN_API_VERSION);
            snprintf(v->drv_version, sizeof(v->drv_version), "0.9.8 (stand-in: no RKNPU driver)");
        }
        break;
    case RKNN_QUERY_MEM_SIZE:
        rc = query_mem_size(c, info, size);
        break;
    case RKNN_QUERY_INPUT_DYNAMIC_RANGE:
        /* What a static-shape model answers; callers such as lite2 ask it on every load, so the
         * line is a warning, not an error. */
        log_line('W', "rknn_query: INPUT_DYNAMIC_RANGE: the model has static input shapes (RKNN_ERR_MODEL_INVALID)");
        rc = RKNN_ERR_MODEL_INVALID;
        break;
    case RKNN_QUERY_CUSTOM_STRING: case RKNN_QUERY_DEVICE_MEM_INFO:
        rc = FAIL(RKNN_ERR_PARAM_INVALID, "rknn_query: %s (%d) is not implemented by the stand-in", QUERY_NAMES[id], id);
        break;
    default:
        rc = FAIL(RKNN_ERR_PARAM_INVALID, "rknn_query: unknown query id %d", id);
    }
    END_CTX(c, rc);
}

/* Types rknn_inputs_set converts from (the runtime turns them into the NPU's type). */
static int convertible_type(int type) { return type >= RKNN_TENSOR_FLOAT32 && type <= RKNN_TENSOR_UINT16; }

static void dims_text(const rknn_tensor_attr *a, char *out, size_t cap) {
    size_t k = 0;
    out[0] = 0;
    for (uint32_t d = 0; d < a->n_dims && k < cap; d++) k += (size_t)snprintf(out + k, cap - k, d ? "x%u" : "%u", a->dims[d]);
}

API int rknn_inputs_set(rknn_context context, uint32_t n_inputs, rknn_input inputs[]) {
    int rc = injected_failure(SYM_INPUTS_SET);
    if (rc) return rc;
    WITH_CTX(SYM_INPUTS_SET, context, c);
    if (!inputs || n_inputs == 0 || n_inputs > c->n_in)
        END_CTX(c, FAIL(RKNN_ERR_INPUT_INVALID, "rknn_inputs_set: %u inputs given, the model has %u", n_inputs, c->n_in));
    /* Check every input before taking any. */
    for (uint32_t i = 0; i < n_inputs; i++) {
        const rknn_input *in = &inputs[i];
        if (in->index >= c->n_in)
            END_CTX(c, FAIL(RKNN_ERR_INPUT_INVALID, "rknn_inputs_set: inputs[%u].index = %u, the model has %u inputs", i,
                            in->index, c->n_in));
        for (uint32_t j = 0; j < i; j++)
            if (inputs[j].index == in->index)
                END_CTX(c, FAIL(RKNN_ERR_INPUT_INVALID, "rknn_inputs_set: input index %u given twice", in->index));
        if (!in->buf) END_CTX(c, FAIL(RKNN_ERR_INPUT_INVALID, "rknn_inputs_set: inputs[%u].buf is NULL", i));
        const sm_io *io = &c->model->m.in[in->index];
        rknn_tensor_attr want;
        size_t expected;
        if (in->pass_through) {
            /* Passed through untouched: must already be in the native layout and type. */
            fill_attr(io, in->index, 1, VIEW_NATIVE, &want);
            expected = want.size_with_stride;
        } else {
            if (!convertible_type(in->type))
                END_CTX(c, FAIL(RKNN_ERR_INPUT_INVALID, "rknn_inputs_set: input %u '%s': type %d is not one the "
                                                        "runtime converts from (FLOAT32, FLOAT16, INT8, UINT8, INT16, UINT16)",
                                in->index, io->name, (int)in->type));
            if (io->n_dims == 4 && in->fmt != RKNN_TENSOR_NCHW && in->fmt != RKNN_TENSOR_NHWC)
                END_CTX(c, FAIL(RKNN_ERR_INPUT_INVALID, "rknn_inputs_set: input %u '%s' is 4-D: fmt must be NCHW (0) or "
                                                        "NHWC (1), got %d", in->index, io->name, (int)in->fmt));
            fill_attr(io, in->index, 1, VIEW_NORMAL, &want);
            want.type = in->type;
            expected = (size_t)want.n_elems * sm_type_bytes(in->type);
        }
        if (in->size != expected) {
            char dims[128];
            dims_text(&want, dims, sizeof(dims));
            END_CTX(c, FAIL(RKNN_ERR_INPUT_INVALID, "rknn_inputs_set: input %u '%s' has %u bytes, expected %zu (%s %s%s)",
                            in->index, io->name, in->size, expected, dims, sm_type_name(want.type),
                            in->pass_through ? ", pass_through" : ""));
        }
    }
    for (uint32_t i = 0; i < n_inputs; i++) {
        const rknn_input *in = &inputs[i];
        uint8_t *copy = realloc(c->in_data[in->index], in->size ? in->size : 1);
        if (!copy) END_CTX(c, FAIL(RKNN_ERR_MALLOC_FAIL, "rknn_inputs_set: out of memory"));
        memcpy(copy, in->buf, in->size);
        c->in_data[in->index] = copy;
        c->in_len[in->index] = in->size;
        c->in_mem[in->index].mem = NULL; /* the latest of inputs_set / set_io_mem wins */
    }
    spend_cpu_us(c->cfg.io_us);
    END_CTX(c, RKNN_SUCC);
}

API int rknn_run(rknn_context context, rknn_run_extend *extend) {
    (void)extend; /* ASYNC and frame ids are not modelled: every run completes before returning */
    int rc = injected_failure(SYM_RUN);
    if (rc) return rc;
    WITH_CTX(SYM_RUN, context, c);
    for (uint32_t i = 0; i < c->n_in; i++)
        if (!c->in_data[i] && !c->in_mem[i].mem)
            END_CTX(c, FAIL(RKNN_ERR_INPUT_INVALID, "rknn_run: input %u '%s' has no data: call rknn_inputs_set or "
                                                    "rknn_set_io_mem first", i, c->model->m.in[i].name));
    int used[3];
    cores_acquire(c->core_mask, c->soc->cores, used);
    int n_used = used[0] + used[1] + used[2];
    /* Several cores on one context share the work, but not perfectly (users' experience). */
    int64_t run_ns = c->cfg.run_us * 1000;
    if (n_used > 1) run_ns = (int64_t)((double)run_ns / n_used * (1.0 + c->cfg.multicore_overhead));
    int64_t start = now_ns();
    uint64_t digest = inputs_digest(c);
    for (uint32_t i = 0; i < c->n_out; i++) {
        binding *b = &c->out_mem[i];
        if (b->mem) write_output(&c->model->m.out[i], i, digest, &b->attr, (uint8_t *)b->mem->virt_addr + b->mem->offset);
    }
    sleep_until_ns(start + run_ns);
    cores_release(used);
    c->have_run = 1;
    c->last_digest = digest;
    c->last_run_us = (run_ns + 500) / 1000;
    memcpy(c->last_cores, used, sizeof(used));
    END_CTX(c, RKNN_SUCC);
}

static int remember_alloc(standin_ctx *c, void *p) {
    if (c->n_out_allocs == c->cap_out_allocs) {
        uint32_t cap = c->cap_out_allocs ? c->cap_out_allocs * 2 : 8;
        void **bigger = realloc(c->out_allocs, cap * sizeof(void *));
        if (!bigger) return -1;
        c->out_allocs = bigger;
        c->cap_out_allocs = cap;
    }
    c->out_allocs[c->n_out_allocs++] = p;
    return 0;
}

/*
 * outputs[i] receives model output i (the vendor's examples set outputs[i].index = i; we set
 * it on return). want_float=1: float32; want_float=0: the OUTPUT_ATTR type, NCHW order.
 */
API int rknn_outputs_get(rknn_context context, uint32_t n_outputs, rknn_output outputs[], rknn_output_extend *extend) {
    (void)extend;
    int rc = injected_failure(SYM_OUTPUTS_GET);
    if (rc) return rc;
    WITH_CTX(SYM_OUTPUTS_GET, context, c);
    if (!outputs || n_outputs == 0 || n_outputs > c->n_out)
        END_CTX(c, FAIL(RKNN_ERR_OUTPUT_INVALID, "rknn_outputs_get: %u outputs asked, the model has %u", n_outputs,
                        c->n_out));
    if (!c->have_run) END_CTX(c, FAIL(RKNN_ERR_OUTPUT_INVALID, "rknn_outputs_get: call rknn_run first"));
    for (uint32_t i = 0; i < n_outputs; i++) {
        rknn_output *o = &outputs[i];
        const sm_io *io = &c->model->m.out[i];
        rknn_tensor_attr a;
        fill_attr(io, i, 0, VIEW_NORMAL, &a);
        if (o->want_float) a.type = RKNN_TENSOR_FLOAT32;
        size_t bytes = (size_t)a.n_elems * sm_type_bytes(a.type);
        if (o->is_prealloc) {
            if (!o->buf || o->size < bytes)
                END_CTX(c, FAIL(RKNN_ERR_OUTPUT_INVALID, "rknn_outputs_get: output %u '%s': preallocated buffer of %u "
                                                         "bytes, needs %zu (%s)", i, io->name, o->buf ? o->size : 0,
                                bytes, sm_type_name(a.type)));
        } else {
            void *buf = malloc(bytes ? bytes : 1);
            if (!buf || remember_alloc(c, buf)) {
                free(buf);
                END_CTX(c, FAIL(RKNN_ERR_MALLOC_FAIL, "rknn_outputs_get: out of memory"));
            }
            o->buf = buf;
            o->size = (uint32_t)bytes;
        }
        o->index = i;
        write_output(io, i, c->last_digest, &a, o->buf);
    }
    spend_cpu_us(c->cfg.io_us);
    END_CTX(c, RKNN_SUCC);
}

API int rknn_outputs_release(rknn_context context, uint32_t n_outputs, rknn_output outputs[]) {
    int rc = injected_failure(SYM_OUTPUTS_RELEASE);
    if (rc) return rc;
    WITH_CTX(SYM_OUTPUTS_RELEASE, context, c);
    if (!outputs && n_outputs) END_CTX(c, FAIL(RKNN_ERR_PARAM_INVALID, "rknn_outputs_release: outputs is NULL"));
    for (uint32_t i = 0; i < n_outputs; i++) {
        if (outputs[i].is_prealloc || !outputs[i].buf) continue;
        for (uint32_t k = 0; k < c->n_out_allocs; k++) {
            if (c->out_allocs[k] != outputs[i].buf) continue;
            free(c->out_allocs[k]);
            c->out_allocs[k] = c->out_allocs[--c->n_out_allocs];
            outputs[i].buf = NULL;
            break;
        }
    }
    END_CTX(c, RKNN_SUCC);
}

API int rknn_set_core_mask(rknn_context context, rknn_core_mask core_mask) {
    int rc = injected_failure(SYM_SET_CORE_MASK);
    if (rc) return rc;
    WITH_CTX(SYM_SET_CORE_MASK, context, c);
    unsigned mask = (unsigned)core_mask;
    int cores = c->soc->cores;
    if (mask != RKNN_NPU_CORE_AUTO && mask != RKNN_NPU_CORE_0 && mask != RKNN_NPU_CORE_1 && mask != RKNN_NPU_CORE_2 &&
        mask != RKNN_NPU_CORE_0_1 && mask != RKNN_NPU_CORE_0_1_2 && mask != RKNN_NPU_CORE_ALL)
        END_CTX(c, FAIL(RKNN_ERR_PARAM_INVALID, "rknn_set_core_mask: %#x is not a core mask (AUTO 0, 0 1, 1 2, 2 4, "
                                                "0_1 3, 0_1_2 7, ALL 0xffff)", mask));
    /* As with the vendor's stack, a single-core SoC takes AUTO only. */
    if (cores == 1 && mask != RKNN_NPU_CORE_AUTO)
        END_CTX(c, FAIL(RKNN_ERR_PARAM_INVALID, "rknn_set_core_mask: core mask %#x is only supported by RK3588, RK3576 "
                                                "(this board is %s, 1 NPU core)", mask, c->soc->name));
    if (mask == RKNN_NPU_CORE_ALL) mask = (1u << cores) - 1;
    if (mask >> cores)
        END_CTX(c, FAIL(RKNN_ERR_PARAM_INVALID, "rknn_set_core_mask: core mask %#x names a core %s does not have (%d NPU "
                                                "cores)", (unsigned)core_mask, c->soc->name, cores));
    c->core_mask = mask;
    END_CTX(c, RKNN_SUCC);
}

API int rknn_set_input_shapes(rknn_context context, uint32_t n_inputs, rknn_tensor_attr attr[]) {
    int rc = injected_failure(SYM_SET_INPUT_SHAPES);
    if (rc) return rc;
    WITH_CTX(SYM_SET_INPUT_SHAPES, context, c);
    /* Static models only: the one shape allowed is the model's own (NCHW or NHWC). */
    if (!attr || n_inputs != c->n_in)
        END_CTX(c, FAIL(RKNN_ERR_INPUT_INVALID, "rknn_set_input_shapes: %u shapes given, the model has %u inputs",
                        n_inputs, c->n_in));
    for (uint32_t i = 0; i < n_inputs; i++) {
        const sm_io *io = &c->model->m.in[i];
        rknn_tensor_attr normal, nchw;
        fill_attr(io, i, 1, VIEW_NORMAL, &normal);
        memset(&nchw, 0, sizeof(nchw));
        nchw.n_dims = io->n_dims;
        memcpy(nchw.dims, io->dims, sizeof(nchw.dims));
        const rknn_tensor_attr *want = attr[i].fmt == RKNN_TENSOR_NCHW ? &nchw : &normal;
        if (attr[i].n_dims != want->n_dims || memcmp(attr[i].dims, want->dims, want->n_dims * sizeof(uint32_t)))
            END_CTX(c, FAIL(RKNN_ERR_INPUT_INVALID, "rknn_set_input_shapes: input %u '%s': the model has static shapes "
                                                    "and this is not its shape", i, io->name));
    }
    END_CTX(c, RKNN_SUCC);
}

#ifndef RKNN_STANDIN_OLD
API rknn_tensor_mem *rknn_create_mem(rknn_context context, uint32_t size) {
    if (injected_failure(SYM_CREATE_MEM)) return NULL;
    standin_ctx *c = ctx_get(context);
    if (!c) {
        log_line('E', "rknn_create_mem: context %#llx is not valid", (unsigned long long)context);
        return NULL;
    }
    mem_block *b = calloc(1, sizeof(*b));
    void *buf = NULL;
    if (!b || posix_memalign(&buf, 64, size ? size : 1)) {
        free(b);
        log_line('E', "rknn_create_mem: out of memory for %u bytes", size);
        ctx_put(c);
        return NULL;
    }
    memset(buf, 0, size);
    /* Plain host memory: no DMA buffer, no physical address, no fd. */
    b->pub.virt_addr = buf;
    b->pub.phys_addr = 0;
    b->pub.fd = -1;
    b->pub.size = size;
    b->pub.priv_data = b;
    b->owner = context;
    pthread_mutex_lock(&c->lock);
    c->created_mem_bytes += size;
    pthread_mutex_unlock(&c->lock);
    ctx_put(c);
    return &b->pub;
}

static int is_our_mem(const rknn_tensor_mem *mem) { return mem && mem->priv_data == (const void *)mem; }

API int rknn_destroy_mem(rknn_context context, rknn_tensor_mem *mem) {
    int rc = injected_failure(SYM_DESTROY_MEM);
    if (rc) return rc;
    WITH_CTX(SYM_DESTROY_MEM, context, c);
    if (!is_our_mem(mem))
        END_CTX(c, FAIL(RKNN_ERR_PARAM_INVALID, "rknn_destroy_mem: %p was not made by rknn_create_mem", (void *)mem));
    for (uint32_t i = 0; i < c->n_in; i++)
        if (c->in_mem[i].mem == mem) c->in_mem[i].mem = NULL;
    for (uint32_t i = 0; i < c->n_out; i++)
        if (c->out_mem[i].mem == mem) c->out_mem[i].mem = NULL;
    mem_block *b = (mem_block *)mem;
    if (b->owner == context && c->created_mem_bytes >= mem->size) c->created_mem_bytes -= mem->size;
    free(mem->virt_addr);
    mem->priv_data = NULL;
    free(b);
    END_CTX(c, RKNN_SUCC);
}

/*
 * Binds a buffer to an input or output. The rule: attr->name says which tensor (inputs are
 * searched first, then outputs: names are unique within a model); attr->index must agree.
 * attr's fmt, dims and type describe the buffer's layout, as given by any of the attr
 * queries (possibly with type or fmt changed by the caller). The buffer must hold
 * product(dims) x sizeof(type) bytes from mem->offset.
 */
API int rknn_set_io_mem(rknn_context context, rknn_tensor_mem *mem, rknn_tensor_attr *attr) {
    int rc = injected_failure(SYM_SET_IO_MEM);
    if (rc) return rc;
    WITH_CTX(SYM_SET_IO_MEM, context, c);
    if (!is_our_mem(mem) || !attr)
        END_CTX(c, FAIL(RKNN_ERR_PARAM_INVALID, "rknn_set_io_mem: mem must come from rknn_create_mem and attr be set"));
    const sm_model *m = &c->model->m;
    int is_input = -1;
    uint32_t index = attr->index;
    for (uint32_t i = 0; i < m->n_in && is_input < 0; i++)
        if (!strncmp(m->in[i].name, attr->name, RKNN_MAX_NAME_LEN)) { is_input = 1; index = i; }
    for (uint32_t i = 0; i < m->n_out && is_input < 0; i++)
        if (!strncmp(m->out[i].name, attr->name, RKNN_MAX_NAME_LEN)) { is_input = 0; index = i; }
    if (is_input < 0)
        END_CTX(c, FAIL(RKNN_ERR_PARAM_INVALID, "rknn_set_io_mem: attr->name '%.64s' is neither an input nor an output "
                                                "of the model: pass an attr from rknn_query", attr->name));
    if (index != attr->index)
        END_CTX(c, FAIL(RKNN_ERR_PARAM_INVALID, "rknn_set_io_mem: attr->index %u, but '%.64s' is %s %u", attr->index,
                        attr->name, is_input ? "input" : "output", index));
    const sm_io *io = is_input ? &m->in[index] : &m->out[index];
    uint64_t elems = 1, logical = 1;
    for (uint32_t d = 0; d < attr->n_dims && d < RKNN_MAX_DIMS; d++) elems *= attr->dims[d];
    for (uint32_t d = 0; d < io->n_dims; d++) logical *= io->dims[d];
    int layout_ok = attr->n_dims >= 1 && attr->n_dims <= RKNN_MAX_DIMS && (unsigned)attr->type <= RKNN_TENSOR_BFLOAT16;
    if (layout_ok && attr->fmt == RKNN_TENSOR_NC1HWC2)
        layout_ok = io->n_dims == 4 && attr->n_dims == 5 && attr->dims[0] == io->dims[0] && attr->dims[2] == io->dims[2] &&
                    attr->dims[3] == io->dims[3] && attr->dims[4] &&
                    (uint64_t)attr->dims[1] * attr->dims[4] >= io->dims[1];
    else if (layout_ok && attr->fmt == RKNN_TENSOR_NHWC && io->n_dims == 4)
        layout_ok = attr->n_dims == 4 && attr->dims[0] == io->dims[0] && attr->dims[1] == io->dims[2] &&
                    attr->dims[2] == io->dims[3] && attr->dims[3] == io->dims[1];
    else if (layout_ok)
        layout_ok = elems == logical;
    if (!layout_ok)
        END_CTX(c, FAIL(RKNN_ERR_PARAM_INVALID, "rknn_set_io_mem: '%.64s': attr fmt %d / dims / type %d do not describe "
                                                "this tensor", attr->name, (int)attr->fmt, (int)attr->type));
    uint64_t need = elems * sm_type_bytes(attr->type);
    if (mem->offset < 0 || (uint64_t)mem->offset + need > mem->size)
        END_CTX(c, FAIL(RKNN_ERR_PARAM_INVALID, "rknn_set_io_mem: '%.64s' needs %llu bytes at offset %d, the mem has %u",
                        attr->name, (unsigned long long)need, mem->offset, mem->size));
    binding *b = is_input ? &c->in_mem[index] : &c->out_mem[index];
    b->mem = mem;
    b->attr = *attr;
    b->attr.size = (uint32_t)need;
    END_CTX(c, RKNN_SUCC);
}
#endif
