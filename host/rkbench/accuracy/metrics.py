"""Agreement between two output tensors: cosine, euclidean, max abs error, top-1."""

from __future__ import annotations

import numpy as np


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0 or not np.isfinite(na) or not np.isfinite(nb):
        return 0.0 if np.isfinite(na) and np.isfinite(nb) else float("nan")
    return float(np.dot(a, b) / (na * nb))


def euclidean(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64).ravel() - np.asarray(b, np.float64).ravel()))


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64).ravel() - np.asarray(b, np.float64).ravel())))


def is_class_vector(shape: tuple) -> bool:
    """An output that reads as class scores: one row of more than one value."""
    dims = [d for d in shape if d != 1]
    return len(dims) == 1 and dims[0] > 1


def top1(a: np.ndarray) -> int:
    return int(np.argmax(np.asarray(a).ravel()))


class Agreement:
    """Accumulates, per output index, how far measured outputs are from their references
    over many samples: mean/min cosine, mean euclidean, max abs error, top-1 agreement."""

    def __init__(self):
        self.rows: dict[int, dict[str, list]] = {}

    def add(self, k: int, reference: np.ndarray, measured: np.ndarray) -> None:
        row = self.rows.setdefault(k, {"cos": [], "euc": [], "max": [], "top1": [], "shape": list(reference.shape)})
        row["cos"].append(cosine(reference, measured))
        row["euc"].append(euclidean(reference, measured))
        row["max"].append(max_abs(reference, measured))
        if is_class_vector(reference.shape):
            row["top1"].append(top1(reference) == top1(measured))

    def summary(self) -> list[tuple[int, dict]]:
        """(output index, {shape, cos_mean, cos_min, euc_mean, max_abs, top1_agreement})."""
        return [
            (
                k,
                {
                    "shape": row["shape"],
                    "cos_mean": float(np.mean(row["cos"])),
                    "cos_min": float(np.min(row["cos"])),
                    "euc_mean": float(np.mean(row["euc"])),
                    "max_abs": float(np.max(row["max"])),
                    "top1_agreement": float(np.mean(row["top1"])) if row["top1"] else None,
                },
            )
            for k, row in sorted(self.rows.items())
        ]
