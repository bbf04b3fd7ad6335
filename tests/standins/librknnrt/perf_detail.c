/*
 * perf_detail.c: renders the per-layer profile like the vendor's runtime prints it.
 *
 * The layers are the operators of the model's compiled graph (InputOperator, ConvRelu, ...,
 * OutputOperator, with the graph's full names and tensor shapes); a model whose graph cannot
 * be read gets a short generic list. The numbers are made up but consistent: layer times
 * (shared out by output size, convolutions weigh more) add up exactly to the run's NPU
 * time, cycles are time x NPU clock (NPU cycles for convolutions only, as on the real
 * thing), WorkLoad follows the cores of the last run (convolutions split over all of them,
 * other NPU layers on the first), and layers on Target CPU show no NPU work.
 */
#include "perf_detail.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int need = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (need < 0) { b->oom = 1; return; }
        if (b->s && b->n + (size_t)need < b->cap) { b->n += (size_t)need; return; }
        size_t cap = (b->cap + (size_t)need + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) { b->oom = 1; return; }
        b->s = s;
        b->cap = cap;
    }
}

static void sb_line(sbuf *b, char c, int width) {
    for (int i = 0; i < width; i++) sb_printf(b, "%c", c);
    sb_printf(b, "\n");
}

typedef struct {
    char op[64];
    char name[300]; /* room for "OutputOperator:" + a 255-character tensor name */
    char dtype[16];
    char in_shape[64];
    char out_shape[32];
    int on_npu, is_conv;
    double weight;
    double rw_kb;
    int64_t us;
} layer;

static void shape_text(const uint32_t *dims, uint32_t n, char *out, size_t cap) {
    size_t k = (size_t)snprintf(out, cap, "(");
    for (uint32_t d = 0; d < n && k < cap; d++) k += (size_t)snprintf(out + k, cap - k, d ? ",%u" : "%u", dims[d]);
    if (k < cap) snprintf(out + k, cap - k, ")");
}

/* "(a),(b),(c)" while it fits in `width` characters, then ",..." as the vendor does. */
static void shapes_text(const sm_model *m, const int *idx, int n, size_t width, char *out, size_t cap) {
    out[0] = 0;
    size_t used = 0;
    int shown = 0;
    for (int i = 0; i < n; i++) {
        if (idx[i] < 0) continue;
        const sm_tensor *t = &m->tensors[idx[i]];
        char one[96];
        shape_text(t->dims, t->n_dims, one, sizeof(one));
        size_t add = strlen(one) + (shown ? 1 : 0);
        if (used + add > width - 4 && shown) {
            snprintf(out + used, cap - used, ",...");
            return;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s%s", shown ? "," : "", one);
        shown++;
        if (used >= cap - 1) return;
    }
    if (!shown) snprintf(out, cap, "\\");
}

static uint64_t tensor_elems(const sm_tensor *t) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= t->dims[d] ? t->dims[d] : 1;
    return n;
}

static int listed(const char *list, const char *op) {
    if (!list || !*op) return 0;
    size_t len = strlen(op);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && !strncmp(p, op, n)) return 1;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

static void upper(char *dst, const char *src, size_t cap) {
    size_t i = 0;
    for (; src[i] && i < cap - 1; i++) dst[i] = (char)(src[i] >= 'a' && src[i] <= 'z' ? src[i] - 32 : src[i]);
    dst[i] = 0;
}

static double tensor_kb(const sm_tensor *t) {
    size_t elem = strstr(t->dtype, "16") ? 2 : strstr(t->dtype, "32") ? 4 : 1;
    double bytes = t->bytes ? t->bytes : (double)tensor_elems(t) * (t->dtype[0] ? elem : 2);
    return bytes / 1024.0;
}

static int build_from_graph(const sm_model *m, const pd_config *cfg, layer *out) {
    int n = 0;
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const sm_node *node = &m->nodes[i];
        if (!node->op[0]) continue;
        layer *l = &out[n++];
        snprintf(l->op, sizeof(l->op), "%s", node->op);
        snprintf(l->name, sizeof(l->name), "%s", node->name);
        l->on_npu = node->on_npu && !listed(cfg->cpu_ops, node->op);
        l->is_conv = !strncmp(node->op, "Conv", 4);
        shapes_text(m, node->in, node->n_in, 40, l->in_shape, sizeof(l->in_shape));
        shapes_text(m, node->out, node->n_out, 22, l->out_shape, sizeof(l->out_shape));
        const sm_tensor *first = node->n_in && node->in[0] >= 0   ? &m->tensors[node->in[0]]
                                 : node->n_out && node->out[0] >= 0 ? &m->tensors[node->out[0]]
                                                                    : NULL;
        upper(l->dtype, first && first->dtype[0] ? first->dtype : "float16", sizeof(l->dtype));
        uint64_t elems = 0;
        for (int k = 0; k < node->n_out; k++)
            if (node->out[k] >= 0) elems += tensor_elems(&m->tensors[node->out[k]]);
        if (!elems && node->n_in && node->in[0] >= 0) elems = tensor_elems(&m->tensors[node->in[0]]);
        for (int k = 0; k < node->n_in; k++)
            if (node->in[k] >= 0) l->rw_kb += tensor_kb(&m->tensors[node->in[k]]);
        for (int k = 0; k < node->n_out; k++)
            if (node->out[k] >= 0) l->rw_kb += tensor_kb(&m->tensors[node->out[k]]);
        /* A convolution costs more than a copy of the same size; CPU glue costs little. */
        l->weight = (double)elems * (l->is_conv ? 4.0 : 1.0) / (l->on_npu ? 1.0 : 8.0) + 64.0;
    }
    return n;
}

/* A plausible list for a model whose graph we could not read. */
static int build_generic(const sm_model *m, const pd_config *cfg, layer *out) {
    int n = 0;
    for (uint32_t i = 0; i < m->n_in; i++) {
        layer *l = &out[n++];
        snprintf(l->op, sizeof(l->op), "InputOperator");
        snprintf(l->name, sizeof(l->name), "InputOperator:%s", m->in[i].name);
        snprintf(l->in_shape, sizeof(l->in_shape), "\\");
        shape_text(m->in[i].dims, m->in[i].n_dims, l->out_shape, sizeof(l->out_shape));
        upper(l->dtype, sm_type_name(m->in[i].type), sizeof(l->dtype));
        l->weight = 64;
    }
    const sm_io *src = &m->in[0];
    for (int k = 0; k < 4; k++) {
        layer *l = &out[n++];
        snprintf(l->op, sizeof(l->op), k == 3 ? "Conv" : "ConvRelu");
        snprintf(l->name, sizeof(l->name), "Conv:standin_generic_conv_%d", k);
        l->on_npu = !listed(cfg->cpu_ops, l->op);
        l->is_conv = 1;
        shape_text(src->dims, src->n_dims, l->in_shape, sizeof(l->in_shape));
        shape_text(src->dims, src->n_dims, l->out_shape, sizeof(l->out_shape));
        upper(l->dtype, sm_type_name(src->type), sizeof(l->dtype));
        l->weight = 1000;
        l->rw_kb = 16;
    }
    for (uint32_t i = 0; i < m->n_out; i++) {
        layer *l = &out[n++];
        snprintf(l->op, sizeof(l->op), "OutputOperator");
        snprintf(l->name, sizeof(l->name), "OutputOperator:%s", m->out[i].name);
        shape_text(m->out[i].dims, m->out[i].n_dims, l->in_shape, sizeof(l->in_shape));
        snprintf(l->out_shape, sizeof(l->out_shape), "\\");
        upper(l->dtype, sm_type_name(m->out[i].type), sizeof(l->dtype));
        l->weight = 64;
    }
    return n;
}

/* Integer layer times that add up exactly to total_us: every layer gets at least 1 us when
 * there is enough time (as on the real tables), the rest goes by weight (largest remainder). */
static void share_time(layer *ls, int n, int64_t total_us) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += ls[i].weight;
    int64_t floor_us = total_us >= n ? 1 : 0;
    int64_t spread = total_us - floor_us * n, given = 0;
    for (int i = 0; i < n; i++) {
        ls[i].us = floor_us + (int64_t)((double)spread * ls[i].weight / sum);
        given += ls[i].us;
    }
    while (given < total_us) { /* hand out the rest, one microsecond each, biggest remainder first */
        int best = 0;
        double best_rem = -1e300;
        for (int i = 0; i < n; i++) {
            double rem = (double)spread * ls[i].weight / sum - (double)(ls[i].us - floor_us);
            if (rem > best_rem) { best_rem = rem; best = i; }
        }
        ls[best].us++;
        given++;
    }
}

/* Per-core shares of one layer, in percent. */
static void workload(const layer *l, const pd_config *cfg, double share[3]) {
    int used[3], n_used = 0, first = -1;
    for (int c = 0; c < 3; c++) {
        used[c] = c < cfg->n_cores && cfg->core_used[c];
        if (used[c]) { n_used++; if (first < 0) first = c; }
    }
    for (int c = 0; c < 3; c++) share[c] = 0;
    if (!l->on_npu || !n_used) return;
    if (l->is_conv)
        for (int c = 0; c < 3; c++) share[c] = used[c] ? 100.0 / n_used : 0;
    else
        share[first] = 100.0;
}

static int n_shown_cores(const pd_config *cfg) { return cfg->n_cores == 2 ? 2 : 3; }

/* "a/b/c" with one entry per shown core, e.g. "100.0%/0.0%/0.0%". */
static void per_core_text(const double v[3], int n, const char *fmt, const char *unit, char *out, size_t cap) {
    out[0] = 0;
    for (int c = 0; c < n; c++) {
        char one[32];
        snprintf(one, sizeof(one), fmt, v[c]);
        size_t k = strlen(out);
        snprintf(out + k, cap - k, "%s%s%s", c ? "/" : "", one, unit);
    }
}

static double mac_usage(const layer *l) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = l->name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return 5.0 + (double)(h % 7000) / 100.0;
}

typedef struct {
    char op[64];
    int calls;
    int64_t cpu_us, npu_us;
} rank_row;

static int by_total_desc(const void *a, const void *b) {
    const rank_row *x = a, *y = b;
    int64_t tx = x->cpu_us + x->npu_us, ty = y->cpu_us + y->npu_us;
    return tx < ty ? 1 : tx > ty ? -1 : strcmp(x->op, y->op);
}

static int rank(const layer *ls, int n, rank_row *rows) {
    int n_rows = 0;
    for (int i = 0; i < n; i++) {
        int r = 0;
        while (r < n_rows && strcmp(rows[r].op, ls[i].op)) r++;
        if (r == n_rows) {
            memset(&rows[r], 0, sizeof(rows[r]));
            snprintf(rows[r].op, sizeof(rows[r].op), "%s", ls[i].op);
            n_rows++;
        }
        rows[r].calls++;
        if (ls[i].on_npu) rows[r].npu_us += ls[i].us;
        else rows[r].cpu_us += ls[i].us;
    }
    qsort(rows, (size_t)n_rows, sizeof(rank_row), by_total_desc);
    return n_rows;
}

/* "66.0", "15.23", "1.9": two decimals with trailing zeros cut, as the 1.x table prints. */
static void short_ratio(double v, char *out, size_t cap) {
    snprintf(out, cap, "%.2f", v);
    size_t len = strlen(out);
    if (len > 1 && out[len - 1] == '0') out[len - 1] = 0;
}

static void render_current(sbuf *b, const layer *ls, int n, const pd_config *cfg, const rank_row *rows, int n_rows) {
    const int width = 218;
    int shown = n_shown_cores(cfg);
    char wl_head[32];
    snprintf(wl_head, sizeof(wl_head), shown == 2 ? "WorkLoad(0/1)" : "WorkLoad(0/1/2)");
    sb_line(b, '-', width);
    sb_printf(b, "%*s%s\n", 89, "", "Network Layer Information Table");
    sb_line(b, '-', width);
    sb_printf(b, "%-5s%-17s%-9s%-7s%-41s%-23s%-25s%-13s%-21s%-21s%-13s%s\n", "ID", "OpType", "DataType", "Target",
              "InputShape", "OutputShape", "Cycles(DDR/NPU/Total)", "Time(us)", "MacUsage(%)", wl_head, "RW(KB)",
              "FullName");
    sb_line(b, '-', width);
    double rw_total = 0;
    int64_t t_total = 0;
    for (int i = 0; i < n; i++) {
        const layer *l = &ls[i];
        long long total = l->on_npu ? (long long)l->us * cfg->npu_mhz : 0;
        long long npu = l->on_npu && l->is_conv ? total : 0;
        long long ddr = l->on_npu ? (l->is_conv ? total * 3 / 10 : total) : 0;
        char cycles[48], mac[48], wl[48];
        snprintf(cycles, sizeof(cycles), "%lld/%lld/%lld", ddr, npu, total);
        double share[3];
        workload(l, cfg, share);
        if (l->on_npu && l->is_conv) {
            double usage[3];
            for (int c = 0; c < 3; c++) usage[c] = share[c] > 0 ? mac_usage(l) : 0;
            per_core_text(usage, shown, "%.2f", "", mac, sizeof(mac));
        } else {
            snprintf(mac, sizeof(mac), "\\");
        }
        per_core_text(share, shown, "%.1f", "%", wl, sizeof(wl));
        sb_printf(b, "%-5d%-17s%-9s%-7s%-41s%-23s%-25s%-13lld%-21s%-21s%-13.0f%s\n", i + 1, l->op, l->dtype,
                  l->on_npu ? "NPU" : "CPU", l->in_shape, l->out_shape, cycles, (long long)l->us, mac, wl, l->rw_kb,
                  l->name);
        rw_total += l->rw_kb;
        t_total += l->us;
    }
    sb_line(b, '-', width);
    sb_printf(b, "Total Operator Elapsed Per Frame Time(us): %lld\n", (long long)t_total);
    sb_printf(b, "Total Memory Read/Write Per Frame Size(KB): %.2f\n", rw_total);
    sb_line(b, '-', width);
    sb_line(b, '-', 99);
    sb_printf(b, "%*s%s\n", 33, "", "Operator Time Consuming Ranking Table");
    sb_line(b, '-', 99);
    sb_printf(b, "%-19s%-13s%-13s%-13s%-13s%-15s%s\n", "OpType", "CallNumber", "CPUTime(us)", "GPUTime(us)",
              "NPUTime(us)", "TotalTime(us)", "TimeRatio(%)");
    sb_line(b, '-', 99);
    for (int r = 0; r < n_rows; r++) {
        int64_t tot = rows[r].cpu_us + rows[r].npu_us;
        sb_printf(b, "%-19s%-13d%-13lld%-13d%-13lld%-15lld%.2f%%\n", rows[r].op, rows[r].calls,
                  (long long)rows[r].cpu_us, 0, (long long)rows[r].npu_us, (long long)tot,
                  t_total ? 100.0 * (double)tot / (double)t_total : 0.0);
    }
    sb_line(b, '-', 99);
}

static void render_old(sbuf *b, const layer *ls, int n, const pd_config *cfg, const rank_row *rows, int n_rows) {
    const int width = 115;
    int shown = n_shown_cores(cfg);
    char wl_head[48];
    snprintf(wl_head, sizeof(wl_head), shown == 2 ? "WorkLoad(0/1)-ImproveTherical" : "WorkLoad(0/1/2)-ImproveTherical");
    sb_line(b, '=', width);
    sb_printf(b, "%*s%s\n", 28, "", "Performance");
    sb_printf(b, "        #### The performance result is just for debugging, ####\n");
    sb_printf(b, "        #### may worse than actual performance!            ####\n");
    sb_line(b, '=', width);
    sb_printf(b, "%-5s%-17s%-9s%-7s%-45s%-23s%-15s%-15s%-15s%-15s%-15s%-39s%-15s%-15s%-15s%s\n", "ID", "OpType",
              "DataType", "Target", "InputShape", "OutputShape", "DDR Cycles", "NPU Cycles", "Total Cycles",
              "Time(us)", "MacUsage(%)", wl_head, "Task Number", "Lut Number", "RW(KB)", "FullName");
    double rw_total = 0;
    int64_t t_total = 0;
    for (int i = 0; i < n; i++) {
        const layer *l = &ls[i];
        long long total = l->on_npu ? (long long)l->us * cfg->npu_mhz : 0;
        long long npu = l->on_npu && l->is_conv ? total : 0;
        long long ddr = l->on_npu ? (l->is_conv ? total * 3 / 10 : total) : 0;
        double share[3];
        workload(l, cfg, share);
        double top = 0;
        int n_busy = 0;
        for (int c = 0; c < 3; c++) {
            if (share[c] > top) top = share[c];
            if (share[c] > 0) n_busy++;
        }
        char wl[64], mac[16];
        per_core_text(share, shown, "%.1f", "%", wl, sizeof(wl));
        size_t k = strlen(wl);
        snprintf(wl + k, sizeof(wl) - k, " - Up:%.1f%%", n_busy > 1 ? 100.0 - top : 0.0);
        if (l->on_npu && l->is_conv) snprintf(mac, sizeof(mac), "%.2f", mac_usage(l));
        else snprintf(mac, sizeof(mac), "\\");
        sb_printf(b, "%-5d%-17s%-9s%-7s%-45s%-23s%-15lld%-15lld%-15lld%-15lld%-15s%-39s%-15d%-15d%-15.2f%s\n", i + 1,
                  l->op, l->dtype, l->on_npu ? "NPU" : "CPU", l->in_shape, l->out_shape, ddr, npu, total,
                  (long long)l->us, mac, wl, l->on_npu ? 1 + (int)(l->weight > 4096) : 0, 0, l->rw_kb, l->name);
        rw_total += l->rw_kb;
        t_total += l->us;
    }
    sb_printf(b, "\nTotal Operator Elapsed Time(us): %lld\n", (long long)t_total);
    sb_printf(b, "Total Memory RW Amount(MB): %lld\n", (long long)(rw_total / 1024.0));
    sb_printf(b, "Operator Time-Consuming Ranking:\n");
    sb_printf(b, "%-17s%-16s%-16s%-16s%-18s%s\n", "OpType", "Call Number", "CPU Time(us)", "NPU Time(us)",
              "Total Time(us)", "Time Ratio(%)");
    for (int r = 0; r < n_rows; r++) {
        int64_t tot = rows[r].cpu_us + rows[r].npu_us;
        char ratio[32];
        short_ratio(t_total ? 100.0 * (double)tot / (double)t_total : 0.0, ratio, sizeof(ratio));
        sb_printf(b, "%-17s%-16d%-16lld%-16lld%-18lld%s\n", rows[r].op, rows[r].calls, (long long)rows[r].cpu_us,
                  (long long)rows[r].npu_us, (long long)tot, ratio);
    }
    sb_printf(b, "\n");
    sb_line(b, '=', width);
}

char *pd_render(const sm_model *m, const pd_config *cfg) {
    size_t cap = (m->n_nodes ? m->n_nodes : 0) + m->n_in + m->n_out + 8;
    layer *ls = calloc(cap, sizeof(layer));
    rank_row *rows = calloc(cap, sizeof(rank_row));
    sbuf b = {0};
    if (ls && rows) {
        int n = m->n_nodes ? build_from_graph(m, cfg, ls) : 0;
        if (!n) n = build_generic(m, cfg, ls);
        share_time(ls, n, cfg->total_us);
        int n_rows = rank(ls, n, rows);
        if (cfg->old_format) render_old(&b, ls, n, cfg, rows, n_rows);
        else render_current(&b, ls, n, cfg, rows, n_rows);
    }
    free(ls);
    free(rows);
    if (b.oom || !b.s) { free(b.s); return NULL; }
    return b.s;
}
