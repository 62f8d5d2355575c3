"""Input preprocessing fitted on the training split only, then applied unchanged to validation and test.

The lecture recipe (X is N x D, one example per row)::

    X -= np.mean(X, axis=0)      # "center": zero-mean features
    X /= np.std(X, axis=0)       # "standardize": and unit variance

and PCA whitening: with the training covariance ``C = Xc^T Xc / N = U diag(lam) U^T``,
``x_white = (x - mu) U diag(1 / sqrt(lam + eps))``, so the whitened training features have covariance
``diag(lam / (lam + eps))``, the identity up to ``eps``. Fitting on the test split too would leak its
statistics into the model; ``fit`` therefore sees the training split only.

A constant feature (std 0) is left at zero after centering instead of dividing by zero.

>>> import numpy as np
>>> X = np.array([[1.0, 10.0], [3.0, 30.0]])
>>> Standardize().fit(X).transform(X).tolist()
[[-1.0, -1.0], [1.0, 1.0]]
"""
from __future__ import annotations

import numpy as np

__all__ = ["Identity", "Center", "Standardize", "PCAWhiten", "get", "NAMES"]

NAMES = ("none", "center", "standardize", "whiten")


class _Fitted:
    """fit(X) -> self; transform(X) keeps the input's float dtype; fit_transform(X)."""

    name = "none"

    def fit(self, X):
        X = self._check(X)
        self._fit(X.astype(np.float64))
        self.n_features_ = X.shape[1]
        return self

    def transform(self, X):
        X = self._check(X)
        if not hasattr(self, "n_features_"):
            raise ValueError(f"{self.name}: call fit on the training split before transform")
        if X.shape[1] != self.n_features_:
            raise ValueError(f"{self.name}: shape mismatch: fitted on {self.n_features_} features, "
                             f"got {X.shape[1]}")
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        return np.ascontiguousarray(self._transform(X.astype(np.float64)), dtype=dtype)

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def state(self) -> dict:
        """The fitted arrays (for checkpoints: plain float arrays, no pickle)."""
        return {}

    def _check(self, X):
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"{self.name}: expected a 2-D array (samples, features), got shape {X.shape}")
        return X

    def _fit(self, X):
        pass

    def _transform(self, X):
        return X

    def __repr__(self):
        return f"{type(self).__name__}()"


class Identity(_Fitted):
    """No preprocessing (still checks the feature count)."""


class Center(_Fitted):
    """Mean subtraction: ``x - mu`` with ``mu`` the training mean of each feature."""

    name = "center"

    def _fit(self, X):
        self.mean_ = X.mean(axis=0)

    def _transform(self, X):
        return X - self.mean_

    def state(self):
        return {"mean": self.mean_}


class Standardize(Center):
    """Per-feature standardization: ``(x - mu) / sigma``; a feature with sigma = 0 is only centered."""

    name = "standardize"

    def _fit(self, X):
        super()._fit(X)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)

    def _transform(self, X):
        return (X - self.mean_) / self.scale_

    def state(self):
        return {"mean": self.mean_, "scale": self.scale_}


class PCAWhiten(Center):
    """PCA whitening: ``(x - mu) U diag(1/sqrt(lam + eps))`` from the eigendecomposition of the covariance.

    ``n_components`` keeps the leading components only (dimension reduction); ``eps`` regularizes the
    directions of tiny variance so that noise is not blown up.
    """

    name = "whiten"

    def __init__(self, eps: float = 1e-5, n_components: int | None = None):
        if not eps >= 0:
            raise ValueError(f"whiten: eps must be >= 0, got {eps}")
        if n_components is not None and int(n_components) < 1:
            raise ValueError(f"whiten: n_components must be >= 1, got {n_components}")
        self.eps = float(eps)
        self.n_components = None if n_components is None else int(n_components)

    def _fit(self, X):
        super()._fit(X)
        Xc = X - self.mean_
        cov = Xc.T @ Xc / len(X)
        lam, U = np.linalg.eigh(cov)
        order = np.argsort(lam)[::-1]
        lam, U = np.clip(lam[order], 0.0, None), U[:, order]
        # eigenvectors are defined up to sign: fix it so that refits give identical transforms
        signs = np.sign(U[np.argmax(np.abs(U), axis=0), np.arange(U.shape[1])])
        U = U * np.where(signs == 0, 1.0, signs)
        k = U.shape[1] if self.n_components is None else min(self.n_components, U.shape[1])
        self.eigenvalues_ = lam[:k]
        self.components_ = U[:, :k]
        self.projection_ = U[:, :k] / np.sqrt(lam[:k] + self.eps)

    def _transform(self, X):
        return (X - self.mean_) @ self.projection_

    def state(self):
        return {"mean": self.mean_, "projection": self.projection_}

    def __repr__(self):
        return f"PCAWhiten(eps={self.eps!r}, n_components={self.n_components!r})"


def get(name: str | None, **kwargs) -> _Fitted:
    """A fresh preprocessor by name: ``none``, ``center``, ``standardize`` or ``whiten``."""
    table = {"none": Identity, "center": Center, "standardize": Standardize, "whiten": PCAWhiten}
    key = "none" if name is None else str(name).lower()
    if key not in table:
        raise ValueError(f"unknown preprocessing {name!r}: expected one of {', '.join(NAMES)}")
    return table[key](**kwargs)
