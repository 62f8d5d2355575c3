"""Initializers whose entries are not iid: orthogonal, sparse, eye (identity) and dirac.

* ``Orthogonal(gain)`` (Saxe et al. 2014; PyTorch's ``orthogonal_``): the weight flattened to
  rows x cols = shape[0] x prod(shape[1:]) is ``gain`` times a Haar-random semi-orthogonal matrix (QR of a
  Gaussian matrix, signs fixed by diag(R), Mezzadri 2007). With n = max(rows, cols) each entry is a
  coordinate of a uniform point on the sphere S^(n-1), so its square is Beta(1/2, (n-1)/2) and

      Var(w) = gain^2 / n.

* ``Sparse(sparsity, std)`` (Martens 2010; PyTorch's ``sparse_``): N(0, std^2) entries, then exactly
  z = ceil(sparsity * rows) zeros per column at random rows: Var(w) = std^2 (1 - z / rows).
* ``Eye`` and ``Dirac(groups)``: deterministic identities for dense and convolutional layers (as PyTorch's
  ``eye_`` and ``dirac_``); their mean and variance are those of the entries of the array.

>>> w = Orthogonal()((3, 5), rng=0)
>>> bool(np.allclose(w @ w.T, np.eye(3), atol=1e-6))
True
>>> Sparse(0.5, 1.0).variance((4, 10))                  # 2 of 4 rows zero in every column
0.5
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .core import Deterministic, Initializer, check_scale

__all__ = ["Orthogonal", "Sparse", "Eye", "Dirac", "orthogonal_matrix", "orthogonal_apply"]


def orthogonal_matrix(src, rows: int, cols: int, stream: int = 0) -> np.ndarray:
    """A Haar-random rows x cols float64 matrix with orthonormal rows (rows <= cols) or columns."""
    tall = (max(rows, cols), min(rows, cols))
    a = src.normal(tall, np.float64, 0.0, 1.0, stream=stream)
    q, r = np.linalg.qr(a)
    # multiplying column j by sign(R_jj) makes Q Haar-distributed (Mezzadri 2007)
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)
    return q if rows >= cols else q.T


def orthogonal_apply(src, n: int, c: np.ndarray, stream: int = 0) -> np.ndarray:
    """Q @ c for the Haar-random n x n orthogonal Q that :func:`orthogonal_matrix` draws from the same source,
    without forming Q: LAPACK's Householder reflectors of the QR are applied to ``c`` directly (about 40% fewer
    flops than forming Q and multiplying), after the same sign fix by diag(R) (Mezzadri 2007)."""
    from scipy.linalg import lapack, qr
    a = src.normal((n, n), np.float64, 0.0, 1.0, stream=stream)
    (h, tau), r = qr(a, mode="raw")
    signs = np.where(np.diag(h) < 0, -1.0, 1.0)           # diag(R) sits on the diagonal of the raw factor
    c = np.asfortranarray(signs[:, None] * np.asarray(c, dtype=np.float64).reshape(n, -1))
    out, _, info = lapack.dormqr("L", "N", h, tau, c, lwork=max(1, c.shape[1]) * 64, overwrite_c=1)
    if info != 0:
        raise ArithmeticError(f"LAPACK dormqr failed (info {info})")
    return out


class Orthogonal(Initializer):
    """``gain`` times a random (semi-)orthogonal matrix; trailing dimensions are flattened."""
    distribution = "orthogonal"
    min_ndim = 2

    def __init__(self, gain: float = 1.0, name: str = "orthogonal"):
        self.gain = check_scale(gain, "gain")
        self.name = name

    @staticmethod
    def _rows_cols(dims):
        return dims[0], math.prod(dims[1:])

    def _draw(self, dims, src, dt):
        rows, cols = self._rows_cols(dims)
        return (self.gain * orthogonal_matrix(src, rows, cols)).reshape(dims).astype(dt)

    def _variance(self, dims):
        return self.gain ** 2 / max(self._rows_cols(dims))

    def _params(self, dims):
        n = max(self._rows_cols(dims))
        return {"gain": self.gain, "n": n}


class Sparse(Initializer):
    """N(0, std^2) with ``ceil(sparsity * rows)`` zeros in every column (2-D only)."""
    distribution = "sparse"
    min_ndim = 2

    def __init__(self, sparsity: float, std: float = 0.01, name: str = "sparse"):
        self.sparsity = check_scale(sparsity, "sparsity")
        if self.sparsity > 1.0:
            raise ValueError(f"sparsity is a fraction in [0, 1], got {sparsity}")
        self.std_ = check_scale(std, "std")
        self.name = name

    def check_shape(self, shape):
        dims = super().check_shape(shape)
        if len(dims) != 2:
            raise ValueError(f"sparse needs a 2-D shape (rows, cols), got {dims}")
        return dims

    def zeros_per_column(self, rows: int) -> int:
        return math.ceil(self.sparsity * rows)

    def _draw(self, dims, src, dt):
        out = src.normal(dims, dt, 0.0, self.std_, stream=0)
        z = self.zeros_per_column(dims[0])
        if z:
            # the z smallest of iid uniform ranks are a uniformly random z-subset of each column
            rows = np.argsort(src.unit(dims, stream=1), axis=0, kind="stable")[:z]
            np.put_along_axis(out, rows, 0.0, axis=0)
        return out

    def _variance(self, dims):
        return self.std_ ** 2 * (1.0 - self.zeros_per_column(dims[0]) / dims[0])

    def _params(self, dims):
        return {"std": self.std_, "zeros_per_column": self.zeros_per_column(dims[0])}


class _Ones(Deterministic):
    """A 0/1 pattern: its entries have mean ones / size and variance mean (1 - mean)."""

    def _ones(self, dims) -> int:
        raise NotImplementedError

    def _mean(self, dims):
        return self._ones(dims) / math.prod(dims)

    def _variance(self, dims):
        m = self._mean(dims)
        return m - m * m                  # entries are 0 or 1

    def _params(self, dims):
        return {"ones": self._ones(dims)}


class Eye(_Ones):
    """The rows x cols identity (2-D only), as ``torch.nn.init.eye_``."""
    distribution = "eye"

    def __init__(self, name: str = "eye"):
        self.name = name

    def check_shape(self, shape):
        dims = super().check_shape(shape)
        if len(dims) != 2:
            raise ValueError(f"eye needs a 2-D shape, got {dims}")
        return dims

    def _ones(self, dims):
        return min(dims)

    def _draw(self, dims, src, dt):
        return np.eye(*dims, dtype=dt)


class Dirac(_Ones):
    """The identity convolution (3-, 4- or 5-D, torch layout), per group, as ``torch.nn.init.dirac_``."""
    distribution = "dirac"

    def __init__(self, groups: int = 1, name: str = "dirac"):
        if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
            raise ValueError(f"groups must be a positive integer, got {groups!r}")
        self.groups = int(groups)
        self.name = name

    def check_shape(self, shape):
        dims = super().check_shape(shape)
        if len(dims) not in (3, 4, 5):
            raise ValueError(f"dirac needs a 3-, 4- or 5-D shape (out, in, *kernel), got {dims}")
        if dims[0] % self.groups:
            raise ValueError(f"dirac: the {dims[0]} output channels are not divisible by groups={self.groups}")
        return dims

    def _ones(self, dims):
        return self.groups * min(dims[0] // self.groups, dims[1])

    def _draw(self, dims, src, dt):
        out = np.zeros(dims, dtype=dt)
        per = dims[0] // self.groups
        centre = tuple(d // 2 for d in dims[2:])
        for g in range(self.groups):
            for d in range(min(per, dims[1])):
                out[(g * per + d, d) + centre] = 1.0
        return out
