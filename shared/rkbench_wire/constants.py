"""Names and numbers both sides agree on."""

#: 2: backend rknnrt; RunSpec io_mode/profile_layers/profile_runs; Samples stages_ns;
#: Result stage_stats/io_mode/timing_notes/profile; board info runtime_probe.
#: 3: RunSpec throughput; event throughput (N contexts in parallel per configuration).
PROTOCOL_VERSION = 3

#: How the contexts of a throughput configuration share the model (Throughput.creation):
#: "init" (the first one), "dup_context" (rknn_dup_context), "share_weight" (rknn_init with
#: RKNN_FLAG_SHARE_WEIGHT_MEM), "separate" (an ordinary init: weights loaded again).
CONTEXT_CREATIONS = ("init", "dup_context", "share_weight", "separate")

#: The most contexts one throughput configuration may ask for.
MAX_THROUGHPUT_CONTEXTS = 64

#: Backends the runner knows. "auto" lets the runner choose (the hello event says why).
BACKENDS = ("auto", "rknnrt", "rknnlite", "onnxruntime", "simulator")

#: How inputs and outputs reach the NPU (rknnrt): "copy" = rknn_inputs_set/rknn_outputs_get
#: every iteration; "zero_copy" = buffers from rknn_create_mem bound once (rknn_set_io_mem).
IO_MODES = ("copy", "zero_copy")

#: Per-iteration stages a backend may time (Samples.stages_ns, Result.stage_stats), in ns:
#: inputs_set (rknn_inputs_set, or the memcpy into the zero-copy buffer), run (rknn_run
#: wall time), npu (RKNN_QUERY_PERF_RUN: the NPU's own time), outputs_get (rknn_outputs_get
#: + rknn_outputs_release).
STAGES = ("inputs_set", "run", "npu", "outputs_get")

#: Core-mask names and the RKNNLite.NPU_CORE_* value each stands for.
CORE_MASK_VALUES = {
    "auto": 0,
    "0": 1,
    "1": 2,
    "2": 4,
    "0_1": 3,
    "0_1_2": 7,
}
CORE_MASKS = tuple(CORE_MASK_VALUES)

#: Data formats the backends understand (per model input; null = leave it to the backend).
DATA_FORMATS = ("nhwc", "nchw")

#: The longest run spec line the runner reads (a spec naming 10,000 inputs is ~1 MB).
MAX_SPEC_BYTES = 4 << 20

# Exit codes of `python3 -m rkbench_device run`.
EXIT_OK = 0
EXIT_FAILED = 1  # an `error` event says what failed
EXIT_BAD_SPEC = 2  # the run spec was not understood (protocol error)
EXIT_HOST_GONE = 3  # stdin closed while running: the host went away
EXIT_BOARD_BUSY = 75  # EX_TEMPFAIL: another run holds the board lock

# `error` event kinds.
ERR_PROTOCOL = "protocol"  # bad or unknown-version run spec
ERR_MODEL_MISSING = "model_missing"  # a model file is not on the board
ERR_INPUT_MISSING = "input_missing"  # an input .npy is not on the board
ERR_BAD_INPUT = "bad_input"  # shape/dtype/count does not fit the model
ERR_BACKEND_MISSING = "backend_missing"  # the backend cannot be imported here
ERR_BACKEND_FAILED = "backend_failed"  # load/init/inference returned an error
ERR_CORE_MASK_REFUSED = "core_mask_refused"
ERR_BOARD_BUSY = "board_busy"
ERR_OUTPUT_FAILED = "output_failed"  # could not write outputs (permissions)
ERR_DISK_FULL = "disk_full"  # ENOSPC/EDQUOT on the board, wherever the runner wrote
ERR_INTERNAL = "internal"  # a bug in the runner: the traceback tail is attached

ERROR_KINDS = (
    ERR_PROTOCOL,
    ERR_MODEL_MISSING,
    ERR_INPUT_MISSING,
    ERR_BAD_INPUT,
    ERR_BACKEND_MISSING,
    ERR_BACKEND_FAILED,
    ERR_CORE_MASK_REFUSED,
    ERR_BOARD_BUSY,
    ERR_OUTPUT_FAILED,
    ERR_DISK_FULL,
    ERR_INTERNAL,
)
