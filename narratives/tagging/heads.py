"""The tagger's heads and how they are fitted and calibrated, shared by the zero-shot
recipe (:mod:`narratives.tagging.tagger`) and training (:mod:`narratives.tagging.trainer`):
logistic heads on embeddings with the languages' directions taken out, thresholds chosen for
F1, sub-narratives kept only with their narrative, and the samples-F1 both select on.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

#: L2 penalty of the logistic heads (on unit-length embeddings).
L2 = 1e-5
#: Decision thresholds considered when calibrating.
GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)


@dataclass
class Head:
    weight: np.ndarray  # (K, d)
    bias: np.ndarray  # (K,)
    center: np.ndarray  # (d,)
    nuisance: np.ndarray  # (r, d) orthonormal directions taken out first (language identity)

    def features(self, x: np.ndarray) -> np.ndarray:
        x = x - self.center
        return x - (x @ self.nuisance.T) @ self.nuisance

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities of each class for the rows of ``x``, each row computed on its own
        (einsum in float64, not BLAS products whose sums depend on how many rows come at
        once): a post gets the same tags in any chunk. In ``x``'s precision (float32 for
        embeddings), as the products gave before."""
        dtype = np.result_type(x.dtype, self.weight.dtype, np.float32)
        x = x.astype(np.float64) - self.center
        nuisance = self.nuisance.astype(np.float64)
        x = x - np.einsum("nr,rd->nd", np.einsum("nd,rd->nr", x, nuisance), nuisance)
        z = np.einsum("nd,kd->nk", x, self.weight.astype(np.float64)) + self.bias
        return (1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))).astype(dtype)


def language_directions(x: np.ndarray, langs: np.ndarray) -> np.ndarray:
    """Orthonormal directions along which the mean embeddings of the languages differ:
    e5 places each language's sentences in their own region, whatever they say."""
    names = sorted(set(langs.tolist()))
    if len(names) < 2:
        return np.zeros((0, x.shape[1]), dtype=np.float32)
    means = np.vstack([x[langs == lang].mean(axis=0) for lang in names])
    _, s, vt = np.linalg.svd(means - means.mean(axis=0), full_matrices=False)
    return vt[s > 1e-6 * s.max()].astype(np.float32)


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    langs: np.ndarray,
    seed: int = 0,
    l2: float = L2,
    balanced: bool = True,
) -> Head:
    """One-vs-rest logistic regression with class-balanced weights and an L2 penalty,
    fitted by full-batch L-BFGS (deterministic on CPU), on embeddings from which the
    directions that tell the training languages apart are removed."""
    import torch

    torch.manual_seed(seed)
    center = x.mean(axis=0)
    nuisance = language_directions(x, langs)
    features = Head(np.zeros((0, x.shape[1])), np.zeros(0), center, nuisance).features(x)
    xt = torch.from_numpy(features.astype(np.float64))
    yt = torch.from_numpy(y.astype(np.float64))
    n_pos = yt.sum(dim=0).clamp(min=1.0)
    pos_weight = (len(yt) - n_pos) / n_pos if balanced else torch.ones_like(n_pos)
    w = torch.zeros((y.shape[1], x.shape[1]), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(y.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
    )
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="mean")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(xt @ w.T + b, yt) + l2 * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return Head(
        w.detach().numpy().astype(np.float32),
        b.detach().numpy().astype(np.float32),
        center.astype(np.float32),
        nuisance,
    )


def consistent(tags: np.ndarray, parent_of: np.ndarray) -> np.ndarray:
    """Tags with every sub-narrative dropped whose narrative is not tagged (``parent_of``:
    the column of each label's narrative, -1 for narratives)."""
    tags = tags.copy()
    for k, p in enumerate(parent_of):
        if p >= 0:
            tags[:, k] &= tags[:, p]
    return tags


def best_threshold(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """The threshold with the best F1 on held-out scores. Exemplars are often separated
    by a wide range of thresholds; the middle of that range (the widest margin on both
    sides) is kept, not an edge."""
    f1s = []
    for threshold in GRID:
        pred = scores >= threshold
        tp = float((pred & truth).sum())
        total = float(pred.sum() + truth.sum())
        f1s.append(2 * tp / total if total else 0.0)
    f1 = np.array(f1s)
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return float(np.round((GRID[best[0]] + GRID[best[-1]]) / 2, 3)), float(f1.max())


def micro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    tp = float((truth & pred).sum())
    denom = float(truth.sum() + pred.sum())
    return 2 * tp / denom if denom else 0.0


def label_thresholds(scores: np.ndarray, truth: np.ndarray, min_pos: int) -> np.ndarray:
    """A threshold per label for its own F1 (see ``best_threshold``); labels with fewer
    than ``min_pos`` validation positives get the best single threshold for all labels."""
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    fallback = float(grid[int(np.argmax([micro_f1(truth, scores >= g) for g in grid]))])
    out = np.full(truth.shape[1], fallback, dtype=np.float32)
    for k in np.flatnonzero(truth.sum(axis=0) >= min_pos):
        out[k] = best_threshold(scores[:, k], truth[:, k])[0]
    return out


def samples_f1(
    truth: np.ndarray | Sequence[Collection[str]],
    pred: np.ndarray | Sequence[Collection[str]],
    *,
    both_empty: float = 0.0,
) -> float:
    """SemEval-2025 Task 10 subtask 2's metric: the F1 of each document's predicted label
    set against its gold set, averaged over documents (scikit-learn's
    ``f1_score(average="samples")`` on binarised labels).

    ``truth`` and ``pred``: boolean (n, K) matrices, or one collection of labels per
    document. A document whose gold and predicted sets are both empty scores
    ``both_empty``: 0 as the task's scorer counts it (its documents always carry a label,
    ``Other`` at least). Calibration on posts passes 1: there a post that should get no tag
    and gets none is answered right, and scoring it 0 would hide false tags."""
    if len(truth) != len(pred):
        raise ValueError("truth and pred must have one label set per document")
    if len(truth) == 0:
        raise ValueError("no documents")
    if not isinstance(truth, np.ndarray) and not isinstance(pred, np.ndarray):
        names = sorted({label for labelled in [*truth, *pred] for label in labelled})
        index = {label: k for k, label in enumerate(names)}
        truth, pred = _binarise(truth, index), _binarise(pred, index)
    elif not (isinstance(truth, np.ndarray) and isinstance(pred, np.ndarray)):
        raise ValueError("pass truth and pred both as matrices or both as label sets")
    truth, pred = np.asarray(truth, dtype=bool), np.asarray(pred, dtype=bool)
    tp = (truth & pred).sum(axis=1)
    size = truth.sum(axis=1) + pred.sum(axis=1)
    return float(np.where(size > 0, 2 * tp / np.maximum(size, 1), both_empty).mean())


def _binarise(sets: Sequence[Collection[str]], index: dict[str, int]) -> np.ndarray:
    out = np.zeros((len(sets), len(index)), dtype=bool)
    for i, labelled in enumerate(sets):
        out[i, [index[label] for label in labelled]] = True
    return out


def level_thresholds(
    proba: np.ndarray, truth: np.ndarray, level: np.ndarray, parent_of: np.ndarray
) -> np.ndarray:
    """One threshold for narratives and one for sub-narratives, for the best per-text F1."""
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    best, best_t = -1.0, np.full(len(level), 0.5, dtype=np.float32)
    for t1 in grid:
        for t2 in grid if (~level).any() else [0.5]:
            t = np.where(level, t1, t2).astype(np.float32)
            score = samples_f1(truth, consistent(proba >= t, parent_of), both_empty=1.0)
            if score > best + 1e-12:
                best, best_t = score, t
    return best_t
