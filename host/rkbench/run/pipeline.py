"""`rkbench run`: from the source model to a verdict on a board.

Stages: the board (its SoC decides the build target), build (cached), the simulator's
analysis on the very inputs the board will measure (fp32 golden and simulator outputs,
per-layer errors; cached), deploy and measure (samples stored as they arrive), compare,
per-layer board error (optional), thresholds, store, reports.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from rkbench.accuracy.evalset import EvalSet, prepare_eval
from rkbench.accuracy.layers import LayerSummary
from rkbench.boards.connect import board_python, open_board
from rkbench.boards.health import board_soc
from rkbench.errors import RkbenchError, UsageError
from rkbench.model.build import BuildOptions, BuildResult, Prepared, Say, build, prepare
from rkbench.model.config import BuildConfig
from rkbench.model.dataset import Dataset, load_dataset
from rkbench.results.model import RunResult, TelemetrySample
from rkbench.results.stats import summarize
from rkbench.results.store import Store
from rkbench.run.compare import Limits, check_thresholds, output_errors
from rkbench.run.plan import MeasureOptions
from rkbench.run.session import RKNN_BACKENDS, RunOutcome, run_on_board, start_runner_early
from rkbench_wire import BuildRecipe, ModelRef, RunSpec


@dataclass
class BoardOptions:
    board: str = "local"
    trust_new: bool = False
    known_hosts: str | None = None
    identity: tuple[str, ...] = ()
    ssh_config: str | None = None
    connect_timeout: float = 10.0
    python: str | None = None  # the board's interpreter (see session.board_python)
    labgrid: dict = field(default_factory=dict)  # client, coordinator, acquire_timeout

    def open(self):
        return open_board(
            self.board,
            trust_new=self.trust_new,
            known_hosts=self.known_hosts,
            identity_files=tuple(self.identity),
            ssh_config=self.ssh_config,
            connect_timeout=self.connect_timeout,
            labgrid=self.labgrid,
        )


@dataclass
class RunRequest:
    config: BuildConfig | None  # None when the model is an already built .rknn
    rknn: Path | None = None
    target: str | None = None  # --target; else the board's SoC
    board: BoardOptions = field(default_factory=BoardOptions)
    measure: MeasureOptions = field(default_factory=MeasureOptions)
    limits: Limits = field(default_factory=Limits)
    group: str | None = None
    suite: str | None = None
    board_label: str | None = None  # how results name the board (default: its address)
    hybrid_cfg: Path | None = None  # build the hybrid model this cfg describes
    # Measure this build of the cache (its key) instead of building `config`: a confirmation
    # re-measures a stored baseline's build even when today's toolkit would build another.
    cached_build: str | None = None


@dataclass
class RunReport:
    results: list[RunResult]
    outcome: RunOutcome | None
    timings: dict[str, float]
    work_dir: Path
    throughput: list = field(default_factory=list)  # throughput mode: rkbench_wire Throughput events
    group: str | None = None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def measured_inputs(prepared: Prepared, options: MeasureOptions) -> Dataset:
    if options.inputs is not None:
        return load_dataset(options.inputs, prepared.info, prepared.shapes)
    if prepared.dataset is None:
        raise UsageError("nothing to measure with: give --inputs (images or .npy) or --dataset")
    data = prepared.dataset
    if len(data.samples) >= 4:
        data = data.split_holdout()[1]  # inputs the model was not calibrated with
    return data.subset(range(min(options.input_count, len(data.samples))))


#: Part of the analysis cache key: 2 = paths in the manifest relative to its entry.
ANALYSIS_SCHEMA = 2
#: Fields of an analysis manifest that name files inside the cache entry (stored relative to it).
ENTRY_PATHS = ("arrays", "golden", "sim_outputs", "tensors")


def _inside(path: str, folder: Path) -> str:
    """`path` relative to `folder` when it lies inside it, else as it is."""
    return os.path.relpath(path, folder) if Path(path).is_relative_to(folder) else path


def _map_paths(value, change):
    """`value` (lists and dicts of path strings) with `change` applied to every path."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_map_paths(item, change) for item in value]
    if isinstance(value, dict):
        return {key: _map_paths(item, change) for key, item in value.items()}
    return value


class Analyses:
    """The simulator side of a run, cached by build and inputs: re-running the same model
    on the same inputs costs no simulator time."""

    def __init__(self, options: BuildOptions):
        self.options = options

    def get(
        self, prepared: Prepared, build_key: str, inputs: Dataset, keep_tensors: bool, say: Say, simulate: bool = True
    ) -> tuple[EvalSet, list[LayerSummary], list[list[str]], list[dict]]:
        simulate = simulate and prepared.config.quantized
        key = hashlib.sha256(
            json.dumps([ANALYSIS_SCHEMA, build_key, inputs.digest, keep_tensors, simulate]).encode()
        ).hexdigest()
        entry = self.options.cache.root / "analyses" / key
        manifest = entry / "analysis.json"
        if not manifest.is_file():
            if not simulate:
                work = self.options.cache.workdir("run-eval")
                evalset = prepare_eval(prepared, inputs.samples, work)
                data = {"layers": [], "sim_outputs": [], "tensors": []}
            else:
                work = self.options.cache.workdir("run-analysis")
                from rkbench.accuracy.analyze import AnalyzeOptions, analyze
                from rkbench.run.perlayer import onnx_node_outputs

                names = sorted(onnx_node_outputs(prepared.config.model)) if keep_tensors else None
                report = analyze(
                    prepared, self.options, AnalyzeOptions(files=inputs.samples, keep_tensors=names, keep_dir=work), say
                )
                evalset = report.evalset
                data = {
                    "layers": [asdict(layer) for layer in report.layers],
                    "sim_outputs": report.sim_outputs,
                    "tensors": report.tensors,
                }
            golden_paths = []
            for index, sample in enumerate(evalset.golden or []):
                paths = []
                for k, array in enumerate(sample):
                    path = work / f"golden_{index:04d}_{k}.npy"
                    np.save(path, array)
                    paths.append(str(path))
                golden_paths.append(paths)
            data.update(
                arrays=evalset.arrays,
                data_format=evalset.data_format,
                golden=golden_paths,
                output_names=evalset.output_names,
                digest=evalset.digest,
                files=[[str(f) for f in s] for s in evalset.files],
            )
            for name in ENTRY_PATHS:  # kept relative: the entry moves into place below
                data[name] = _map_paths(data[name], lambda path: _inside(path, work))
            self.options.cache.keep(key, work, {"analysis.json": data}, section="analyses")
        else:
            say("simulator analysis: cached (same build, same inputs)")
        data = json.loads(manifest.read_text())
        for name in ENTRY_PATHS:
            data[name] = _map_paths(data[name], lambda path: str(entry / path) if not os.path.isabs(path) else path)
        golden = [[np.load(p) for p in sample] for sample in data["golden"]] or None
        evalset = EvalSet(
            tuple(tuple(Path(f) for f in s) for s in data["files"]),
            data["arrays"],
            data["data_format"],
            golden,
            data["output_names"],
            data["digest"],
        )
        layers = [LayerSummary(**dict(layer, markers=tuple(layer["markers"]))) for layer in data["layers"]]
        return evalset, layers, data["sim_outputs"], data["tensors"]


class LiveStore:
    """Writes samples and telemetry to the store as the runner streams them, one run row
    per core mask, so an interrupted run keeps what it measured."""

    def __init__(self, store: Store, template: RunResult, say: Say):
        self.store = store
        self.template = template
        self.say = say
        self.run_ids: dict[str | None, int] = {}
        self.finished: set[int] = set()
        self.current: str | None = None
        self.started: dict[str | None, float] = {}
        self.backend = template.backend
        self.soc = None
        self.last_print = 0.0

    def __call__(self, event) -> None:
        kind = event.type
        if kind == "hello":
            self.backend, self.soc = event.backend, event.soc
            self.say(f"board: backend {event.backend} ({event.backend_reason})")
        elif kind == "progress":
            self.say(f"board: {event.message}")
        elif kind == "samples":
            run_id = self._run_for(event.core_mask)
            self.store.add_samples(run_id, event.offset, event.latencies_ns, event.stages_ns)
            if time.monotonic() - self.last_print > 1.0 and event.latencies_ns:
                self.last_print = time.monotonic()
                median = float(np.median(event.latencies_ns)) / 1e6  # of this batch (~0.25 s of runs)
                self.say(
                    f"board: {event.offset + len(event.latencies_ns)} runs, "
                    f"median {median:.3f} ms (core mask {event.core_mask or '-'})"
                )
        elif kind == "throughput":
            # stored as it arrives: an interrupted sweep keeps the configurations it measured
            meta = replace(self.template, backend=self.backend, board_soc=self.soc or self.template.board_soc)
            self.store.add_throughput(replace(meta, started=meta.started or _now()), [event])
            if event.out_of_memory:
                self.say(f"board: {len(event.core_masks)} context(s) did not fit: {event.out_of_memory}")
            else:
                self.say(
                    f"board: {len(event.core_masks)} context(s) {event.assignment}: {event.fps:.1f} FPS, "
                    f"p99 {event.stats.p99_ms:.2f} ms"
                    if event.stats
                    else f"board: {event.assignment}: no runs"
                )
        elif kind == "telemetry" and self.current in self.run_ids:
            self.store.add_telemetry(self.run_ids[self.current], [self.telemetry(event)])

    def telemetry(self, event) -> TelemetrySample:
        t = time.monotonic() - self.started.get(self.current, time.monotonic())
        cpu = {str(p.get("policy")): int(p["cur_khz"]) * 1000 for p in event.cpu or [] if p.get("cur_khz")}
        return TelemetrySample(t, event.npu_load_pct, event.npu_freq_hz, cpu, dict(event.temperatures_c))

    def _run_for(self, mask: str | None) -> int:
        if mask not in self.run_ids:
            result = replace(
                self.template,
                backend=self.backend,
                core_mask=mask,
                started=_now(),
                board_soc=self.soc or self.template.board_soc,
                latency_ns=[],
            )
            self.run_ids[mask] = self.store.begin_run(result)
            self.started[mask] = time.monotonic()
        self.current = mask
        return self.run_ids[mask]

    def abort(self, reason: str) -> None:
        """Mark the runs not finished yet as aborted (their samples stay)."""
        for run_id in self.run_ids.values():
            if run_id not in self.finished:
                self.store.abort_run(run_id, reason)


def run_model(request: RunRequest, store: Store, build_options: BuildOptions, say: Say) -> RunReport:
    started = time.monotonic()
    timings: dict[str, float] = {}
    mark = time.monotonic()
    board_options = request.board
    python = board_python(board_options.board, board_options.python)
    transport = board_options.open()
    early = None
    try:
        # The runner starts now and waits for its spec: the board's Python and imports overlap
        # the SoC read, the build and analysis lookups and the blob pushes below.
        early = start_runner_early(transport, python=python, runner_env=request.measure.runner_env())
        if request.target:
            # The runner's hello names the SoC; a board of another SoC is refused there.
            target, soc = request.target, None
        else:
            soc = board_soc(transport, python)
            target = soc or "rk3588"
            if not soc and request.config is not None:  # an already built .rknn is not built again
                say(
                    f"board {board_options.board}: no Rockchip SoC found; building for {target} "
                    "(the simulator stands in for the NPU here)"
                )
        timings["board"] = time.monotonic() - mark

        mark = time.monotonic()
        prepared = build_result = hybrid = None
        if request.config is not None:
            prepared = prepare(replace(request.config, target=target))
            inputs = measured_inputs(prepared, request.measure)
            build_result = _cached(request.cached_build, build_options) or build(prepared, build_options, say)
            rknn = build_result.rknn
            build_key, toolkit = build_result.record["cache_key"], build_result.record["toolkit_version"]
            if request.hybrid_cfg is not None:
                _check_hybrid(request)
                from rkbench.accuracy.hybrid.search import build_from_cfg

                hybrid = build_from_cfg(prepared, request.hybrid_cfg, inputs, build_options, say)
                rknn, build_key = Path(hybrid.rknn), hybrid.key
        else:
            rknn, build_key, toolkit = request.rknn, None, None
        timings["build"] = time.monotonic() - mark
        runtime = None
        if request.measure.backend in RKNN_BACKENDS:  # onnxruntime and the simulator load no .rknn
            if soc is None and request.target:
                soc = board_soc(transport, python)
            runtime = _check_fit(transport, python, rknn, soc, board_options.board, say)

        work = build_options.cache.workdir("run")
        mark = time.monotonic()
        evalset, layers, sim_outputs, kept = None, [], [], []
        if prepared is not None:
            # A hybrid model has no simulator side here (the analysis would be the plain int8
            # build's): only the fp32 reference, and the board is compared with fp32 alone.
            evalset, layers, sim_outputs, kept = Analyses(build_options).get(
                prepared,
                build_result.record["cache_key"],
                inputs,
                request.measure.per_layer,
                say,
                simulate=hybrid is None,
            )
            spec_inputs, formats = evalset.arrays, evalset.data_format
        else:
            spec_inputs, formats = _rknn_inputs(request.measure)
        timings["simulator"] = time.monotonic() - mark

        template = RunResult(
            group=request.group or f"run-{datetime.datetime.now():%Y%m%d-%H%M%S}",
            model=(request.config.name if request.config else rknn.stem),
            model_sha256=(prepared.model_sha256 if prepared else _sha256(rknn)),
            board=request.board_label or board_options.board,
            backend=request.measure.backend,
            core_mask=None,
            build_key=build_key,
            target=target,
            quant=request.config.quant if request.config else None,
            board_soc=soc,
            suite=request.suite,
            settings={
                "warmup": request.measure.warmup,
                "min_runs": request.measure.min_runs,
                "min_seconds": request.measure.min_seconds,
                "inputs": len(spec_inputs),
                "cpu_threads": request.measure.cpu_threads,
                "io_mode": request.measure.io_mode,
                "inputs_path": str(Path(request.measure.inputs).resolve()) if request.measure.inputs else None,
                # What a confirmation needs to measure this build again (lab/confirm.py).
                "recipe": config_record(request.config) if request.config and not request.hybrid_cfg else None,
            },
            versions={"toolkit": toolkit, "librknnrt": runtime} if runtime else {"toolkit": toolkit},
        )
        model = ModelRef(
            rknn=str(rknn),
            onnx=str(prepared.config.model) if prepared and prepared.info.framework == "onnx" else None,
            build_recipe=_board_recipe(prepared, work) if prepared and not hybrid else None,
        )
        configs = None
        if request.measure.throughput or request.measure.sweep:
            from rkbench.run.throughput import plan_configs

            if soc is None:
                soc = board_soc(transport, python)
            masks = [m for m in request.measure.core_masks if m != "auto"] or None
            # a mask the SoC lacks is refused here, before anything runs (exit 2)
            configs = plan_configs(soc, board_options.board, request.measure.sweep, request.measure.contexts, masks)
            if soc is None:
                say(
                    f"board {board_options.board}: SoC unknown (no device tree): planning for one NPU core, masks unchecked"
                )
            say(f"throughput: {len(configs)} configuration(s), {request.measure.throughput_seconds:g} s each")
        spec = request.measure.spec(
            model, spec_inputs, formats, save_outputs=configs is None, throughput_configs=configs
        )
        runner_env = request.measure.runner_env()
        live = LiveStore(store, template, say)
        mark = time.monotonic()
        try:
            outcome = run_on_board(
                transport,
                spec,
                on_event=live,
                target=target,
                python=python,
                out_dir=work / "board",
                runner_env=runner_env,
                early=early,
            )
            soc = soc or outcome.hello.soc
        except BaseException as err:
            live.abort(_abort_reason(err))
            _say_kept(err, live)
            raise
        timings["board_run"] = time.monotonic() - mark
        timings.update({f"board_{k}": v for k, v in asdict(outcome.timings).items()})

        try:
            mark = time.monotonic()
            board_layers = []
            if request.measure.per_layer and prepared is not None and layers:
                try:
                    from rkbench.run.perlayer import per_layer_errors

                    board_layers = per_layer_errors(
                        prepared,
                        layers,
                        kept,
                        evalset.output_names,
                        evalset,
                        build_options,
                        lambda model: _run_debug(transport, model, spec, python, target, work, runner_env),
                        work,
                        say,
                    )
                except RkbenchError as err:  # the measurement stands without the per-layer table
                    say(f"per-layer board error not available: {err}")
                    template.settings["per_layer_error"] = str(err)
            timings["per_layer"] = time.monotonic() - mark

            results = []
            for mask_run in outcome.results:
                run_id = live.run_ids.get(mask_run.core_mask)
                board_outputs = _outputs_by_sample(mask_run)
                result = replace(
                    template,
                    run_id=run_id,
                    backend=mask_run.backend,
                    core_mask=mask_run.core_mask,
                    status="ok",
                    started=template.started or _now(),
                    finished=_now(),
                    board_soc=soc,
                    latency_ns=list(mask_run.samples_ns),
                    stats=summarize(mask_run.samples_ns),
                    npu_stats=mask_run.result.npu_stats,
                    stages_ns=dict(mask_run.stages_ns),
                    stage_stats=dict(mask_run.result.stage_stats),
                    io_mode=mask_run.result.io_mode,
                    timing_notes=list(mask_run.result.timing_notes),
                    npu_profile=_npu_profile(mask_run),
                    memory=dict(mask_run.result.memory),
                    throttled=mask_run.result.throttled,
                    throttle_reasons=list(mask_run.result.throttle_reasons),
                    layers=board_layers,
                    versions={
                        **template.versions,
                        "runner": outcome.hello.runner_version,
                        "python": outcome.hello.python,
                        **outcome.hello.backend_versions,
                        **mask_run.result.versions,  # what the runtime said once the model was loaded
                    },
                    settings=dict(
                        template.settings, elapsed_s=mask_run.result.elapsed_s, stopped_by=mask_run.result.stopped_by
                    ),
                )
                if evalset is not None and evalset.golden:
                    result.outputs += output_errors(board_outputs, evalset.golden, evalset.output_names, "fp32")
                if sim_outputs:
                    result.outputs += output_errors(board_outputs, sim_outputs, evalset.output_names, "simulator")
                previous = latency_reference(store, result)
                result.thresholds = check_thresholds(result, request.limits, previous)
                if run_id is None:
                    result.run_id = store.begin_run(replace(result, status="running"))
                store.finish_run(result.run_id, result)
                results.append(result)
        except BaseException as err:  # Ctrl-C during per-layer or while storing: no run stays "running"
            live.abort(_abort_reason(err))
            raise
        timings["compare_store"] = time.monotonic() - mark
        timings["total"] = time.monotonic() - started
        return RunReport(results, outcome, timings, work, throughput=list(outcome.throughput), group=template.group)
    finally:
        if early is not None:
            early.stop()  # not handed over (a build failed, a model did not fit): let it go
        transport.close()


def config_record(config: BuildConfig) -> dict:
    """The build config as JSON (paths as absolute strings), for `config_from_record`."""
    data = asdict(config)
    for name in ("model", "dataset"):
        if data[name] is not None:
            data[name] = str(Path(data[name]).resolve())
    return data


def config_from_record(data: dict) -> BuildConfig:
    """The BuildConfig a run recorded (tuples from JSON lists, paths from strings)."""

    def tuples(value):
        return tuple(tuples(v) for v in value) if isinstance(value, list) else value

    fields = {k: tuples(v) if isinstance(v, list) else v for k, v in data.items()}
    fields["model"] = Path(fields["model"])
    fields["dataset"] = Path(fields["dataset"]) if fields.get("dataset") else None
    return BuildConfig(**fields)


def _cached(key: str | None, options: BuildOptions):
    """The cache's build `key` as a BuildResult, or None when no key is asked for."""
    if key is None:
        return None
    entry = options.cache.lookup(key)
    if entry is None:
        raise UsageError(f"build {key[:12]} is no longer in the build cache {options.cache.root}")
    return BuildResult(entry / "model.rknn", json.loads((entry / "build.json").read_text()), cached=True)


def _say_kept(err: BaseException, live: LiveStore) -> None:
    """Add to a board failure's message where the samples that came before it are."""
    if isinstance(err, RkbenchError) and live.run_ids and len(err.args) == 1:
        ids = ", ".join(str(run_id) for run_id in live.run_ids.values())
        err.args = (f"{err}; what was measured is kept in the store as aborted run(s) {ids}",)


def _abort_reason(err: BaseException) -> str:
    """What the store (and `rkbench show`) says about a run that did not finish."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted (Ctrl-C / SIGINT)"
    if isinstance(err, SystemExit):
        return f"terminated (exit {err.code}; SIGTERM gives 143)"
    return f"{type(err).__name__}: {err}"


def _check_hybrid(request: RunRequest) -> None:
    if request.measure.backend == "simulator":
        raise UsageError(
            "a hybrid model runs on the NPU (rknnlite): the board's simulator backend builds from "
            "the recipe and cannot run a hybrid build; evaluate it with `rkbench hybrid --cfg`"
        )
    if request.measure.per_layer:
        raise UsageError("--per-layer is not available for hybrid models yet")


def _board_recipe(prepared: Prepared, work: Path) -> BuildRecipe:
    """The build recipe the board's simulator/onnxruntime backends take (mean/std, or a
    simulator build); its calibration list is pushed with the model."""
    dataset = prepared.dataset.write_txt(work / "calibration.txt") if prepared.dataset else None
    recipe = prepared.config.recipe(dataset)
    del recipe["load"]["kwargs"]["model"]  # the board names its own copy (model.onnx)
    return BuildRecipe.from_dict(recipe)


def _rknn_inputs(options: MeasureOptions):
    if options.inputs is None:
        raise UsageError(
            "an already built .rknn needs --inputs: .npy files in the layout the model "
            "takes (a folder, or a dataset.txt)"
        )
    folder = options.inputs
    files = (
        sorted(folder.glob("*.npy"))
        if folder.is_dir()
        else [(folder.parent / line.split()[0]).resolve() for line in folder.read_text().splitlines() if line.strip()]
    )
    if not files:
        raise UsageError(f"{folder}: no .npy inputs")
    arrays = [[str(f)] for f in files[: options.input_count]]
    first = np.load(arrays[0][0], mmap_mode="r")
    return arrays, ["nhwc" if first.ndim == 4 and first.shape[-1] in (1, 3, 4) else None]


def _check_fit(transport, python, rknn: Path, soc: str | None, board: str, say: Say) -> str | None:
    """Before anything is pushed: does the .rknn fit the board (its target platform against the
    board's SoC, its compiler against the board's librknnrt)? Returns the runtime's version."""
    from rkbench.boards.runtime import board_runtime_version, local_runtime_version
    from rkbench.model.compat import require_fit
    from rkbench.model.rknn_file import read_rknn

    runtime = local_runtime_version() if transport.kind == "local" else board_runtime_version(transport, python)
    fit = require_fit(read_rknn(rknn), soc, runtime, board)
    if soc:  # a Rockchip board: say what could not be checked (a stand-in runtime, ...)
        for note in fit.notes:
            say(note)
    return runtime


def _npu_profile(mask_run) -> dict | None:
    """The per-layer NPU profile of a result: what the runner measured, its text as fetched."""
    profile = mask_run.result.profile
    if profile is None:
        return None
    if "unsupported" in profile:
        return {"unsupported": profile["unsupported"]}
    from rkbench.results.npu_profile import parse_perf_detail

    text = mask_run.profile_path.read_bytes() if mask_run.profile_path else b""
    return {
        "runs": profile.get("runs"),
        "seconds": profile.get("seconds"),
        "profile": parse_perf_detail(text).to_dict(),
    }


def _outputs_by_sample(mask_run) -> list[list[Path]]:
    samples: dict[int, dict[int, Path]] = {}
    for output in mask_run.outputs:
        samples.setdefault(output.sample, {})[output.index] = Path(output.local_path)
    return [[paths[k] for k in sorted(paths)] for _, paths in sorted(samples.items())]


def _run_debug(
    transport, model, spec: RunSpec, python: str, target, work: Path, runner_env: dict
) -> list[dict[str, str]]:
    """The debug variant on the board, once per input: its outputs by tensor name. Where
    there is no NPU (the local board) the board's simulator backend builds the same debug
    graph from the recipe and stands in for it."""
    recipe = spec.model.build_recipe
    if recipe is not None:
        recipe = replace(recipe, load_kwargs=dict(recipe.load_kwargs, outputs=list(model.outputs)))
    debug_spec = replace(
        spec,
        model=replace(spec.model, rknn=str(model.rknn), build_recipe=recipe),
        core_masks=spec.core_masks[:1],
        warmup=0,
        min_runs=1,
        min_seconds=0.0,
    )
    outcome = run_on_board(
        transport,
        debug_spec,
        target=target,
        python=python,
        out_dir=work / f"debug-{model.rknn.parent.name}",
        runner_env=runner_env,
    )
    return [dict(zip(model.outputs, map(str, sample))) for sample in _outputs_by_sample(outcome.results[0])]


def latency_reference(store: Store, result: RunResult) -> RunResult | None:
    """What --max-regression compares with: the accepted baseline of the run's key, else the
    previous run on this board."""
    baseline = store.baseline_for(result) if result.run_id is not None else None
    if baseline is not None:
        return store.get_run(baseline)
    rows = store.previous_runs(
        result.model_sha256,
        result.board,
        result.core_mask,
        before_run_id=result.run_id,
        limit=1,
        backend=result.backend,
    )
    return store.get_run(rows[0].run_id) if rows else None


def _sha256(path: Path) -> str:
    from rkbench.model.cache import file_sha256

    return file_sha256(path)
