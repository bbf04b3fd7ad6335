/*
 * model.c: reads a .rknn file into an sm_model (FORMAT.md describes the layout).
 *
 * Two parts of the file are used. The JSON text at the end is the primary source for the
 * model's inputs and outputs (names, shapes, quantized or not) and its target platform. The
 * flatbuffer in the middle adds what the JSON lacks: the runtime's dtype/layout of each
 * input/output, quantization zero point and scale, native shapes, and the operator list for
 * the per-layer table. The flatbuffer's field numbers were found by reading files the
 * toolkit wrote (no schema is published); every read is bounds-checked, and if the
 * flatbuffer does not look as expected the model still loads with defaults from the JSON.
 */
#include "model.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* A small JSON reader (objects, arrays, strings, numbers, true/false/null).              */
/* ------------------------------------------------------------------------------------ */

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
    jtype t;
    double num;
    char *str;          /* J_STR */
    int n;              /* J_ARR / J_OBJ: number of items */
    struct jval *items; /* J_ARR / J_OBJ */
    char **keys;        /* J_OBJ */
} jval;

typedef struct {
    const char *p, *end;
    int depth;
} jparser;

static void j_free(jval *v) {
    if (!v) return;
    free(v->str);
    for (int i = 0; i < v->n; i++) {
        j_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof(*v));
}

static void j_ws(jparser *jp) {
    while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\n' || *jp->p == '\r' || *jp->p == '\t'))
        jp->p++;
}

static int j_value(jparser *jp, jval *out);

static int j_string(jparser *jp, char **out) {
    if (jp->p >= jp->end || *jp->p != '"') return -1;
    jp->p++;
    size_t cap = 16, n = 0;
    char *s = malloc(cap);
    if (!s) return -1;
    while (jp->p < jp->end && *jp->p != '"') {
        char c = *jp->p++;
        if (c == '\\') {
            if (jp->p >= jp->end) break;
            char e = *jp->p++;
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                /* Names are ASCII in practice; other code points become '?'. */
                if (jp->end - jp->p < 4) { free(s); return -1; }
                unsigned cp = (unsigned)strtoul((char[5]){jp->p[0], jp->p[1], jp->p[2], jp->p[3], 0}, NULL, 16);
                jp->p += 4;
                c = cp < 0x80 ? (char)cp : '?';
                break;
            }
            default: c = e; /* \" \\ \/ */
            }
        }
        if (n + 2 > cap) {
            char *bigger = realloc(s, cap *= 2);
            if (!bigger) { free(s); return -1; }
            s = bigger;
        }
        s[n++] = c;
    }
    if (jp->p >= jp->end) { free(s); return -1; }
    jp->p++; /* closing quote */
    s[n] = 0;
    *out = s;
    return 0;
}

static int j_push(jval *v, int *cap) {
    if (v->n < *cap) return 0;
    *cap = *cap ? *cap * 2 : 8;
    jval *items = realloc(v->items, sizeof(jval) * (size_t)*cap);
    if (!items) return -1;
    v->items = items;
    if (v->t == J_OBJ) {
        char **keys = realloc(v->keys, sizeof(char *) * (size_t)*cap);
        if (!keys) return -1;
        v->keys = keys;
    }
    return 0;
}

static int j_container(jparser *jp, jval *out, char close) {
    int cap = 0;
    out->t = close == '}' ? J_OBJ : J_ARR;
    jp->p++;
    j_ws(jp);
    if (jp->p < jp->end && *jp->p == close) { jp->p++; return 0; }
    for (;;) {
        if (j_push(out, &cap)) return -1;
        char *key = NULL;
        if (out->t == J_OBJ) {
            j_ws(jp);
            if (j_string(jp, &key)) return -1;
            j_ws(jp);
            if (jp->p >= jp->end || *jp->p != ':') { free(key); return -1; }
            jp->p++;
        }
        memset(&out->items[out->n], 0, sizeof(jval));
        if (out->t == J_OBJ) out->keys[out->n] = key;
        out->n++;
        if (j_value(jp, &out->items[out->n - 1])) return -1;
        j_ws(jp);
        if (jp->p >= jp->end) return -1;
        if (*jp->p == ',') { jp->p++; continue; }
        if (*jp->p == close) { jp->p++; return 0; }
        return -1;
    }
}

static int j_value(jparser *jp, jval *out) {
    memset(out, 0, sizeof(*out));
    if (++jp->depth > 64) return -1;
    j_ws(jp);
    if (jp->p >= jp->end) return -1;
    int rc = 0;
    char c = *jp->p;
    if (c == '{') rc = j_container(jp, out, '}');
    else if (c == '[') rc = j_container(jp, out, ']');
    else if (c == '"') { out->t = J_STR; rc = j_string(jp, &out->str); }
    else if (!strncmp(jp->p, "true", 4) || !strncmp(jp->p, "false", 5)) {
        out->t = J_BOOL;
        out->num = c == 't';
        jp->p += c == 't' ? 4 : 5;
    } else if (!strncmp(jp->p, "null", 4)) { out->t = J_NULL; jp->p += 4; }
    else {
        char tmp[64];
        size_t n = 0;
        while (jp->p + n < jp->end && n < sizeof(tmp) - 1 && jp->p[n] && strchr("+-0123456789.eE", jp->p[n])) n++;
        if (!n) return -1;
        memcpy(tmp, jp->p, n);
        tmp[n] = 0;
        out->t = J_NUM;
        out->num = strtod(tmp, NULL);
        jp->p += n;
    }
    jp->depth--;
    return rc;
}

static int j_parse(const char *text, size_t len, jval *out) {
    jparser jp = {text, text + len, 0};
    if (j_value(&jp, out)) { j_free(out); return -1; }
    return 0;
}

static const jval *j_get(const jval *obj, const char *key) {
    if (!obj || obj->t != J_OBJ) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}

static const char *j_str(const jval *v) { return v && v->t == J_STR ? v->str : NULL; }
static int j_int(const jval *v, int dflt) { return v && v->t == J_NUM ? (int)v->num : dflt; }

/* ------------------------------------------------------------------------------------ */
/* Bounds-checked flatbuffer reads (little endian, as the toolkit writes them).           */
/* ------------------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    size_t n;
} fb_buf;

static int fb_u32(const fb_buf *b, size_t off, uint32_t *v) {
    if (off + 4 > b->n || off + 4 < off) return -1;
    *v = (uint32_t)b->p[off] | (uint32_t)b->p[off + 1] << 8 | (uint32_t)b->p[off + 2] << 16 |
         (uint32_t)b->p[off + 3] << 24;
    return 0;
}

/* Absolute offset of field idx of the table at `table`, or 0 when the field is absent. */
static size_t fb_field(const fb_buf *b, size_t table, int idx) {
    uint32_t soff;
    if (fb_u32(b, table, &soff)) return 0;
    int64_t vt = (int64_t)table - (int32_t)soff;
    if (vt < 0 || (size_t)vt + 4 > b->n) return 0;
    unsigned vsize = b->p[vt] | b->p[vt + 1] << 8;
    if ((unsigned)(4 + 2 * idx + 2) > vsize || (size_t)vt + vsize > b->n) return 0;
    unsigned foff = b->p[vt + 4 + 2 * idx] | b->p[vt + 5 + 2 * idx] << 8;
    return foff ? table + foff : 0;
}

/* Follows the offset stored in a field (strings, vectors, sub-tables). */
static size_t fb_ref(const fb_buf *b, size_t table, int idx) {
    size_t f = fb_field(b, table, idx);
    uint32_t rel;
    if (!f || fb_u32(b, f, &rel) || f + rel >= b->n) return 0;
    return f + rel;
}

static int fb_byte(const fb_buf *b, size_t table, int idx, int dflt) {
    size_t f = fb_field(b, table, idx);
    return f && f < b->n ? b->p[f] : dflt;
}

static int fb_int(const fb_buf *b, size_t table, int idx, int dflt) {
    size_t f = fb_field(b, table, idx);
    uint32_t v;
    return f && !fb_u32(b, f, &v) ? (int)v : dflt;
}

/* A vector field: element count, and the offset of its first element. */
static int fb_vec(const fb_buf *b, size_t table, int idx, size_t elem, size_t *first, uint32_t *count) {
    size_t v = fb_ref(b, table, idx);
    if (!v || fb_u32(b, v, count) || v + 4 + (uint64_t)*count * elem > b->n) return -1;
    *first = v + 4;
    return 0;
}

static int fb_string(const fb_buf *b, size_t table, int idx, char *out, size_t cap) {
    size_t first;
    uint32_t len;
    out[0] = 0;
    if (fb_vec(b, table, idx, 1, &first, &len)) return -1;
    size_t n = len < cap - 1 ? len : cap - 1;
    memcpy(out, b->p + first, n);
    out[n] = 0;
    return 0;
}

/* The string field as a malloc'd copy (for the JSON strings embedded in the flatbuffer). */
static char *fb_string_dup(const fb_buf *b, size_t table, int idx, size_t *len_out) {
    size_t first;
    uint32_t len;
    if (fb_vec(b, table, idx, 1, &first, &len)) return NULL;
    char *s = malloc((size_t)len + 1);
    if (!s) return NULL;
    memcpy(s, b->p + first, len);
    s[len] = 0;
    *len_out = len;
    return s;
}

static size_t fb_table_at(const fb_buf *b, size_t elem_off) {
    uint32_t rel;
    if (fb_u32(b, elem_off, &rel) || elem_off + rel >= b->n) return 0;
    return elem_off + rel;
}

/* Field numbers, as observed in files from rknn-toolkit2 2.5.0 (FORMAT.md). */
enum { FB_MODEL_GRAPHS = 2, FB_MODEL_COMPILER = 7, FB_MODEL_INPUT_JSON = 12, FB_MODEL_OUTPUT_JSON = 13 };
enum { FB_GRAPH_TENSORS = 0, FB_GRAPH_NODES = 1 };
enum {
    FB_TENSOR_KIND = 2, FB_TENSOR_NATIVE_SHAPE = 3, FB_TENSOR_SHAPE = 4, FB_TENSOR_NAME = 5,
    FB_TENSOR_QNT_DTYPE = 7, FB_TENSOR_SCALE = 10, FB_TENSOR_ZP = 11, FB_TENSOR_BYTES = 12
};
enum { FB_NODE_OP = 1, FB_NODE_NAME = 2, FB_NODE_TARGET = 3, FB_NODE_INPUTS = 4, FB_NODE_OUTPUTS = 5 };
#define FB_TARGET_NPU 2

/* ------------------------------------------------------------------------------------ */

size_t sm_type_bytes(rknn_tensor_type type) {
    switch (type) {
    case RKNN_TENSOR_FLOAT32: case RKNN_TENSOR_INT32: case RKNN_TENSOR_UINT32: return 4;
    case RKNN_TENSOR_FLOAT16: case RKNN_TENSOR_INT16: case RKNN_TENSOR_UINT16: case RKNN_TENSOR_BFLOAT16:
        return 2;
    case RKNN_TENSOR_INT64: return 8;
    default: return 1; /* int8, uint8, bool; int4 is packed but counted as bytes here */
    }
}

const char *sm_type_name(rknn_tensor_type type) {
    static const char *names[] = {"FP32", "FP16", "INT8", "UINT8", "INT16", "UINT16",
                                  "INT32", "UINT32", "INT64", "BOOL", "INT4", "BF16"};
    return (unsigned)type < sizeof(names) / sizeof(names[0]) ? names[type] : "UNKNOWN";
}

static int type_from_name(const char *s, rknn_tensor_type *out) {
    static const struct { const char *name; rknn_tensor_type type; } map[] = {
        {"float32", RKNN_TENSOR_FLOAT32}, {"float16", RKNN_TENSOR_FLOAT16}, {"int8", RKNN_TENSOR_INT8},
        {"uint8", RKNN_TENSOR_UINT8},     {"int16", RKNN_TENSOR_INT16},     {"uint16", RKNN_TENSOR_UINT16},
        {"int32", RKNN_TENSOR_INT32},     {"uint32", RKNN_TENSOR_UINT32},   {"int64", RKNN_TENSOR_INT64},
        {"bool", RKNN_TENSOR_BOOL},       {"int4", RKNN_TENSOR_INT4},       {"bfloat16", RKNN_TENSOR_BFLOAT16},
    };
    if (!s) return -1;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(s, map[i].name)) { *out = map[i].type; return 0; }
    return -1;
}

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* A fast 64-bit hash, eight bytes a step: every byte counts, and order matters. */
uint64_t sm_hash(const void *data, size_t n, uint64_t seed) {
    const uint8_t *p = data;
    uint64_t h = seed ^ (0x9E3779B97F4A7C15ull * (n + 1));
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x94D049BB133111EBull;
    h ^= h >> 31;
    return h * 0x9E3779B97F4A7C15ull;
}

static void set_err(char *err, size_t len, const char *msg) { snprintf(err, len, "%s", msg); }

/* Reads the JSON trailer: targets, compiler version, the inputs and outputs. */
static int parse_trailer(const jval *root, sm_model *m, char *err, size_t err_len) {
    const jval *targets = j_get(root, "target_platform");
    const jval *norm = j_get(root, "norm_tensor");
    const jval *graph = j_get(root, "graph");
    if (!targets || !norm || norm->t != J_ARR || !graph || graph->t != J_ARR) {
        set_err(err, err_len, "its JSON part lacks target_platform, norm_tensor or graph");
        return -1;
    }
    if (targets->t == J_STR) {
        snprintf(m->targets[m->n_targets++], sizeof(m->targets[0]), "%s", targets->str);
    } else if (targets->t == J_ARR) {
        for (int i = 0; i < targets->n && m->n_targets < SM_MAX_TARGETS; i++)
            if (j_str(&targets->items[i]))
                snprintf(m->targets[m->n_targets++], sizeof(m->targets[0]), "%s", targets->items[i].str);
    }
    for (int i = 0; i < m->n_targets; i++)
        for (char *c = m->targets[i]; *c; c++) *c = (char)tolower((unsigned char)*c);
    if (!m->n_targets) {
        set_err(err, err_len, "its target_platform is empty");
        return -1;
    }
    if (j_str(j_get(root, "version")))
        snprintf(m->compiler, sizeof(m->compiler), "%s", j_get(root, "version")->str);

    /* "graph" links input/output slots to norm_tensor entries. */
    for (int pass = 0; pass < 2; pass++) {
        const char *side = pass ? "output" : "input";
        uint32_t count = 0;
        for (int i = 0; i < graph->n; i++) {
            const char *left = j_str(j_get(&graph->items[i], "left"));
            if (left && !strcmp(left, side)) count++;
        }
        sm_io *ios = count ? calloc(count, sizeof(sm_io)) : NULL;
        if (count && !ios) { set_err(err, err_len, "out of memory"); return -1; }
        if (pass) { m->out = ios; m->n_out = count; } else { m->in = ios; m->n_in = count; }
        for (int i = 0; i < graph->n; i++) {
            const jval *g = &graph->items[i];
            const char *left = j_str(j_get(g, "left"));
            if (!left || strcmp(left, side)) continue;
            int slot = j_int(j_get(g, "left_tensor_id"), -1);
            int tid = j_int(j_get(g, "right_tensor_id"), -1);
            const jval *t = NULL;
            for (int k = 0; k < norm->n; k++)
                if (j_int(j_get(&norm->items[k], "tensor_id"), -2) == tid) t = &norm->items[k];
            if (slot < 0 || (uint32_t)slot >= count || !t) {
                set_err(err, err_len, "its JSON graph names a tensor that norm_tensor lacks");
                return -1;
            }
            sm_io *io = &ios[slot];
            snprintf(io->name, sizeof(io->name), "%s", j_str(j_get(t, "url")) ? j_get(t, "url")->str : "");
            const jval *size = j_get(t, "size");
            if (!size || size->t != J_ARR || size->n < 1 || size->n > RKNN_MAX_DIMS) {
                set_err(err, err_len, "a norm_tensor entry has no usable size");
                return -1;
            }
            io->n_dims = (uint32_t)size->n;
            for (int d = 0; d < size->n; d++) {
                int dim = j_int(&size->items[d], 0);
                if (dim <= 0) {
                    snprintf(err, err_len, "tensor '%.64s' has a dynamic or empty dimension (the stand-in runs "
                             "static shapes only)", io->name);
                    return -1;
                }
                io->dims[d] = (uint32_t)dim;
            }
            const char *qnt = j_str(j_get(j_get(t, "dtype"), "qnt_type"));
            /* No quantization type means the tensor stays float (float16 on the NPU). */
            if (type_from_name(qnt, &io->type)) io->type = RKNN_TENSOR_FLOAT16;
            io->nhwc = !pass && io->n_dims == 4; /* 4-D inputs are NHWC unless the file says otherwise */
            io->scale = 1.0f;
        }
    }
    if (!m->n_in || !m->n_out) {
        set_err(err, err_len, "its JSON graph has no inputs or no outputs");
        return -1;
    }
    return 0;
}

/* Applies {"name": {"dtype": ..., "layout": ...}} (the flatbuffer's I/O description). */
static void apply_io_json(const char *text, size_t len, sm_io *ios, uint32_t n) {
    jval v;
    if (!text || j_parse(text, len, &v)) return;
    for (uint32_t i = 0; i < n; i++) {
        const jval *d = j_get(&v, ios[i].name);
        if (!d) continue;
        rknn_tensor_type t;
        if (!type_from_name(j_str(j_get(d, "dtype")), &t)) ios[i].type = t;
        const char *layout = j_str(j_get(d, "layout"));
        if (layout) ios[i].nhwc = !strcmp(layout, "NHWC") && ios[i].n_dims == 4;
    }
    j_free(&v);
}

static void read_shape(const fb_buf *b, size_t t, int field, uint32_t *n_dims, uint32_t *dims, uint32_t cap) {
    size_t first;
    uint32_t count;
    *n_dims = 0;
    if (fb_vec(b, t, field, 4, &first, &count) || count > cap) return;
    for (uint32_t k = 0; k < count; k++) fb_u32(b, first + 4 * k, &dims[k]);
    *n_dims = count;
}

/* Native shape, scale and zero point of an input or output, from its tensor table. */
static void read_io_details(const fb_buf *b, size_t t, sm_io *io) {
    read_shape(b, t, FB_TENSOR_NATIVE_SHAPE, &io->n_native, io->native, RKNN_MAX_DIMS);
    size_t first;
    uint32_t count, bits;
    if (!fb_vec(b, t, FB_TENSOR_SCALE, 4, &first, &count) && count && !fb_u32(b, first, &bits)) {
        float scale;
        memcpy(&scale, &bits, sizeof(scale));
        if (isfinite(scale) && scale > 0) io->scale = scale;
    }
    if (!fb_vec(b, t, FB_TENSOR_ZP, 4, &first, &count) && count && !fb_u32(b, first, &bits)) io->zp = (int32_t)bits;
}

/* Reads tensors and nodes from the flatbuffer; fills in what the JSON lacked. */
static void parse_flatbuffer(const fb_buf *b, sm_model *m) {
    uint32_t root_rel;
    if (b->n < 8 || fb_u32(b, 0, &root_rel) || memcmp(b->p + 4, "RKNN", 4)) return;
    size_t root = root_rel;
    char compiler[sizeof(m->compiler)];
    if (!fb_string(b, root, FB_MODEL_COMPILER, compiler, sizeof(compiler)) && compiler[0])
        snprintf(m->compiler, sizeof(m->compiler), "%s", compiler);

    size_t len;
    char *js = fb_string_dup(b, root, FB_MODEL_INPUT_JSON, &len);
    apply_io_json(js, js ? len : 0, m->in, m->n_in);
    free(js);
    js = fb_string_dup(b, root, FB_MODEL_OUTPUT_JSON, &len);
    apply_io_json(js, js ? len : 0, m->out, m->n_out);
    free(js);

    size_t graphs;
    uint32_t n_graphs;
    if (fb_vec(b, root, FB_MODEL_GRAPHS, 4, &graphs, &n_graphs) || !n_graphs) return;
    size_t graph = fb_table_at(b, graphs);
    size_t tv, nv;
    uint32_t nt, nn;
    if (!graph || fb_vec(b, graph, FB_GRAPH_TENSORS, 4, &tv, &nt) || fb_vec(b, graph, FB_GRAPH_NODES, 4, &nv, &nn))
        return;
    m->tensors = calloc(nt ? nt : 1, sizeof(sm_tensor));
    m->nodes = calloc(nn ? nn : 1, sizeof(sm_node));
    if (!m->tensors || !m->nodes) return;

    uint64_t intermediates = 0;
    for (uint32_t i = 0; i < nt; i++) {
        size_t t = fb_table_at(b, tv + 4 * i);
        sm_tensor *st = &m->tensors[i];
        if (!t) continue;
        read_shape(b, t, FB_TENSOR_SHAPE, &st->n_dims, st->dims, 8);
        fb_string(b, t, FB_TENSOR_QNT_DTYPE, st->dtype, sizeof(st->dtype));
        st->kind = fb_byte(b, t, FB_TENSOR_KIND, 0);
        st->bytes = (uint32_t)fb_int(b, t, FB_TENSOR_BYTES, 0);
        if (st->kind == 3) intermediates += st->bytes;

        /* The model's inputs and outputs carry quantization and native shapes. An output
         * that later layers also read is an intermediate (kind 3) in the file. */
        if (st->kind < 1 || st->kind > 3) continue;
        char name[RKNN_MAX_NAME_LEN];
        fb_string(b, t, FB_TENSOR_NAME, name, sizeof(name));
        for (uint32_t k = 0; k < m->n_in; k++)
            if (st->kind == 1 && !strcmp(m->in[k].name, name)) read_io_details(b, t, &m->in[k]);
        for (uint32_t k = 0; k < m->n_out; k++)
            if (st->kind != 1 && !strcmp(m->out[k].name, name)) read_io_details(b, t, &m->out[k]);
    }
    for (uint32_t i = 0; i < nn; i++) {
        size_t t = fb_table_at(b, nv + 4 * i);
        sm_node *node = &m->nodes[i];
        if (!t) continue;
        fb_string(b, t, FB_NODE_OP, node->op, sizeof(node->op));
        fb_string(b, t, FB_NODE_NAME, node->name, sizeof(node->name));
        node->on_npu = fb_byte(b, t, FB_NODE_TARGET, 0) == FB_TARGET_NPU;
        for (int side = 0; side < 2; side++) {
            size_t first;
            uint32_t count;
            int *dst = side ? node->out : node->in;
            int *n = side ? &node->n_out : &node->n_in;
            if (fb_vec(b, t, side ? FB_NODE_OUTPUTS : FB_NODE_INPUTS, 4, &first, &count)) continue;
            for (uint32_t k = 0; k < count && k < SM_MAX_NODE_IO; k++) {
                uint32_t idx;
                dst[k] = !fb_u32(b, first + 4 * k, &idx) && idx < nt ? (int)idx : -1;
            }
            *n = count < SM_MAX_NODE_IO ? (int)count : SM_MAX_NODE_IO;
        }
    }
    m->n_tensors = nt;
    m->n_nodes = nn;
    m->internal_bytes = intermediates;
}

/* Quantization as the runtime reports it: affine for integer types, none for floats. */
static void settle_quantization(sm_io *ios, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        sm_io *io = &ios[i];
        int integer = io->type == RKNN_TENSOR_INT8 || io->type == RKNN_TENSOR_UINT8 || io->type == RKNN_TENSOR_INT16;
        io->qnt_type = integer ? RKNN_TENSOR_QNT_AFFINE_ASYMMETRIC : RKNN_TENSOR_QNT_NONE;
        if (!integer) { io->zp = 0; io->scale = 1.0f; }
    }
}

static uint64_t io_bytes(const sm_io *io) {
    uint64_t n = sm_type_bytes(io->type);
    for (uint32_t d = 0; d < io->n_dims; d++) n *= io->dims[d];
    return n;
}

int sm_parse(const uint8_t *buf, size_t len, sm_model *m, char *err, size_t err_len) {
    memset(m, 0, sizeof(*m));
    if (len < 64 || memcmp(buf, "RKNN", 4)) {
        set_err(err, err_len, "it does not start with \"RKNN\" (not an .rknn model)");
        return -1;
    }
    m->file_version = le64(buf + 8);
    uint64_t payload = le64(buf + 16);
    if (payload > len - 64 || len - 64 - payload < 8) {
        set_err(err, err_len, "it is truncated (the header promises more bytes than the file has)");
        return -1;
    }
    uint64_t json_len = le64(buf + 64 + payload);
    if (json_len > len - 72 - payload || json_len == 0) {
        set_err(err, err_len, "its JSON part is missing or truncated");
        return -1;
    }
    jval root;
    if (j_parse((const char *)buf + 72 + payload, (size_t)json_len, &root)) {
        set_err(err, err_len, "its JSON part does not parse");
        return -1;
    }
    int rc = parse_trailer(&root, m, err, err_len);
    j_free(&root);
    if (rc) { sm_free(m); return -1; }

    m->payload_bytes = payload;
    m->weight_digest = sm_hash(buf + 64, (size_t)payload, 0);
    fb_buf fb = {buf + 64, (size_t)payload};
    parse_flatbuffer(&fb, m);
    settle_quantization(m->in, m->n_in);
    settle_quantization(m->out, m->n_out);
    for (uint32_t i = 0; i < m->n_in; i++) m->internal_bytes += io_bytes(&m->in[i]);
    for (uint32_t i = 0; i < m->n_out; i++) m->internal_bytes += io_bytes(&m->out[i]);
    m->internal_bytes = (m->internal_bytes + 4095) / 4096 * 4096;
    return 0;
}

void sm_free(sm_model *m) {
    free(m->in);
    free(m->out);
    free(m->tensors);
    free(m->nodes);
    memset(m, 0, sizeof(*m));
}
