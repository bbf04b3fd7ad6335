/*
 * perf_detail.h: the per-layer table RKNN_QUERY_PERF_DETAIL returns, in the vendor's text
 * layouts (the current 2.x one, and the older 1.x one).
 */
#ifndef RKBENCH_STANDIN_PERF_DETAIL_H
#define RKBENCH_STANDIN_PERF_DETAIL_H

#include <stdint.h>

#include "model.h"

typedef struct {
    int old_format;      /* RKNN_STANDIN_PERF_FORMAT=old */
    int n_cores;         /* NPU cores of the SoC: 1, 2 or 3 */
    int core_used[3];    /* the cores the last run occupied */
    int64_t total_us;    /* the last run's NPU time: the layer times add up to it */
    int npu_mhz;         /* turns times into cycles */
    const char *cpu_ops; /* comma-separated op types to show on Target CPU, or NULL */
} pd_config;

/* The table as a malloc'd NUL-terminated string, or NULL when out of memory. */
char *pd_render(const sm_model *model, const pd_config *cfg);

#endif
