"""`run`: read a run spec, measure, stream events. One class, one job: the sequence
hello -> lock -> (load, warm up, save outputs, timed loop, NPU memory, [profiling pass],
result) per core mask -> done. Nothing but the bound calls runs inside the timed loop:
memory queries and the per-layer profile come after it."""

from __future__ import annotations

import errno
import os
import platform
import re
import shutil
import socket
import sys
import time
import traceback
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from rkbench_wire import (
    EXIT_BAD_SPEC,
    EXIT_FAILED,
    EXIT_OK,
    Done,
    Error,
    Hello,
    Progress,
    ProtocolError,
    Result,
    RunSpec,
    Samples,
    Throughput,
    summarize_ns,
)
from rkbench_wire.constants import (
    ERR_BACKEND_MISSING,
    ERR_BAD_INPUT,
    ERR_DISK_FULL,
    ERR_INPUT_MISSING,
    ERR_INTERNAL,
    ERR_MODEL_MISSING,
    ERR_OUTPUT_FAILED,
    ERR_PROTOCOL,
)

from . import __version__, sysfs
from .backends import RKNN_MODEL_BACKENDS, Backend, Prepared, backend_versions, choose_backend, create_backend
from .coremask import check_core_masks
from .errors import RunnerError
from .lock import BoardLock
from .measure import measure, slowed, test_slowdown
from .stream import EventWriter, HostWatch, StderrTee
from .telemetry import TelemetrySampler, throttle_verdict
from .throughput import ContextRun, did_not_fit, is_out_of_memory, run_window, summarize
from .versions import numpy_version

#: How often raw latencies are streamed while measuring.
SAMPLES_BATCH_S = 0.25
#: How long a finished runner keeps the board lock while its host fetches the outputs.
LINGER_S = 300.0
#: A run folder's name, as the host makes it: <date>-<time>-<8 hex>.
RUN_DIR_RE = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}$")
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class Runner:
    def __init__(
        self,
        spec: RunSpec,
        writer: EventWriter,
        tee: Optional[StderrTee] = None,
        root: str = "/",
        watch: Optional[HostWatch] = None,
    ) -> None:
        self.spec = spec
        self.writer = writer
        self.tee = tee
        self.root = root
        self.watch = watch
        self.results = 0
        self._backend: Optional[Backend] = None
        self._lock: Optional[BoardLock] = None
        self._sampler: Optional[TelemetrySampler] = None
        self._npu_cores: Optional[int] = None
        self._extra_backends: List[Backend] = []

    # -- the run -----------------------------------------------------------------------
    def run(self) -> int:
        try:
            try:
                code = self._run_reporting_errors()
            finally:
                self._cleanup()  # the telemetry thread is stopped here: nothing is emitted after done
            self.writer.emit(Done(ok=code == EXIT_OK, exit_code=code, results=self.results))
            if self.watch is not None:
                self.watch.finish()
                if self.watch.heartbeat:
                    # The host fetches the outputs now. The board lock stays held until it closes
                    # stdin: to another run on this board the lock says this run's folder is in use.
                    self.watch.wait_closed(LINGER_S)
            return code
        finally:
            if self._lock is not None:
                self._lock.release()

    def _run_reporting_errors(self) -> int:
        try:
            self._run()
            return EXIT_OK
        except RunnerError as err:
            detail = err.detail if err.detail is not None else self._stderr_tail()
            self.writer.emit(Error(kind=err.kind, message=err.message, detail=detail or None, core_mask=err.core_mask))
            return err.exit_code
        except Exception as exc:  # a bug or an unexpected library failure: say so, with context
            if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
                where = " writing %s" % exc.filename if exc.filename else ""
                self.writer.emit(
                    Error(
                        kind=ERR_DISK_FULL, message="no space left on the board%s (%s)" % (where, exc.strerror or exc)
                    )
                )
                return EXIT_FAILED
            trace = traceback.format_exc()
            tail = "\n".join(trace.strip().splitlines()[-25:])
            stderr_tail = self._stderr_tail()
            if stderr_tail:
                tail = "%s\n--- stderr ---\n%s" % (tail, stderr_tail)
            self.writer.emit(
                Error(kind=ERR_INTERNAL, message="the runner failed: %s: %s" % (type(exc).__name__, exc), detail=tail)
            )
            return 1

    def _run(self) -> None:
        spec = self.spec
        compatible = sysfs.soc_compatible(self.root)
        soc = sysfs.soc_name(compatible)
        cores = sysfs.npu_core_count(soc)
        self._npu_cores = cores

        def hello(backend: str, reason: str, versions: Dict[str, Optional[str]]) -> None:
            self.writer.emit(
                Hello(
                    runner_version=__version__,
                    python=platform.python_version(),
                    numpy=numpy_version(),
                    soc=soc,
                    soc_compatible=compatible,
                    npu_cores=cores,
                    backend=backend,
                    backend_reason=reason,
                    backend_versions=versions,
                    pid=os.getpid(),
                    hostname=socket.gethostname(),
                )
            )

        try:
            name, reason = choose_backend(spec, self.root)
        except RunnerError as err:
            hello("none", err.message, {})  # the host still learns what board this is
            raise
        versions = backend_versions(name, self.root)
        if name in RKNN_MODEL_BACKENDS:
            versions["npu_driver"] = sysfs.npu_driver_version(self.root)
        hello(name, reason, versions)

        probe = create_backend(name)
        if spec.io_mode == "zero_copy" and not probe.supports_zero_copy:
            raise RunnerError(
                ERR_BACKEND_MISSING,
                "io_mode zero_copy needs backend rknnrt, but %s runs here (%s): "
                "run with --io copy, or make librknnrt loadable (fix: rkbench provision BOARD "
                "--librknnrt PATH)" % (name, reason),
            )
        if spec.throughput is not None:
            self._check_throughput_masks(probe, cores, soc)
        elif probe.uses_core_mask:
            check_core_masks(spec.core_masks, cores, soc)
            if cores == 1 and spec.core_masks != ["auto"]:
                self._progress(
                    "plan",
                    "%s has one NPU core: core mask %s runs with the runtime's default "
                    "(single-core SoCs refuse an explicit mask)" % (soc, spec.core_masks),
                )
            if cores is None and spec.core_masks != ["auto"]:
                self._progress(
                    "plan",
                    "SoC unknown (no rockchip entry in /proc/device-tree/compatible): "
                    "core masks %s are passed to the runtime unchecked" % spec.core_masks,
                )
            plan: List[Optional[str]] = list(spec.core_masks)
        else:
            plan = [None]
            if spec.core_masks != ["auto"]:
                self._progress(
                    "plan", "core masks %s do not apply to backend %s: running once" % (spec.core_masks, name)
                )
        self._check_model_files(name)
        samples = self._load_inputs()

        self._lock = BoardLock(spec.lock_path)
        self._lock.acquire(spec.lock_timeout_s, on_wait=lambda msg: self._progress("lock", msg))
        self._progress("lock", "board lock held (%s)" % self._lock.path)
        pruned = prune_run_folders(spec.output_dir)
        if pruned:
            self._progress(
                "lock",
                "removed %d folder(s) of earlier runs that ended without cleaning up "
                "(a host killed or cut off): %s" % (len(pruned), ", ".join(pruned)),
            )

        self._sampler = TelemetrySampler(self.root, spec.telemetry_interval_s, self.writer.emit)
        self._sampler.start()
        if spec.throughput is not None:
            self._run_throughput(name, samples)
            return
        for mask in plan:
            result = self._run_mask(name, mask, samples, len(plan) > 1)
            self.writer.emit(result)
            self.results += 1

    def _run_mask(self, name: str, mask: Optional[str], samples: List[List[Any]], several: bool) -> Result:
        spec = self.spec
        backend = create_backend(name)
        backend.npu_cores = self._npu_cores
        backend.root = self.root
        backend.io_mode = spec.io_mode
        self._backend = backend
        where = " on core mask %s" % mask if mask is not None else ""
        self._progress("load", "loading %s with %s%s" % (self._model_path(name), name, where))
        started = time.perf_counter()
        try:
            backend.cpu_threads = spec.cpu_threads
            backend.load(spec.model, mask, spec.data_format)
        except RunnerError as err:
            err.core_mask = err.core_mask or mask
            raise
        load_s = time.perf_counter() - started
        memory_after_load = sysfs.process_memory("/")
        info = backend.info()
        sdk = (info.get("versions") or {}).get("sdk")
        self._progress("load", "loaded in %.2f s%s" % (load_s, "; runtime: %s" % sdk if sdk else ""))

        started = time.perf_counter()
        prepared = [backend.prepare(sample) for sample in samples]
        conversion_s = time.perf_counter() - started
        steps: List[str] = []
        for item in prepared:
            for step in item.steps:
                if step not in steps:
                    steps.append(step)
        conversion = {"seconds": conversion_s, "steps": steps} if steps else None
        if conversion:
            self._progress(
                "prepare", "inputs converted once before timing (%.3f s): %s" % (conversion_s, "; ".join(steps))
            )

        distinct = len(prepared)
        warmup = max(spec.warmup, distinct)
        self._progress("warmup", "%d warm-up run(s); every input is run once and checked" % warmup)
        out_dir = spec.output_dir
        if several and mask is not None:
            out_dir = os.path.join(out_dir, "core_%s" % mask)
        outputs_meta = []
        for j in range(warmup):
            item = prepared[j % distinct]
            outputs = backend.infer(item.feed)
            if j < distinct and spec.save_outputs:
                outputs_meta.append({"sample": j, "files": self._save_outputs(backend, outputs, j, out_dir)})

        calls = [backend.bind(item.feed) for item in prepared]
        slowdown = test_slowdown()
        if slowdown > 0:
            calls = [slowed(call, slowdown) for call in calls]
        self._progress(
            "measure",
            "measuring%s: at least %d runs and %.1f s (at most %d runs, %.1f s)"
            % (where, spec.min_runs, spec.min_seconds, spec.max_runs, spec.max_seconds),
        )
        sampler = self._sampler
        assert sampler is not None
        window_start = time.monotonic()
        sampler.sample()

        def on_batch(offset: int, batch: List[int]) -> None:
            stages = backend.stage_samples(offset, offset + len(batch))
            self.writer.emit(Samples(core_mask=mask, offset=offset, latencies_ns=batch, stages_ns=stages))

        backend.start_timing()
        run = measure(
            calls, spec.min_runs, spec.min_seconds, spec.max_runs, spec.max_seconds, on_batch, SAMPLES_BATCH_S
        )
        sampler.sample()
        readings = sampler.between(window_start, time.monotonic())
        throttled, reasons = throttle_verdict(readings, spec.temp_limit_c)
        memory_after_runs = sysfs.process_memory("/")
        perf = backend.perf()
        npu_samples = (perf or {}).get("npu_ns")
        stages = backend.stage_samples(0, len(run.samples_ns)) or {}
        npu_memory = backend.memory()
        profile = self._profile(backend, prepared[0], out_dir) if spec.profile_layers else None
        result = Result(
            core_mask=mask,
            core_mask_applicable=backend.uses_core_mask,
            backend=name,
            counts={"warmup": warmup, "runs": len(run.samples_ns), "distinct_inputs": distinct},
            stats=summarize_ns(run.samples_ns),
            elapsed_s=run.elapsed_s,
            load_s=load_s,
            stopped_by=run.stopped_by,
            npu_stats=summarize_ns(npu_samples) if npu_samples else None,
            stage_stats={stage: summarize_ns(values) for stage, values in stages.items() if values},
            io_mode=backend.io_mode if name in RKNN_MODEL_BACKENDS else None,
            timing_notes=backend.timing_notes(),
            profile=profile,
            versions={k: v for k, v in (info.get("versions") or {}).items() if v is not None},
            memory={"after_load": memory_after_load, "after_runs": memory_after_runs, "npu": npu_memory},
            throttled=throttled,
            throttle_reasons=reasons,
            outputs=outputs_meta,
            inputs=self._inputs_meta(info, prepared[0]),
            input_conversion=conversion,
        )
        self._backend = None
        backend.close()
        return result

    # -- throughput mode ---------------------------------------------------------------
    def _check_throughput_masks(self, probe: Backend, cores: Optional[int], soc: Optional[str]) -> None:
        """Every mask of every configuration is checked before the board is locked."""
        assert self.spec.throughput is not None
        masks: List[str] = []
        for config in self.spec.throughput["configs"]:
            for mask in config["core_masks"]:
                if mask not in masks:
                    masks.append(mask)
        if probe.uses_core_mask:
            check_core_masks(masks, cores, soc)
        elif masks != ["auto"]:
            self._progress(
                "plan",
                "core masks %s do not apply to backend %s: every context runs with "
                "the backend's default" % (masks, probe.name),
            )
        if cores == 1:
            self._progress(
                "plan",
                "%s has one NPU core: more contexts only overlap CPU-side work (setting "
                "inputs, reading outputs, Python between the runs); the NPU runs one "
                "context at a time" % (soc or "this SoC"),
            )

    def _run_throughput(self, name: str, samples: List[List[Any]]) -> None:
        spec = self.spec
        assert spec.throughput is not None
        seconds = spec.throughput["seconds"]
        configs = spec.throughput["configs"]
        sampler = self._sampler
        assert sampler is not None
        fitted = 0
        for index, config in enumerate(configs):
            masks = config["core_masks"]
            self._progress(
                "throughput",
                "configuration %d/%d (%s): %d context(s) on core masks %s, one thread "
                "each, %.1f s" % (index + 1, len(configs), config["assignment"], len(masks), ",".join(masks), seconds),
            )
            created: List[Backend] = []
            try:
                for mask in masks:
                    backend = create_backend(name)
                    backend.npu_cores = self._npu_cores
                    backend.root = self.root
                    backend.io_mode = spec.io_mode
                    backend.cpu_threads = spec.cpu_threads
                    backend.share_with = created[0] if created else None
                    self._extra_backends.append(backend)
                    try:
                        backend.load(spec.model, mask if backend.uses_core_mask else None, spec.data_format)
                    except RunnerError as err:
                        err.core_mask = err.core_mask or mask
                        raise
                    created.append(backend)
            except RunnerError as err:
                if not is_out_of_memory(err):
                    raise
                event = did_not_fit(index, config["assignment"], masks, name, created, err)
                self._close_extra()
                self.writer.emit(event)
                self.results += 1
                self._progress(
                    "throughput",
                    "%d context(s) do not fit in memory (%s): the sweep stops at the last "
                    "configuration that fitted (%s); what was measured is kept"
                    % (len(masks), err.message, "%d context(s)" % fitted if fitted else "none"),
                )
                return
            event = self._measure_contexts(index, config["assignment"], masks, name, created, samples, seconds)
            self._close_extra()
            self.writer.emit(event)
            self.results += 1
            fitted = max(fitted, len(masks))

    def _measure_contexts(
        self,
        index: int,
        assignment: str,
        masks: List[str],
        name: str,
        backends: List[Backend],
        samples: List[List[Any]],
        seconds: float,
    ) -> Throughput:
        spec = self.spec
        sampler = self._sampler
        assert sampler is not None
        runs = []
        slowdown = test_slowdown()
        for backend, mask in zip(backends, masks):
            prepared = [backend.prepare(sample) for sample in samples]
            for j in range(max(spec.warmup, len(prepared))):
                backend.infer(prepared[j % len(prepared)].feed)
            calls = [backend.bind(item.feed) for item in prepared]
            if slowdown > 0:
                calls = [slowed(call, slowdown) for call in calls]
            backend.start_timing()
            runs.append(ContextRun(backend=backend, mask=mask if backend.uses_core_mask else "auto", calls=calls))
        creations = sorted({b.creation for b in backends[1:]})
        notes = []
        if creations:
            notes.append("contexts 2..%d made with %s" % (len(backends), ", ".join(creations)))
        window_start = time.monotonic()
        sampler.sample()
        elapsed = run_window(runs, seconds)
        sampler.sample()
        return summarize(
            index,
            assignment,
            masks,
            name,
            runs,
            elapsed,
            sampler,
            (window_start, time.monotonic()),
            spec.temp_limit_c,
            notes,
        )

    def _close_extra(self) -> None:
        backends, self._extra_backends = self._extra_backends, []
        for backend in reversed(backends):  # duplicates before the context they came from
            try:
                backend.close()
            except Exception:
                pass

    # -- pieces --------------------------------------------------------------------------
    def _profile(self, backend: Backend, prepared: Prepared, out_dir: str) -> Dict[str, Any]:
        """The per-layer profiling pass, after the timed loop: the backend's raw text saved
        as out_dir/perf_detail.txt. Anything that fails here is reported, never fatal."""
        runs = self.spec.profile_runs
        self._progress(
            "profile",
            "per-layer profile: %d run(s) in a separate context (it slows the "
            "NPU, so it is kept out of the timed loop)" % runs,
        )
        outcome = backend.profile(prepared.feed, runs)
        if "unsupported" in outcome:
            self._progress("profile", "no per-layer profile: %s" % outcome["unsupported"])
            return {"unsupported": outcome["unsupported"]}
        path = os.path.join(out_dir, "perf_detail.txt")
        try:
            os.makedirs(out_dir, exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(outcome["text"])
        except OSError as exc:
            return {"unsupported": "the profile could not be written to %s: %s" % (path, exc)}
        self._progress("profile", "per-layer profile saved: %s (%.2f s)" % (path, outcome["seconds"]))
        return {"file": path, "runs": outcome["runs"], "seconds": outcome["seconds"], "flags": outcome["flags"]}

    def _model_path(self, name: str) -> str:
        model = self.spec.model
        return str(model.rknn if name in RKNN_MODEL_BACKENDS else model.onnx)

    def _check_model_files(self, name: str) -> None:
        model = self.spec.model
        needed = [model.rknn] if name in RKNN_MODEL_BACKENDS else [model.onnx]
        if name == "simulator" and model.build_recipe is not None and model.build_recipe.dataset:
            needed.append(model.build_recipe.dataset)
        for path in needed:
            if path and not os.path.isfile(path):
                raise RunnerError(
                    ERR_MODEL_MISSING,
                    "model file not found on the board: %s (was it pushed? "
                    "`rkbench run` copies it; check the path in the run spec)" % path,
                )

    def _load_inputs(self) -> List[List[Any]]:
        samples = []
        for i, paths in enumerate(self.spec.inputs):
            arrays = []
            for k, path in enumerate(paths):
                if not os.path.isfile(path):
                    raise RunnerError(
                        ERR_INPUT_MISSING, "input inputs[%d][%d] not found on the board: %s" % (i, k, path)
                    )
                try:
                    arrays.append(np.load(path, allow_pickle=False))
                except Exception as exc:
                    raise RunnerError(
                        ERR_BAD_INPUT, "input inputs[%d][%d] (%s) is not a readable .npy array: %s" % (i, k, path, exc)
                    ) from exc
            samples.append(arrays)
        first = [(a.shape, a.dtype) for a in samples[0]]
        for i, arrays in enumerate(samples[1:], 1):
            if [(a.shape, a.dtype) for a in arrays] != first:
                raise RunnerError(
                    ERR_BAD_INPUT,
                    "inputs[%d] has shapes/dtypes %s but inputs[0] has %s: every "
                    "sample must match" % (i, _describe(arrays), _describe(samples[0])),
                )
        return samples

    def _save_outputs(
        self, backend: Backend, outputs: Sequence[Any], sample: int, out_dir: str
    ) -> List[Dict[str, Any]]:
        names = backend.output_names(len(outputs))
        files = []
        array = None
        try:
            os.makedirs(out_dir, exist_ok=True)
            for k, output in enumerate(outputs):
                array = np.asarray(output)
                path = os.path.join(out_dir, "out_%d_%d.npy" % (sample, k))
                np.save(path, array, allow_pickle=False)
                files.append({"path": path, "name": names[k], "shape": list(array.shape), "dtype": str(array.dtype)})
        except OSError as exc:
            # numpy reports a short write as "N requested and M written", without an errno
            needed = array.nbytes if array is not None else 0
            if exc.errno in DISK_FULL_ERRNOS or _free_bytes(out_dir) < needed:
                raise RunnerError(
                    ERR_DISK_FULL,
                    "could not write outputs to %s: No space left on device (an "
                    "output takes %d bytes)" % (out_dir, needed),
                ) from exc
            raise RunnerError(
                ERR_OUTPUT_FAILED,
                "could not write outputs to %s: %s (no permission? change output_dir)" % (out_dir, exc),
            ) from exc
        return files

    def _inputs_meta(self, info: Dict[str, Any], prepared: Prepared) -> List[Dict[str, Any]]:
        specs = info.get("inputs") or []
        formats = self.spec.data_format
        out = []
        for k, array in enumerate(prepared.arrays):
            spec = specs[k] if k < len(specs) else None
            fmt = formats[k] if k < len(formats) else None
            out.append(
                {
                    "name": spec.name if spec is not None else None,
                    "shape": list(np.shape(array)),
                    "dtype": str(np.asarray(array).dtype),
                    "data_format": fmt if fmt is not None else (spec.data_format if spec is not None else None),
                }
            )
        return out

    def _progress(self, stage: str, message: str) -> None:
        self.writer.emit(Progress(stage=stage, message=message))

    def _stderr_tail(self) -> str:
        return self.tee.tail() if self.tee is not None else ""

    def _cleanup(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception:
                pass
        self._close_extra()
        if self._sampler is not None:
            self._sampler.stop()


def _free_bytes(path: str) -> int:
    try:
        st = os.statvfs(path)
    except OSError:
        return 1 << 62  # cannot tell: not taken for a full disk
    return st.f_bavail * st.f_frsize


def prune_run_folders(output_dir: str) -> List[str]:
    """Remove the folders of earlier runs beside this run's (output_dir is
    <cache>/runs/<run id>/out, as the host names it). Called with the board lock held: a
    run's folder is in use only while its runner holds the lock (until its host has
    fetched the outputs), so what is left now belongs to runs whose host was killed or
    cut off. Only folders named like rkbench's run folders, in a folder named runs."""
    run_dir = os.path.dirname(os.path.normpath(output_dir))
    runs = os.path.dirname(run_dir)
    if os.path.basename(runs) != "runs" or not RUN_DIR_RE.match(os.path.basename(run_dir)):
        return []
    try:
        names = os.listdir(runs)
    except OSError:
        return []
    pruned = []
    for name in sorted(names):
        path = os.path.join(runs, name)
        if path != run_dir and RUN_DIR_RE.match(name) and os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
            pruned.append(name)
    return pruned


def _describe(arrays: Sequence[Any]) -> str:
    return "[%s]" % ", ".join("%s %s" % (list(a.shape), a.dtype) for a in arrays)


def run_main(spec_path: Optional[str], root: str, watch_stdin: bool, host_silence_s: Optional[float] = None) -> int:
    """Entry of `python3 -m rkbench_device run`: set up stdio, read the spec, run."""
    from .stream import host_gone, read_spec_line

    tee = StderrTee()
    writer = EventWriter(tee.start())
    try:
        if spec_path:
            with open(spec_path, "rb") as fh:
                line = fh.read()
        else:
            line, _ = read_spec_line(0)
        spec = RunSpec.from_json(line)
    except (ProtocolError, OSError) as exc:
        writer.emit(Error(kind=ERR_PROTOCOL, message=str(exc)))
        writer.emit(Done(ok=False, exit_code=EXIT_BAD_SPEC, results=0))
        return EXIT_BAD_SPEC
    watch = None
    if watch_stdin and not spec_path:
        watch = HostWatch(lambda why: host_gone(tee.original_stderr_fd, why), silence_s=host_silence_s)
    code = Runner(spec, writer, tee=tee, root=root, watch=watch).run()
    sys.stdout.flush()
    return code
