"""Hybrid quantization: which layers to keep in float16 or int16, found by measurement.

The automatic search (`search`), manual --float / --cfg helpers, the artifacts it writes,
and build_from_cfg() for `run --hybrid-cfg`. Building and measuring candidates is the
session's job (session.py); which dtype an entry can take, the rules' (dtypes.py).
"""

from __future__ import annotations

import difflib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from rkbench.accuracy.hybrid.candidates import Candidate, HybridRecord, best_of, json_safe
from rkbench.accuracy.hybrid.cfg import read_cfg
from rkbench.accuracy.hybrid.dtypes import HIGH, other
from rkbench.accuracy.hybrid.session import HybridSession, Step1
from rkbench.errors import TargetNotReached, UsageError
from rkbench.model.build import BuildOptions, Prepared, Say
from rkbench.model.dataset import Dataset

KEEP_OF_GAIN = 0.02  # out of reach: a candidate may give up 2% of what all layers gain over int8

__all__ = [
    "Candidate",
    "HybridRecord",
    "HybridSession",
    "Step1",
    "build_from_cfg",
    "check_names",
    "not_reached",
    "search",
    "with_partners",
    "write_artifacts",
]


def check_names(names: list[str], step1: Step1) -> None:
    known = step1.cfg.tensors
    for name in names:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=5, cutoff=0.4)
            hint = f"; nearest: {', '.join(near)}" if near else ""
            raise UsageError(
                f"--float '{name}' is not a tensor of this model the toolkit can "
                f"quantize{hint} (all names: `rkbench hybrid MODEL --proposal`, or the "
                "quantize_parameters of a step-1 cfg)"
            )


def check_dtypes(layers: dict[str, str], step1: Step1) -> None:
    """Said before building: an entry the toolkit will refuse in its dtype, with the one that works."""
    problems = []
    for name, dtype in layers.items():
        if dtype not in HIGH:
            continue
        why = step1.rules.refusal(name, dtype)
        if why is None:
            continue
        works = other(dtype) if step1.rules.refusal(name, other(dtype)) is None else None
        problems.append(
            f"'{name}' cannot be {dtype}: {why}; "
            + (f"use {name}:{works}" if works else "leave it in int8 (neither float16 nor int16 works)")
        )
    if problems:
        raise UsageError("--float: " + "; ".join(problems))


def with_partners(requested: dict[str, str], step1: Step1) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Each entry with its fused partners, so it takes effect; returns what was added."""
    layers: dict[str, str] = {}
    added: dict[str, list[str]] = {}
    for name, dtype in requested.items():
        for tensor in step1.graph.unit(name):
            if tensor not in layers and tensor not in requested:
                added.setdefault(name, []).append(tensor)
            layers.setdefault(tensor, requested.get(tensor, dtype))
    return layers, added


@dataclass
class Plan:
    """Candidates as sets of repair groups (indices into the ranked list), each group in
    the dtype the search prefers for the moment, unless the rules say it cannot be."""

    groups: list[list[str]]
    step1: Step1

    def layers(self, chosen: list[int], dtype: str) -> dict[str, str]:
        tensors = [t for index in sorted(chosen) for t in self.groups[index]]
        return self.step1.rules.assign(tensors, dtype)

    def describe(self, chosen: list[int], layers: dict[str, str]) -> list[str]:
        """'dtype:first tensor' per group (the group's most common dtype)."""
        found = []
        for index in sorted(chosen):
            dtypes = [layers[t] for t in self.groups[index] if t in layers]
            if dtypes:
                found.append(f"{max(set(dtypes), key=dtypes.count)}:{self.groups[index][-1]}")
        return found


def search(
    session: HybridSession,
    step1: Step1,
    record: HybridRecord,
    target: float,
    max_builds: int,
    dtype: str = "auto",
    seed: list[str] | None = None,
) -> Candidate:
    """The fewest repair groups whose output cosine reaches the target, by measurement.

    1. The analysis (one build) gives the int8 baseline and the ranked repair groups; every
       other layer follows them, so the list ends with "all layers".
    2. Ceilings: all layers in float16 and all layers in int16 (with the dtype rules), built
       side by side. They say which dtype repairs this model (float16 may overflow or hurt)
       and whether the target can be reached at all.
    3. Shrink: prefixes of the ranked groups, in the better dtype, between the largest
       prefix known to miss and the smallest known to pass, at geometric points (as many per
       round as builds run in parallel). Only a measured pass moves the upper end: accuracy
       is not monotonic in the number of float layers.
    4. Drop what measured as useless: the prefixes measured in 3 split the passing set into
       segments, each with the cosine it added; those that added least (or took away) are
       removed, as many as the margin over the target allows.
    5. Then chunks of the passing set, least suspected first (ddmin-like), each removal kept
       only when it measures as passing; the chosen set in the other dtype if builds remain.
    seed: tensors another method chose (the vendor's proposal): they (with their fused
    partners) are one more candidate (one build, after the ceilings); when it passes, steps
    3-4 are skipped and step 5 shrinks it.
    A failed build (crash, hang, refusal, NaN) is an infeasible candidate; the tensors the
    toolkit names are kept out of later candidates of that dtype, and the search goes on.
    """
    groups, baseline = session.ranked_groups(step1)
    record.candidates.append(baseline)
    baseline.meets_target = baseline.cos_mean >= target
    if baseline.meets_target:
        record.notes.append(
            f"int8 already meets the target: output cosine {baseline.cos_mean:.5f} "
            f">= {target} on the evaluation set; no layer needs float"
        )
        return baseline
    if not groups:
        record.notes.append("step 1 left no tensor that can be kept in float16 or int16")
        return baseline
    plan = Plan(groups, step1)
    everything = list(range(len(groups)))
    tried: dict[tuple, Candidate] = {}

    def room() -> int:
        return max(0, max_builds - session.builds)

    def measure(wanted: list[tuple[list[int], str, str]]) -> list[Candidate | None]:
        """(group indices, dtype, label) -> candidates; None where no build was left."""
        batch, results = [], []
        for chosen, wanted_dtype, label in wanted:
            layers = plan.layers(chosen, wanted_dtype)
            signature = tuple(sorted(layers.items()))
            if signature in tried:
                results.append(tried[signature])
            elif not layers:
                results.append(None)
            else:
                batch.append((layers, label, signature, chosen))
                results.append(signature)
        fresh = [item for item in batch if item[2] not in tried]
        unique = list({item[2]: item for item in fresh}.values())
        # What the cache holds costs no build; what is left is cut to the builds remaining.
        keep, spare = [], room()
        for item in unique:
            if session.is_cached(item[0]) or spare > 0:
                keep.append(item)
                if not session.is_cached(item[0]):
                    spare -= 1
        built = session.evaluate_many(step1, [(layers, label) for layers, label, _, _ in keep])
        for (layers, _, signature, chosen), candidate in zip(keep, built):
            candidate.meets_target = candidate.feasible and candidate.cos_mean >= target
            candidate.groups = plan.describe(chosen, layers)
            tried[signature] = candidate
            record.candidates.append(candidate)
        return [tried.get(r) if isinstance(r, tuple) else r for r in results]

    goal = target  # what a candidate must reach to count as passing (below: when out of reach)

    def passes(candidate: Candidate | None) -> bool:
        return candidate is not None and candidate.feasible and candidate.cos_mean >= goal

    # 2. ceilings, with one retry per dtype when the toolkit named what it refused
    dtypes = list(HIGH) if dtype == "auto" else [dtype]
    ceilings: dict[str, Candidate] = {}
    for attempt in range(2):
        todo = [d for d in dtypes if d not in ceilings or (attempt and not ceilings[d].feasible)]
        if not todo or room() == 0:
            break
        for d, candidate in zip(todo, measure([(everything, d, f"all layers {d}") for d in todo])):
            if candidate is not None:
                ceilings[d] = candidate
    feasible = {d: c for d, c in ceilings.items() if c.feasible}
    if not feasible:
        record.notes.append(
            "no all-layers candidate could be built or evaluated: "
            + "; ".join(f"{d}: {c.failure}" for d, c in ceilings.items())
        )
        return best_of(record.candidates) or baseline
    dtype = max(feasible, key=lambda d: feasible[d].cos_mean)
    for d, c in ceilings.items():
        if d != dtype:
            why = c.failure or f"{c.cos_mean:.5f} with every layer in {d}, {feasible[dtype].cos_mean:.5f} in {dtype}"
            record.notes.append(f"{dtype} chosen over {d} by measurement ({why})")
    if feasible[dtype].cos_mean < baseline.cos_mean:
        record.notes.append(
            f"every layer in {dtype} measures below int8 ({feasible[dtype].cos_mean:.5f} < {baseline.cos_mean:.5f})"
        )
    best = feasible[dtype]
    if not best.meets_target:
        # Out of reach: look for the fewest entries that keep (nearly) all that float gives.
        goal = best.cos_mean - KEEP_OF_GAIN * max(0.0, best.cos_mean - baseline.cos_mean)
        record.notes.append(
            f"even every layer in float16/int16 reaches only {best.cos_mean:.5f} < {target}: "
            "the target is out of reach for hybrid quantization with this calibration set; "
            f"searching the fewest entries that reach {goal:.5f} instead "
            f"({1 - KEEP_OF_GAIN:.0%} of what all layers gain over int8)"
        )

    seeded, seed_groups = None, []
    if seed and room() > 0:
        # The seed's own tensors (each with its fused partners), as groups of their own after
        # the ranked ones (the prefixes never reach them), most suspected first: step 5
        # removes from the end.
        rank = {tensor: i for i, group in enumerate(groups) for tensor in group}
        placed: set[str] = set()
        for tensor in sorted(set(seed), key=lambda t: (rank.get(t, len(groups)), t)):
            unit = [t for t in step1.graph.unit(tensor) if t not in placed]
            if unit:
                placed.update(unit)
                seed_groups.append(len(plan.groups))
                plan.groups.append(unit)
        seeded = measure([(seed_groups, dtype, f"proposal's {len(seed)} entries")])[0]

    if passes(seeded):
        # A passing seed is already far smaller than all layers: the builds go to shrinking it.
        record.notes.append(
            f"the vendor proposal's tensors pass ({len(seeded.layers)} entries, {seeded.cos_mean:.5f}): "
            "the search shrinks them instead of the ranked prefixes"
        )
        chosen, best = seed_groups, seeded
    else:
        # 3. shrink: prefixes between the largest known miss and the smallest known pass; close
        # enough is enough (a quarter of the passing size): step 4 uses the rest better
        low, high = 0, len(groups)
        prefix = {0: baseline}
        while high - low > max(1, high // 4) and room() > 0:
            sizes = _points(low, high, min(session.jobs, room()))
            results = measure([(list(range(k)), dtype, f"top {k} group(s)") for k in sizes])
            for k, candidate in zip(sizes, results):
                if candidate is None:
                    continue
                if candidate.feasible:
                    prefix[k] = candidate
                if passes(candidate):
                    high, best = k, candidate
                    break
                if candidate.failure and plan.layers(list(range(k)), dtype) != candidate.layers:
                    continue  # the toolkit named what it refused: the same prefix without it is next
                low = max(low, k)
        prefix[high] = best
        chosen = list(range(high))

        # 4. drop what measured as useless. Consecutive measured prefixes split the passing set
        # into segments, each with the cosine it added; the segments that added least (or took
        # away) go first, as many as the margin over the target allows (then bolder, in parallel).
        chosen, best = _drop_segments(chosen, best, prefix, goal, session, room, measure, passes, dtype)

    # 5. then ddmin-like: chunks of the passing set, least suspected (last ranked) first;
    # every chunk of one size is tried before the size halves
    chunk, end = max(1, len(chosen) // 2), len(chosen)
    while room() > 0 and len(chosen) > 1:
        removals, start = [], end
        while len(removals) < min(session.jobs, room()) and start > 0:
            stop, start = start, max(0, start - chunk)
            if stop - start < len(chosen):
                removals.append((start, chosen[start:stop]))
        if removals:
            results = measure(
                [([g for g in chosen if g not in r], dtype, f"{len(chosen)} groups less {len(r)}") for _, r in removals]
            )
            won = [
                (at, r, c) for (at, r), c in zip(removals, results) if passes(c) and len(c.layers) < len(best.layers)
            ]
            if won:
                at, removal, best = max(won, key=lambda item: len(item[1]))
                chosen = [g for g in chosen if g not in removal]
                start = at
            end = min(start, len(chosen))
        if not removals or end <= 0:
            if chunk == 1:
                break
            chunk, end = max(1, chunk // 2), len(chosen)

    # the other dtype for the chosen set, if builds remain and both dtypes were in play
    if room() > 0 and len(dtypes) > 1:
        flipped = measure([(chosen, other(dtype), f"chosen set in {other(dtype)}")])[0]
        if passes(flipped) and len(flipped.layers) <= len(best.layers) and flipped.cos_mean > best.cos_mean:
            best = flipped
    return best


def _drop_segments(chosen, best, prefix, target, session, room, measure, passes, dtype):
    """Step 4 of the search: remove the segments of the passing prefix that measured as
    adding least, as many as the margin over the target allows (assuming their gains add
    up), and one more segment in parallel when a second worker is free."""
    sizes = sorted(k for k in prefix if k <= len(chosen))
    segments = sorted(
        ((prefix[b].cos_mean - prefix[a].cos_mean, list(range(a, b))) for a, b in zip(sizes, sizes[1:])),
        key=lambda s: s[0] / len(s[1]),
    )
    while segments and room() > 0:
        margin, spent, taken = best.cos_mean - target, 0.0, 0
        for gain, _ in segments:
            if spent + max(gain, 0.0) > margin:
                break
            spent, taken = spent + max(gain, 0.0), taken + 1
        counts = [c for c in (taken, taken + 1)[: session.jobs] if 0 < c <= len(segments)]
        plans = [(c, [g for _, part in segments[:c] for g in part]) for c in counts]
        plans = [(c, removal) for c, removal in plans if len(removal) < len(chosen)]
        if not plans:
            break
        results = measure(
            [
                ([g for g in chosen if g not in removal], dtype, f"{len(chosen)} groups less {len(removal)} (measured)")
                for _, removal in plans
            ]
        )
        won = [
            (c, removal, r) for (c, removal), r in zip(plans, results) if passes(r) and len(r.layers) < len(best.layers)
        ]
        if not won:
            break
        count, removal, best = max(won, key=lambda item: item[0])
        chosen = [g for g in chosen if g not in removal]
        segments = segments[count:]
    return chosen, best


def _points(low: int, high: int, count: int) -> list[int]:
    """`count` prefix sizes strictly between low and high, spaced geometrically (the groups
    that matter are more likely among the first few)."""
    start = max(low, 0.5)
    points = []
    for i in range(1, count + 1):
        k = int(round(start * (high / start) ** (i / (count + 1))))
        k = min(high - 1, max(low + 1, k))
        if k not in points:
            points.append(k)
    return points


def write_artifacts(record: HybridRecord, step1: Step1 | None, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"record": out_dir / "hybrid.json"}
    chosen = record.chosen
    if chosen is not None and chosen.rknn:
        paths["rknn"] = out_dir / "model.rknn"
        shutil.copyfile(chosen.rknn, paths["rknn"])
        if step1 is not None:
            paths["cfg"] = out_dir / "hybrid.quantization.cfg"
            paths["cfg"].write_text(step1.cfg.with_custom(chosen.layers).text())
    paths["record"].write_text(json.dumps(json_safe(record.to_dict()), indent=2))
    return paths


def not_reached(record: HybridRecord, target: float, max_builds: int) -> TargetNotReached:
    best = record.chosen
    cos = "nothing feasible" if best is None or not math.isfinite(best.cos_mean) else f"{best.cos_mean:.5f}"
    return TargetNotReached(
        f"output cosine {target} not reached within {max_builds} builds: the best candidate "
        f"({best.label if best else '-'}, {len(best.layers) if best else 0} entries) reaches {cos}; it is "
        "written out; raise --max-builds or lower --target-cos"
    )


def build_from_cfg(prepared: Prepared, cfg: Path, evaluation: Dataset, options: BuildOptions, say: Say) -> Candidate:
    """The hybrid model a cfg describes (its custom_quantize_layers, with fused partners),
    built from one cached step 1 and evaluated on `evaluation`; cached like any build."""
    session = HybridSession(prepared, prepared.dataset, evaluation, options, say)
    try:
        step1 = session.step1()
        requested = read_cfg(cfg).custom
        check_names(list(requested), step1)
        layers, _ = with_partners(requested, step1)
        candidate = session.evaluate(step1, layers, f"hybrid {cfg.name}")
        if candidate.failure:
            from rkbench.errors import ConversionError

            raise ConversionError(f"the hybrid model of {cfg} could not be built: {candidate.failure}")
        return candidate
    finally:
        session.close()
