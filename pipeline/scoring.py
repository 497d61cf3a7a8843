"""Score detected steps against ground truth (simulated truth files or reference events).

Matching: each true IC is paired with the nearest detected IC of the same sensor within
``tolerance_s`` (one-to-one, in time order). Recall = matched / true, precision =
matched / detected. Event errors are detected minus true, in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EventScore:
    n_true: int
    n_detected: int
    n_matched: int
    ic_err_ms: np.ndarray
    to_err_ms: np.ndarray
    pairs: np.ndarray  # (n_matched, 2) indices into (true, detected)

    @property
    def recall(self) -> float:
        return self.n_matched / self.n_true if self.n_true else float("nan")

    @property
    def precision(self) -> float:
        return self.n_matched / self.n_detected if self.n_detected else float("nan")

    def summary(self) -> str:
        med = lambda a: float(np.nanmedian(np.abs(a))) if a.size else float("nan")  # noqa: E731
        return (f"true {self.n_true} detected {self.n_detected} matched {self.n_matched} "
                f"recall {self.recall:.4f} precision {self.precision:.4f} "
                f"|IC err| median {med(self.ic_err_ms):.2f} ms, |TO err| median {med(self.to_err_ms):.2f} ms")


def match_events(true_ic_s, true_to_s, det_ic_s, det_to_s, *, tolerance_s: float = 0.1) -> EventScore:
    t_ic = np.asarray(true_ic_s, float)
    d_ic = np.asarray(det_ic_s, float)
    t_to = np.asarray(true_to_s, float)
    d_to = np.asarray(det_to_s, float)
    pairs = []
    used = np.zeros(d_ic.size, bool)
    for i, t in enumerate(t_ic):
        if d_ic.size == 0:
            break
        j = int(np.argmin(np.where(used, np.inf, np.abs(d_ic - t))))
        if not used[j] and abs(d_ic[j] - t) <= tolerance_s:
            used[j] = True
            pairs.append((i, j))
    p = np.array(pairs, dtype=int).reshape(-1, 2)
    ic_err = (d_ic[p[:, 1]] - t_ic[p[:, 0]]) * 1e3 if p.size else np.empty(0)
    to_err = (d_to[p[:, 1]] - t_to[p[:, 0]]) * 1e3 if p.size and d_to.size else np.empty(0)
    return EventScore(t_ic.size, d_ic.size, len(pairs), ic_err, to_err, p)
