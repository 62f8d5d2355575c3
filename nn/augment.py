"""Data augmentation for image data: random shifts, horizontal flips, Gaussian noise, and mixup.

Each function takes a batch ``X`` of flattened images (n, H*W) and a numpy ``Generator`` and returns a new
array (the input is never modified). ``Augment`` composes them and draws its randomness for the batch at
``(epoch, step)`` from ``default_rng([seed, epoch, step])`` (``[seed, stream, epoch, step]`` when a ``stream``
id is given, so two augmenters of one seed draw independently): the same seed gives the same augmented
batches, and a run resumed at any step sees exactly the batches it would have seen. Pass an ``Augment`` as
``Trainer(..., augment=...)`` to augment every training batch.

- shift: ``out[y, x] = img[y - dy, x - dx]`` (zero outside), ``dy, dx`` uniform integers in [-s, s];
- flip: ``out[y, x] = img[y, W - 1 - x]`` with probability p (use only where mirror images keep the class);
- noise: ``x + sigma * z``, z ~ N(0, 1);
- mixup (Zhang, Cisse, Dauphin & Lopez-Paz 2018): ``lam ~ Beta(a, a)``, ``x = lam x_i + (1 - lam) x_j`` for a
  random pairing j = perm(i), with the loss ``lam L(y_i) + (1 - lam) L(y_j)`` (one-hot targets mix alike).

>>> import numpy as np
>>> img = np.arange(9.0).reshape(1, 9)
>>> flip(img, (3, 3), np.random.default_rng(0), p=1.0).reshape(3, 3)[0].tolist()
[2.0, 1.0, 0.0]
"""
from __future__ import annotations

import numpy as np

__all__ = ["shift", "flip", "noise", "mixup", "one_hot", "Augment"]


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


class Augment:
    """Shift, flip, noise and mixup composed in that order, reproducible from ``seed``.

    ``aug(X, Y, epoch, step) -> (X', Y')``: ``Y`` may be integer labels (returned unchanged unless mixup is
    on) or one-hot targets; with mixup, integer labels need ``n_classes`` and come back one-hot.

    >>> import numpy as np
    >>> aug = Augment((2, 2), noise=0.5, seed=1)
    >>> X = np.zeros((3, 4))
    >>> a, _ = aug(X, np.zeros(3, int), epoch=0, step=4)
    >>> b, _ = aug(X, np.zeros(3, int), epoch=0, step=4)
    >>> bool((a == b).all()) and a.shape == (3, 4)
    True
    """

    def __init__(self, image_shape=None, shift: int = 0, flip: float = 0.0, noise: float = 0.0,
                 mixup: float = 0.0, n_classes: int | None = None, seed: int = 0, stream: int | None = None):
        if (shift or flip) and image_shape is None:
            raise ValueError("augment: shifts and flips need image data (a dataset with an image shape)")
        if shift < 0 or not 0.0 <= flip <= 1.0 or noise < 0 or mixup < 0:
            raise ValueError("augment: shift, noise and mixup must be >= 0 and flip a probability in [0, 1]")
        self.image_shape = None if image_shape is None else tuple(int(s) for s in image_shape)
        self.shift, self.flip, self.noise, self.mixup = int(shift), float(flip), float(noise), float(mixup)
        self.n_classes = n_classes
        self.seed = int(seed)
        self.stream = None if stream is None else int(stream)

    @property
    def active(self) -> bool:
        return bool(self.shift or self.flip or self.noise or self.mixup)

    def rng(self, epoch: int, step: int) -> np.random.Generator:
        ids = [self.seed, int(epoch), int(step)] if self.stream is None else [self.seed, self.stream,
                                                                              int(epoch), int(step)]
        return np.random.default_rng(ids)

    def __call__(self, X, Y, epoch: int = 0, step: int = 0):
        rng = self.rng(epoch, step)
        if self.shift:
            X = shift(X, self.image_shape, rng, self.shift)
        if self.flip:
            X = flip(X, self.image_shape, rng, self.flip)
        if self.noise:
            X = noise(X, rng, self.noise)
        if self.mixup:
            Y = np.asarray(Y)
            if Y.ndim == 1:
                if self.n_classes is None:
                    raise ValueError("augment: mixup of integer labels needs n_classes")
                Y = one_hot(Y, self.n_classes, dtype=np.asarray(X).dtype)
            X, Y = mixup(X, Y, rng, self.mixup)
        return X, Y

    def config(self) -> dict:
        return {"shift": self.shift, "flip": self.flip, "noise": self.noise, "mixup": self.mixup, "seed": self.seed,
                "stream": self.stream}
