"""Does a model fit a board? Decided on the host, before anything is pushed.

Pure functions of what the .rknn says (rknn_file.RknnInfo) and what the board says (its
SoC from the device tree, its librknnrt version string):

    fit = check_fit(read_rknn("model.rknn"), soc="rk3566", runtime="librknnrt version: 2.3.2 (...)",
                    board="192.168.1.20")
    fit.ok, fit.problems, fit.notes
    require_fit(...)        # the same, raising UsageError with every problem and its fix

Two rules:
- the SoC: an .rknn runs only on the NPU it was built for (one family: rk3588 and rk3588s,
  rk3566 and rk3568 run the same file);
- the versions: a model from a toolkit NEWER (major.minor) than the board's runtime is
  refused (the runtime may reject it, or worse, run it wrong); so is a runtime of an older
  major than the toolkit. A newer runtime runs older models. A version that cannot be read
  is a note, not a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rkbench.errors import UsageError
from rkbench.model.rknn_file import RknnInfo

#: SoC names whose NPUs run the same .rknn (the toolkit's target_platform on the left).
SOC_FAMILIES = ({"rk3588", "rk3588s"}, {"rk3566", "rk3568"})

_VERSION = re.compile(r"(?:librknnrt version:\s*)?v?(\d+)\.(\d+)(?:\.(\d+))?")


def soc_matches(target: str, soc: str) -> bool:
    """True when a model built for `target` runs on a board whose SoC is `soc`."""
    t, s = target.strip().lower(), soc.strip().lower()
    if t == s:
        return True
    return any(t in family and s in family for family in SOC_FAMILIES)


@dataclass(frozen=True)
class Version:
    """A toolkit or runtime version: its numbers, the text it came from, and whether the
    text says it is a stand-in (ours, not the vendor's runtime)."""

    major: int
    minor: int
    patch: int
    text: str

    @property
    def standin(self) -> bool:
        return "stand-in" in self.text

    @property
    def release(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def parse_version(text: str | None) -> Version | None:
    """'librknnrt version: 2.5.0 (hash@date)', '2.5.0 (hash@date)', '2.5.0' -> Version;
    None when the text holds no version."""
    if not text:
        return None
    found = _VERSION.search(text)
    if found is None:
        return None
    major, minor, patch = found.group(1), found.group(2), found.group(3) or "0"
    return Version(int(major), int(minor), int(patch), text.strip())


@dataclass
class FitCheck:
    """problems: reasons the model must not go to the board, each with its fix; notes:
    what could not be checked, or is worth knowing (a stand-in runtime)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def target_problem(targets: Sequence[str], soc: str | None, model: str, board: str) -> str | None:
    """Why a model built for `targets` cannot run on a board with `soc`, or None."""
    if not targets or not soc:
        return None
    if any(soc_matches(target, soc) for target in targets):
        return None
    built_for = "/".join(t.lower() for t in targets)
    return (
        f"{model} was built for {built_for} but {board} is an {soc.lower()} board (an .rknn only runs on "
        f"the NPU it was built for): rebuild it with --target {soc.lower()}"
    )


def version_problem(toolkit: str | None, runtime: str | None, model: str, board: str) -> str | None:
    """Why a model from toolkit `toolkit` must not meet librknnrt `runtime`, or None."""
    built, running = parse_version(toolkit), parse_version(runtime)
    if built is None or running is None:
        return None
    if (running.major, running.minor) >= (built.major, built.minor):
        return None
    return (
        f"{model} was compiled by rknn-toolkit2 {built.release} but {board}'s librknnrt is {running.release}, "
        f"older than the toolkit (a runtime may refuse, or run wrong, a model from a newer toolkit): install "
        f"a librknnrt {built.major}.{built.minor} or newer with `rkbench provision {board} --librknnrt PATH`, "
        f"or rebuild the model with rknn-toolkit2 {running.major}.{running.minor}"
    )


def check_fit(info: RknnInfo, soc: str | None, runtime: str | None, board: str) -> FitCheck:
    """Whether the .rknn described by `info` (an RknnInfo) fits a board with SoC `soc` and
    librknnrt version string `runtime` (None: not known)."""
    fit = FitCheck()
    model = info.path
    problem = target_problem(info.target_platforms, soc, model, board)
    if problem:
        fit.problems.append(problem)
    # The compiler made the NPU code the runtime reads (in 2.x its version is the toolkit's).
    built = info.compiler_version or info.toolkit_version
    problem = version_problem(built, runtime, model, board)
    if problem:
        fit.problems.append(problem)
    if not soc:
        fit.notes.append(f"{board}: SoC unknown, the model's target ({info.target or '?'}) was not checked")
    running = parse_version(runtime)
    if running is None:
        fit.notes.append(f"{board}: librknnrt version unknown, the model's toolkit version was not checked")
    elif running.standin:
        fit.notes.append(f"{board}: its librknnrt is a stand-in ({runtime}), not the vendor runtime")
    if parse_version(built) is None:
        fit.notes.append(f"{model}: no toolkit version in the file, the runtime version was not checked")
    return fit


def require_fit(info: RknnInfo, soc: str | None, runtime: str | None, board: str) -> FitCheck:
    """check_fit, raising UsageError (every problem, each with its fix) when the model does
    not fit; returns the check (its notes) when it does."""
    fit = check_fit(info, soc, runtime, board)
    if not fit.ok:
        raise UsageError("; and ".join(fit.problems))
    return fit
