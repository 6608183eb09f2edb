"""The seed's support vector machine: scikit-learn's ``SVC`` with the defaults of its time, and a progress display.

``SVC(kernel="rbf", gamma="auto", C=1.0)``: ``gamma="auto"`` is 1/784 for MNIST, the
default before scikit-learn 0.22 and the setting of the published 94.35 %. Fitting on
50,000 images takes minutes and libsvm reports nothing meanwhile, so a spinner shows the
time elapsed; prediction goes in chunks under a progress bar.
"""

from __future__ import annotations

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows.progress import spinner

SVM_PARAMS = {"kernel": "rbf", "gamma": "auto", "C": 1.0}
CACHE_MB = 1000  # libsvm's kernel cache: speed only, the solution does not depend on it
PREDICT_CHUNK = 500


class SVMBaseline:
    """``fit(X, y)`` / ``predict(X)`` around ``SVC``, showing progress when ``progress`` is true."""

    def __init__(self, progress: bool = False, cache_mb: int = CACHE_MB) -> None:
        from sklearn.svm import SVC

        self.progress = progress
        self.model = SVC(**SVM_PARAMS, cache_size=cache_mb)

    @property
    def params(self) -> dict[str, object]:
        return {**SVM_PARAMS, "cache_size": self.model.cache_size}

    def fit(self, X, y) -> "SVMBaseline":
        with spinner(f"SVM: fitting on {len(X):,} images (minutes; libsvm shows no progress)", self.progress):
            self.model.fit(np.asarray(X, dtype=np.float64), np.asarray(y))
        return self

    @property
    def n_support(self) -> int:
        return int(self.model.n_support_.sum())

    def predict(self, X) -> np.ndarray:
        out = np.empty(len(X), dtype=np.int64)
        with Progress(
            TextColumn(f"SVM: predicting {len(X):,} images"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=not self.progress,
        ) as progress:
            task = progress.add_task("predict", total=len(X))
            for start in range(0, len(X), PREDICT_CHUNK):
                chunk = np.asarray(X[start : start + PREDICT_CHUNK], dtype=np.float64)
                out[start : start + len(chunk)] = self.model.predict(chunk)
                progress.advance(task, len(chunk))
        return out
