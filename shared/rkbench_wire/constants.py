"""Names and numbers both sides agree on."""

PROTOCOL_VERSION = 1

#: Backends the runner knows. "auto" lets the runner choose (the hello event says why).
BACKENDS = ("auto", "rknnlite", "onnxruntime", "simulator")

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

# Exit codes of `python3 -m rkbench_device run`.
EXIT_OK = 0
EXIT_FAILED = 1          # an `error` event says what failed
EXIT_BAD_SPEC = 2        # the run spec was not understood (protocol error)
EXIT_HOST_GONE = 3       # stdin closed while running: the host went away
EXIT_BOARD_BUSY = 75     # EX_TEMPFAIL: another run holds the board lock

# `error` event kinds.
ERR_PROTOCOL = "protocol"                 # bad or unknown-version run spec
ERR_MODEL_MISSING = "model_missing"       # a model file is not on the board
ERR_INPUT_MISSING = "input_missing"       # an input .npy is not on the board
ERR_BAD_INPUT = "bad_input"               # shape/dtype/count does not fit the model
ERR_BACKEND_MISSING = "backend_missing"   # the backend cannot be imported here
ERR_BACKEND_FAILED = "backend_failed"     # load/init/inference returned an error
ERR_CORE_MASK_REFUSED = "core_mask_refused"
ERR_BOARD_BUSY = "board_busy"
ERR_OUTPUT_FAILED = "output_failed"       # could not write outputs (disk full, permissions)
ERR_INTERNAL = "internal"                 # a bug in the runner: the traceback tail is attached

ERROR_KINDS = (
    ERR_PROTOCOL, ERR_MODEL_MISSING, ERR_INPUT_MISSING, ERR_BAD_INPUT, ERR_BACKEND_MISSING,
    ERR_BACKEND_FAILED, ERR_CORE_MASK_REFUSED, ERR_BOARD_BUSY, ERR_OUTPUT_FAILED, ERR_INTERNAL,
)
