"""Data augmentation for image data: shifts, flips, affine warps, brightness/contrast, cutout, noise, mixup.

Each function takes a batch ``X`` of flattened images (n, H*W) and a numpy ``Generator`` and returns a new
array (the input is never modified). ``Augment`` composes them and draws its randomness for the batch at
``(epoch, step)`` from ``default_rng([seed, epoch, step])`` (``[seed, stream, epoch, step]`` when a ``stream``
id is given, so two augmenters of one seed draw independently): the same seed gives the same augmented
batches, and a run resumed at any step sees exactly the batches it would have seen. Pass an ``Augment`` as
``Trainer(..., augment=...)`` to augment every training batch.

- shift: ``out[y, x] = img[y - dy, x - dx]`` (zero outside), ``dy, dx`` uniform integers in [-s, s];
- flip: ``out[y, x] = img[y, W - 1 - x]`` with probability p (use only where mirror images keep the class);
- affine (rotation, zoom, shear, sub-pixel translation): an exact bilinear resampling about the image
  centre c = ((H-1)/2, (W-1)/2). In (row, column) coordinates the forward map is p' = M (p - c) + c + t with
  M = R(theta) Sh(phi) s, R(theta) = [[cos, -sin], [sin, cos]] (theta > 0 turns the image as ``np.rot90``
  does), Sh(phi) = [[1, 0], [tan phi, 1]], s the zoom factor; each output pixel p reads the input at
  M^-1 (p - c - t) + c, bilinear between its four neighbours, zero outside the image. theta ~ U(-r, r)
  degrees, s ~ U(1 - z, 1 + z), phi ~ U(-h, h) degrees, t ~ U(-d, d)^2 pixels, each per image;
- brightness: ``x + b``, b ~ U(-beta, beta) per image; contrast: ``m + k (x - m)`` with m the image's mean,
  k ~ U(1 - gamma, 1 + gamma) per image;
- cutout (DeVries & Taylor 2017): a k x k square at a uniform random centre (it may overhang the edge) set
  to 0;
- noise: ``x + sigma * z``, z ~ N(0, 1);
- mixup (Zhang, Cisse, Dauphin & Lopez-Paz 2018): ``lam ~ Beta(a, a)``, ``x = lam x_i + (1 - lam) x_j`` for a
  random pairing j = perm(i), with the loss ``lam L(y_i) + (1 - lam) L(y_j)`` (one-hot targets mix alike).

Test-time augmentation: :meth:`Augment.views` gives a fixed set of augmented copies of a test set (view 0 is
the input itself, view v > 0 is drawn from ``[seed, TTA_STREAM, v]``), and :func:`tta_average` averages a
predictor's class probabilities over them.

>>> import numpy as np
>>> img = np.arange(9.0).reshape(1, 9)
>>> flip(img, (3, 3), np.random.default_rng(0), p=1.0).reshape(3, 3)[0].tolist()
[2.0, 1.0, 0.0]
"""
from __future__ import annotations

import numpy as np

__all__ = ["shift", "flip", "affine", "affine_matrices", "rotate", "brightness", "contrast", "cutout", "noise",
           "mixup", "one_hot", "Augment", "tta_average", "TTA_STREAM"]

TTA_STREAM = 2 ** 31 - 7    # the stream id of test-time views (training augmenters use small ids or none)


def _images(X, image_shape):
    X = np.asarray(X)
    h, w = (int(s) for s in image_shape)
    if X.ndim != 2 or X.shape[1] != h * w:
        raise ValueError(f"augment: expected images flattened to {h}*{w} = {h * w} features, got shape {X.shape}")
    return X.reshape(len(X), h, w), h, w


def shift(X, image_shape, rng, max_shift: int = 2):
    """Shift each image by independent integer offsets in [-max_shift, max_shift] along both axes."""
    imgs, h, w = _images(X, image_shape)
    m = int(max_shift)
    if m < 0:
        raise ValueError(f"augment: max_shift must be >= 0, got {max_shift}")
    if m == 0 or len(imgs) == 0:
        return np.array(X, copy=True)
    d = rng.integers(-m, m + 1, size=(len(imgs), 2))
    padded = np.pad(imgs, ((0, 0), (m, m), (m, m)))
    rows = np.arange(h)[None, :] - d[:, :1] + m
    cols = np.arange(w)[None, :] - d[:, 1:] + m
    out = padded[np.arange(len(imgs))[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.reshape(len(imgs), h * w)


def flip(X, image_shape, rng, p: float = 0.5):
    """Mirror each image left-right with probability ``p``."""
    imgs, h, w = _images(X, image_shape)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"augment: flip probability must be in [0, 1], got {p}")
    out = imgs.copy()
    which = rng.random(len(imgs)) < p
    out[which] = out[which, :, ::-1]
    return out.reshape(len(imgs), h * w)


def affine_matrices(n: int, rotate=0.0, zoom=1.0, shear=0.0) -> np.ndarray:
    """The forward matrices M = R(rotate) Sh(shear) zoom, shape (n, 2, 2), angles in degrees (scalars or (n,))."""
    th = np.deg2rad(np.broadcast_to(np.asarray(rotate, np.float64), (n,)))
    ph = np.deg2rad(np.broadcast_to(np.asarray(shear, np.float64), (n,)))
    s = np.broadcast_to(np.asarray(zoom, np.float64), (n,))
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("augment: zoom factors must be positive and finite")
    if np.any(np.abs(ph) >= np.pi / 2):
        raise ValueError("augment: shear angles must be within (-90, 90) degrees")
    c, si, t = np.cos(th), np.sin(th), np.tan(ph)
    m = np.empty((n, 2, 2))
    # R @ [[1, 0], [t, 1]] scaled by s
    m[:, 0, 0] = (c - si * t) * s
    m[:, 0, 1] = -si * s
    m[:, 1, 0] = (si + c * t) * s
    m[:, 1, 1] = c * s
    return m


def affine(X, image_shape, matrix, offset=None):
    """Warp each image by p' = M (p - c) + c + t (see the module docstring), bilinear, zero outside.

    ``matrix``: (2, 2) or (n, 2, 2), the forward map in (row, column) coordinates; ``offset``: (2,) or
    (n, 2) pixels (default none). Sampling positions within 1e-9 of a pixel centre are snapped to it, so
    a map that sends pixel centres to pixel centres (a quarter turn, an integer translation) moves pixels
    exactly.
    """
    imgs, h, w = _images(X, image_shape)
    n = len(imgs)
    M = np.broadcast_to(np.asarray(matrix, np.float64), (n, 2, 2))
    t = np.zeros((n, 2)) if offset is None else np.broadcast_to(np.asarray(offset, np.float64), (n, 2))
    if not (np.all(np.isfinite(M)) and np.all(np.isfinite(t))):
        raise ValueError("augment: the affine matrix and offset must be finite")
    det = M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] * M[:, 1, 0]
    if np.any(np.abs(det) < 1e-12):
        raise ValueError("augment: the affine matrix must be invertible")
    inv = np.empty_like(M)
    inv[:, 0, 0], inv[:, 1, 1] = M[:, 1, 1] / det, M[:, 0, 0] / det
    inv[:, 0, 1], inv[:, 1, 0] = -M[:, 0, 1] / det, -M[:, 1, 0] / det
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    u = np.arange(h, dtype=np.float64)[None, :, None] - cy - t[:, 0, None, None]
    v = np.arange(w, dtype=np.float64)[None, None, :] - cx - t[:, 1, None, None]
    sy = inv[:, 0, 0, None, None] * u + inv[:, 0, 1, None, None] * v + cy
    sx = inv[:, 1, 0, None, None] * u + inv[:, 1, 1, None, None] * v + cx
    for a in (sy, sx):
        r = np.round(a)
        near = np.abs(a - r) < 1e-9
        a[near] = r[near]
    y0, x0 = np.floor(sy), np.floor(sx)
    fy, fx = sy - y0, sx - x0
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    src = imgs.astype(np.float64, copy=False)
    k = np.arange(n)[:, None, None]

    def at(yi, xi):
        ok = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        return np.where(ok, src[k, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)], 0.0)

    out = ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
           + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))
    dtype = np.asarray(X).dtype if np.asarray(X).dtype.kind == "f" else np.float64
    return out.reshape(n, h * w).astype(dtype, copy=False)


def rotate(X, image_shape, degrees):
    """Rotate every image by ``degrees`` about its centre (counterclockwise, as ``np.rot90``)."""
    return affine(X, image_shape, affine_matrices(len(np.asarray(X)), rotate=degrees))


def brightness(X, rng, max_delta: float = 0.1):
    """Add b ~ U(-max_delta, max_delta) to each image."""
    X = np.asarray(X)
    b = rng.uniform(-max_delta, max_delta, size=(len(X), 1))
    return (X + b).astype(X.dtype if X.dtype.kind == "f" else np.float64, copy=False)


def contrast(X, rng, max_factor: float = 0.2):
    """Scale each image's deviations from its mean by k ~ U(1 - max_factor, 1 + max_factor)."""
    X = np.asarray(X)
    k = rng.uniform(1 - max_factor, 1 + max_factor, size=(len(X), 1))
    m = X.mean(axis=1, keepdims=True)
    return (m + k * (X - m)).astype(X.dtype if X.dtype.kind == "f" else np.float64, copy=False)


def cutout(X, image_shape, rng, size: int = 2):
    """Zero a ``size`` x ``size`` square at a uniform random centre of each image (it may overhang the edge)."""
    imgs, h, w = _images(X, image_shape)
    k = int(size)
    if k < 0:
        raise ValueError(f"augment: cutout size must be >= 0, got {size}")
    out = imgs.copy()
    if k == 0 or len(imgs) == 0:
        return out.reshape(len(imgs), h * w)
    cy = rng.integers(0, h, size=len(imgs))
    cx = rng.integers(0, w, size=len(imgs))
    y0, x0 = cy - k // 2, cx - k // 2
    rows = np.arange(h)[None, :]
    cols = np.arange(w)[None, :]
    in_r = (rows >= y0[:, None]) & (rows < y0[:, None] + k)
    in_c = (cols >= x0[:, None]) & (cols < x0[:, None] + k)
    out[in_r[:, :, None] & in_c[:, None, :]] = 0
    return out.reshape(len(imgs), h * w)


def noise(X, rng, std: float = 0.1):
    """Add Gaussian noise of standard deviation ``std`` (in the input's dtype)."""
    if not std >= 0:
        raise ValueError(f"augment: noise std must be >= 0, got {std}")
    X = np.asarray(X)
    return (X + std * rng.standard_normal(X.shape)).astype(X.dtype, copy=False)


def one_hot(y, n_classes: int, dtype=np.float32):
    """Integer labels -> one-hot rows."""
    y = np.asarray(y)
    out = np.zeros((len(y), int(n_classes)), dtype=dtype)
    out[np.arange(len(y)), y] = 1
    return out


def mixup(X, Y, rng, alpha: float = 0.2):
    """Mix each example with a random partner: ``(lam X + (1-lam) X[perm], lam Y + (1-lam) Y[perm])``.

    ``Y`` holds one-hot (or soft) targets of shape (n, K); one ``lam ~ Beta(alpha, alpha)`` per batch.
    """
    if not alpha > 0:
        raise ValueError(f"augment: mixup alpha must be > 0, got {alpha}")
    X, Y = np.asarray(X), np.asarray(Y)
    lam = rng.beta(alpha, alpha)
    perm = rng.permutation(len(X))
    Xm = (lam * X + (1 - lam) * X[perm]).astype(X.dtype, copy=False)
    Ym = (lam * Y + (1 - lam) * Y[perm]).astype(Y.dtype, copy=False)
    return Xm, Ym


_GEOMETRIC = ("rotate", "zoom", "shear", "translate")
_EXTRA = _GEOMETRIC + ("brightness", "contrast", "cutout")


class Augment:
    """Shift, flip, affine warp, brightness, contrast, cutout, noise and mixup composed in that order,
    reproducible from ``seed``.

    ``aug(X, Y, epoch, step) -> (X', Y')``: ``Y`` may be integer labels (returned unchanged unless mixup is
    on) or one-hot targets; with mixup, integer labels need ``n_classes`` and come back one-hot.
    ``rotate``/``shear`` are maximal angles in degrees, ``zoom`` the maximal relative change of scale (in
    [0, 1)), ``translate`` the maximal sub-pixel offset, ``brightness``/``contrast`` the half-widths of their
    uniform draws, ``cutout`` the side of the square zeroed. A step draws only for the transforms switched
    on, so turning a new one off gives back the batches of the augmenter without it.

    >>> import numpy as np
    >>> aug = Augment((2, 2), noise=0.5, seed=1)
    >>> X = np.zeros((3, 4))
    >>> a, _ = aug(X, np.zeros(3, int), epoch=0, step=4)
    >>> b, _ = aug(X, np.zeros(3, int), epoch=0, step=4)
    >>> bool((a == b).all()) and a.shape == (3, 4)
    True
    """

    def __init__(self, image_shape=None, shift: int = 0, flip: float = 0.0, noise: float = 0.0,
                 mixup: float = 0.0, n_classes: int | None = None, seed: int = 0, stream: int | None = None, *,
                 rotate: float = 0.0, zoom: float = 0.0, shear: float = 0.0, translate: float = 0.0,
                 brightness: float = 0.0, contrast: float = 0.0, cutout: int = 0):
        extra = {"rotate": rotate, "zoom": zoom, "shear": shear, "translate": translate,
                 "brightness": brightness, "contrast": contrast, "cutout": cutout}
        for name, val in extra.items():
            if isinstance(val, bool) or not isinstance(val, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(val) or val < 0:
                raise ValueError(f"augment: {name} must be a finite number >= 0, got {val!r}")
        if zoom >= 1:
            raise ValueError(f"augment: zoom must be in [0, 1) (scales within 1 -/+ zoom), got {zoom}")
        if shear >= 90:
            raise ValueError(f"augment: shear must be below 90 degrees, got {shear}")
        if isinstance(cutout, float) and not float(cutout).is_integer():
            raise ValueError(f"augment: cutout is a square's side in pixels, an integer, got {cutout}")
        needs_image = bool(shift or flip or any(extra[k] for k in _GEOMETRIC + ("cutout",)))
        if needs_image and image_shape is None:
            raise ValueError("augment: shifts, flips, rotations, zoom, shear, translations and cutout need image data "
                             "(a dataset with an image shape)")
        if shift < 0 or not 0.0 <= flip <= 1.0 or noise < 0 or mixup < 0:
            raise ValueError("augment: shift, noise and mixup must be >= 0 and flip a probability in [0, 1]")
        self.image_shape = None if image_shape is None else tuple(int(s) for s in image_shape)
        self.shift, self.flip, self.noise, self.mixup = int(shift), float(flip), float(noise), float(mixup)
        self.rotate, self.zoom, self.shear, self.translate = float(rotate), float(zoom), float(shear), float(translate)
        self.brightness, self.contrast, self.cutout = float(brightness), float(contrast), int(cutout)
        self.n_classes = n_classes
        self.seed = int(seed)
        self.stream = None if stream is None else int(stream)

    @property
    def active(self) -> bool:
        return bool(self.shift or self.flip or self.noise or self.mixup or any(getattr(self, k) for k in _EXTRA))

    def rng(self, epoch: int, step: int) -> np.random.Generator:
        ids = [self.seed, int(epoch), int(step)] if self.stream is None else [self.seed, self.stream,
                                                                              int(epoch), int(step)]
        return np.random.default_rng(ids)

    def _inputs(self, X, rng):
        """Every transform but mixup, drawing from ``rng`` in the documented order."""
        if self.shift:
            X = shift(X, self.image_shape, rng, self.shift)
        if self.flip:
            X = flip(X, self.image_shape, rng, self.flip)
        if any(getattr(self, k) for k in _GEOMETRIC):
            n = len(np.asarray(X))
            th = rng.uniform(-self.rotate, self.rotate, n) if self.rotate else 0.0
            s = rng.uniform(1 - self.zoom, 1 + self.zoom, n) if self.zoom else 1.0
            ph = rng.uniform(-self.shear, self.shear, n) if self.shear else 0.0
            t = rng.uniform(-self.translate, self.translate, (n, 2)) if self.translate else None
            X = affine(X, self.image_shape, affine_matrices(n, th, s, ph), t)
        if self.brightness:
            X = brightness(X, rng, self.brightness)
        if self.contrast:
            X = contrast(X, rng, self.contrast)
        if self.cutout:
            X = cutout(X, self.image_shape, rng, self.cutout)
        if self.noise:
            X = noise(X, rng, self.noise)
        return X

    def __call__(self, X, Y, epoch: int = 0, step: int = 0):
        rng = self.rng(epoch, step)
        X = self._inputs(X, rng)
        if self.mixup:
            Y = np.asarray(Y)
            if Y.ndim == 1:
                if self.n_classes is None:
                    raise ValueError("augment: mixup of integer labels needs n_classes")
                Y = one_hot(Y, self.n_classes, dtype=np.asarray(X).dtype)
            X, Y = mixup(X, Y, rng, self.mixup)
        return X, Y

    def views(self, X, n_views: int) -> list:
        """``n_views`` copies of ``X`` for test-time augmentation: the input itself, then views 1.. drawn
        from ``[seed, TTA_STREAM, v]`` (mixup, which needs labels, is left out). The same for every call."""
        if isinstance(n_views, bool) or not isinstance(n_views, (int, np.integer)) or n_views < 1:
            raise ValueError(f"augment: the number of test-time views must be a positive integer, got {n_views!r}")
        X = np.asarray(X)
        out = [X]
        for v in range(1, int(n_views)):
            out.append(self._inputs(X, np.random.default_rng([self.seed, TTA_STREAM, v])))
        return out

    def config(self) -> dict:
        cfg = {"shift": self.shift, "flip": self.flip, "noise": self.noise, "mixup": self.mixup, "seed": self.seed,
               "stream": self.stream}
        cfg.update({k: getattr(self, k) for k in _EXTRA if getattr(self, k)})   # old configs read the same
        return cfg


def tta_average(predict_proba, X, augment, n_views: int, transform=None) -> np.ndarray:
    """The mean of ``predict_proba(view)`` over ``augment.views(X, n_views)`` (test-time augmentation).

    ``transform`` (e.g. a fitted preprocessing) is applied to each view before predicting, for
    augmenters that act on the images as loaded.
    """
    if not callable(getattr(augment, "views", None)):
        raise TypeError(f"test-time augmentation needs an Augment (with views), got {type(augment).__name__}")
    total = None
    for view in augment.views(X, n_views):
        p = np.asarray(predict_proba(view if transform is None else transform(view)), dtype=np.float64)
        total = p if total is None else total + p
    return total / n_views
