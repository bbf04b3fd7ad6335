"""The one host module that imports rknn.api. It runs as a script in a worker process.

rknn-toolkit2 prints heavily, keeps global state and can segfault, so rkbench never
imports it in its own process: `worker.py` starts `python job.py REQUEST EVENTS_FD`
with the interpreter that has the toolkit (which may be another venv than ours), sends
its stdout/stderr to a log file, and reads our events from a pipe. This file therefore
uses only the standard library, numpy and rknn.api, and never imports rkbench.

Request (JSON file): {"job": "build" | "analyze" | "hybrid_step1" | "hybrid_step2" |
"auto_hybrid", "recipe": {...}, "export_path": ..., "analysis": {...}, "step1": {...},
"step2": {...}, "evaluate": {"arrays": [[npy per input] per sample], "data_format": [...],
"output_dir": ...}}. The recipe is the same shape the board-side simulator backend takes:
{"config": kwargs of RKNN.config, "load": {"kind": "onnx"|"tflite", "kwargs": {...}},
"build": {"do_quantization": bool, "dataset": path or null}}.

Events (JSON lines on EVENTS_FD): {"type": "step", "step": name, ...},
{"type": "result", ...}, {"type": "error", "step": name, "kind": kind, "message": text}.
Error kinds: "refused" (the toolkit refused a setting), "conversion" (it could not
load/convert/build the model), "disk_full", "failed" (anything else).
"""

import errno
import json
import os
import shutil
import sys
import time


class StepFailed(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class Job:
    def __init__(self, events_fd):
        self.events = os.fdopen(events_fd, "w", buffering=1)
        self.timings = {}
        self.step_name = "start"

    def emit(self, event_type, **fields):
        fields["type"] = event_type
        self.events.write(json.dumps(fields) + "\n")
        self.events.flush()

    def step(self, name, detail=None):
        self.step_name = name
        self.emit("step", step=name, detail=detail)

    def call(self, name, kind, fn, *args, **kwargs):
        """Run one toolkit call as a named step; a -1 return or an exception fails the step."""
        if name != self.step_name:  # not announced yet (with a detail) by the caller
            self.step(name)
        started = time.perf_counter()
        try:
            ret = fn(*args, **kwargs)
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise StepFailed("disk_full", str(err)) from None
            raise StepFailed(kind, str(err)) from None
        except (ValueError, RuntimeError, AssertionError, TypeError, KeyError, IndexError) as err:
            raise StepFailed(kind, last_line(str(err)) or type(err).__name__) from None
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started
        if isinstance(ret, int) and ret != 0:
            raise StepFailed(kind, f"{fn.__name__} returned {ret}")
        return ret


def last_line(text):
    """The toolkit wraps its reason in a traceback text; the reason is the last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    for prefix in ("ValueError: ", "RuntimeError: ", "AssertionError: "):
        if line.startswith(prefix):
            line = line[len(prefix) :]
    return line


def toolkit_version():
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        return "unknown"
    try:
        return metadata.version("rknn-toolkit2")
    except metadata.PackageNotFoundError:
        return "not installed"


def configure_and_load(job, rknn, recipe):
    job.call("config", "refused", rknn.config, **recipe["config"])
    load = recipe["load"]
    loader = {"onnx": rknn.load_onnx, "tflite": rknn.load_tflite}[load["kind"]]
    job.call("load", "conversion", loader, **load["kwargs"])


def configure_and_build(job, rknn, recipe, auto_hybrid=False):
    configure_and_load(job, rknn, recipe)
    build = recipe["build"]
    job.call(
        "build",
        "conversion",
        rknn.build,
        do_quantization=build["do_quantization"],
        dataset=build.get("dataset"),
        auto_hybrid=auto_hybrid,
    )


def export(job, rknn, path):
    job.call("export", "failed", rknn.export_rknn, path)
    return {"rknn": path, "rknn_bytes": os.path.getsize(path)}


def infer_samples(job, rknn, spec, prefix="sim"):
    """Simulator outputs of each sample, saved as .npy (the host compares them to fp32)."""
    import numpy as np

    job.call("init_runtime", "failed", rknn.init_runtime)
    outputs = []
    samples = spec["arrays"]
    for index, arrays in enumerate(samples):
        job.step("inference", detail=f"sample {index + 1}/{len(samples)}")
        inputs = [np.load(path) for path in arrays]
        result = job.call("inference", "failed", rknn.inference, inputs=inputs, data_format=spec.get("data_format"))
        if result is None:
            raise StepFailed("failed", "inference returned no outputs")
        paths = []
        for k, array in enumerate(result):
            path = os.path.join(spec["output_dir"], f"{prefix}_{index:04d}_{k}.npy")
            np.save(path, np.asarray(array))
            paths.append(path)
        outputs.append(paths)
    return outputs


def analyze(job, rknn, spec):
    """Per-sample accuracy analysis and simulator outputs.

    The toolkit's accuracy_analysis looks at one input set per call, so we call it once
    per sample and keep only its error_analysis.txt: the tensor dumps next to it can reach
    gigabytes and are deleted right away unless the user asked to keep them.
    """
    out_dir = spec["output_dir"]
    reports, kept = [], []
    samples = spec["samples"]
    for index, files in enumerate(samples):
        snapshot = os.path.join(out_dir, f"snapshot_{index:04d}")
        job.step("accuracy_analysis", detail=f"sample {index + 1}/{len(samples)}")
        job.call("accuracy_analysis", "failed", rknn.accuracy_analysis, inputs=list(files), output_dir=snapshot)
        report = os.path.join(out_dir, f"error_analysis_{index:04d}.txt")
        shutil.copyfile(os.path.join(snapshot, "error_analysis.txt"), report)
        reports.append(report)
        if spec.get("keep_tensors"):
            kept.append(keep_tensors(snapshot, spec["keep_tensors"], os.path.join(out_dir, f"tensors_{index:04d}")))
        if not spec.get("keep_dumps"):
            shutil.rmtree(snapshot, ignore_errors=True)
    return {"reports": reports, "tensors": kept}


def keep_tensors(snapshot, names, target):
    """Copy the golden and simulator dumps of the named tensors out of a snapshot (the rest
    of which is deleted): {name: {"golden": path, "simulator": path}}."""
    files = {}
    with open(os.path.join(snapshot, "map_name_to_file.txt")) as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 2 and parts[1].endswith(".txt"):
                files[parts[0]] = parts[1][:-4] + ".npy"
    kept = {}
    for index, name in enumerate(names):
        if name not in files:
            continue
        entry = {}
        for side in ("golden", "simulator"):
            source = os.path.join(snapshot, side, "npy", files[name])
            if os.path.exists(source):
                os.makedirs(os.path.join(target, side), exist_ok=True)
                entry[side] = os.path.join(target, side, f"{index:05d}.npy")
                shutil.copyfile(source, entry[side])
        if len(entry) == 2:
            kept[name] = entry
    return kept


def hybrid_step1(job, rknn, request):
    """Step 1 writes <name>.model/.data/.quantization.cfg into the current directory (our
    work directory, never the user's)."""
    configure_and_load(job, rknn, request["recipe"])
    step1 = request["step1"]
    job.call(
        "hybrid_step1",
        "conversion",
        rknn.hybrid_quantization_step1,
        dataset=request["recipe"]["build"]["dataset"],
        proposal=step1.get("proposal", False),
        proposal_dataset_size=step1.get("proposal_dataset_size", 1),
    )
    found = {}
    for key, suffix in (("model", ".model"), ("data", ".data"), ("cfg", ".quantization.cfg")):
        names = [name for name in os.listdir(".") if name.endswith(suffix)]
        if not names:
            raise StepFailed("failed", f"hybrid_quantization_step1 wrote no *{suffix} file")
        found[key] = os.path.abspath(names[0])
    return found


def hybrid_step2(job, rknn, request):
    step2 = request["step2"]
    job.call(
        "hybrid_step2",
        "conversion",
        rknn.hybrid_quantization_step2,
        model_input=step2["model"],
        data_input=step2["data"],
        model_quantization_cfg=step2["cfg"],
    )


def run(request, job):
    job.step("import")
    from rknn.api import RKNN  # the only import of the toolkit in rkbench

    kind = request["job"]
    # Verbose logs name every tensor a hybrid build keeps in float ("Meet hybrid type") and
    # every output of a build ("OutputOperator:<name>"), which the host reads from the log.
    rknn = RKNN(verbose=bool(request.get("verbose")) or kind in ("hybrid_step2", "auto_hybrid"))
    try:
        result = {"toolkit_version": toolkit_version()}
        if kind == "hybrid_step1":
            result.update(hybrid_step1(job, rknn, request))
        elif kind == "hybrid_step2":
            hybrid_step2(job, rknn, request)
        else:
            configure_and_build(job, rknn, request["recipe"], auto_hybrid=kind == "auto_hybrid")
        if request.get("export_path"):
            result.update(export(job, rknn, request["export_path"]))
        if kind == "analyze":
            result.update(analyze(job, rknn, request["analysis"]))
        if request.get("evaluate"):
            result["outputs"] = infer_samples(job, rknn, request["evaluate"])
        result["timings"] = job.timings
        return result
    finally:
        rknn.release()


def main(argv):
    if len(argv) == 2 and argv[1] == "--version":
        print(toolkit_version())
        return 0
    request_path, events_fd = argv[1], int(argv[2])
    job = Job(events_fd)
    with open(request_path) as handle:
        request = json.load(handle)
    try:
        result = run(request, job)
    except StepFailed as err:
        job.emit("error", step=job.step_name, kind=err.kind, message=str(err))
        return 1
    except OSError as err:
        kind = "disk_full" if err.errno == errno.ENOSPC else "failed"
        job.emit("error", step=job.step_name, kind=kind, message=str(err))
        return 1
    except ImportError as err:
        job.emit("error", step=job.step_name, kind="missing_toolkit", message=str(err))
        return 1
    job.emit("result", **result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
