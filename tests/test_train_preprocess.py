"""Preprocessing fitted on the training split only, and augmentation reproducible from a seed."""
import numpy as np
import pytest

from varprop.nn import augment, preprocess


def _correlated(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    A = np.array([[2.0, 0.0, 0.0], [1.5, 0.5, 0.0], [0.3, -0.2, 0.1]])
    return rng.normal(size=(n, 3)) @ A.T + np.array([5.0, -1.0, 0.5])


def test_standardize_matches_the_lecture_recipe_and_uses_train_only():
    X = _correlated()
    train, test = X[:1500], X[1500:]
    p = preprocess.get("standardize").fit(train)
    want = (test - train.mean(axis=0)) / train.std(axis=0)  # statistics of the training split only
    np.testing.assert_allclose(p.transform(test), want, rtol=1e-12)
    Z = p.transform(train)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1, rtol=1e-12)


def test_center_and_constant_feature():
    X = np.array([[1.0, 7.0], [3.0, 7.0], [5.0, 7.0]])
    np.testing.assert_allclose(preprocess.get("center").fit_transform(X), [[-2, 0], [0, 0], [2, 0]])
    Z = preprocess.get("standardize").fit_transform(X)
    assert np.isfinite(Z).all() and (Z[:, 1] == 0).all()


def test_whitening_gives_identity_covariance():
    X = _correlated()
    eps = 1e-8
    w = preprocess.PCAWhiten(eps=eps).fit(X)
    Z = w.transform(X)
    cov = Z.T @ Z / len(Z)
    lam = w.eigenvalues_
    np.testing.assert_allclose(cov, np.diag(lam / (lam + eps)), atol=1e-9)
    assert np.all(np.diff(lam) <= 0)  # components ordered by variance
    # refitting gives the same signs and the same transform
    np.testing.assert_array_equal(preprocess.PCAWhiten(eps=eps).fit(X).transform(X), Z)


def test_whitening_reduces_dimension_and_keeps_dtype():
    X = _correlated().astype(np.float32)
    Z = preprocess.PCAWhiten(n_components=2).fit(X).transform(X)
    assert Z.shape == (2000, 2) and Z.dtype == np.float32


def test_preprocess_errors():
    with pytest.raises(ValueError, match="unknown preprocessing 'zca'"):
        preprocess.get("zca")
    p = preprocess.get("center").fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="shape mismatch: fitted on 2 features, got 3"):
        p.transform(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="call fit"):
        preprocess.get("standardize").transform(np.zeros((1, 3)))


def test_shift_moves_pixels_by_the_drawn_offsets():
    rng_seed = 4
    X = np.arange(2 * 25, dtype=np.float64).reshape(2, 25) + 1
    out = augment.shift(X, (5, 5), np.random.default_rng(rng_seed), max_shift=2)
    d = np.random.default_rng(rng_seed).integers(-2, 3, size=(2, 2))  # the same draws, replayed
    for i in range(2):
        img, got = X[i].reshape(5, 5), out[i].reshape(5, 5)
        dy, dx = d[i]
        for y in range(5):
            for x in range(5):
                sy, sx = y - dy, x - dx
                want = img[sy, sx] if 0 <= sy < 5 and 0 <= sx < 5 else 0.0
                assert got[y, x] == want


def test_flip_noise_and_mixup():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 12))
    f = augment.flip(X, (3, 4), np.random.default_rng(1), p=0.5)
    which = np.random.default_rng(1).random(400) < 0.5
    np.testing.assert_array_equal(f[which].reshape(-1, 3, 4), X[which].reshape(-1, 3, 4)[:, :, ::-1])
    np.testing.assert_array_equal(f[~which], X[~which])
    # noise: sample std of the added part within 5 standard errors of sigma (se = sigma / sqrt(2 N))
    n = augment.noise(X, np.random.default_rng(2), std=0.3) - X
    se = 0.3 / np.sqrt(2 * n.size)
    assert abs(n.std() - 0.3) < 5 * se
    Y = augment.one_hot(np.arange(400) % 3, 3)
    Xm, Ym = augment.mixup(X, Y, np.random.default_rng(3), alpha=0.4)
    g = np.random.default_rng(3)
    lam, perm = g.beta(0.4, 0.4), g.permutation(400)
    np.testing.assert_allclose(Xm, lam * X + (1 - lam) * X[perm])
    np.testing.assert_allclose(Ym.sum(axis=1), 1.0, rtol=1e-6)


def test_augment_is_reproducible_per_step_and_needs_image_shape():
    aug = augment.Augment((3, 4), shift=1, flip=0.5, noise=0.1, mixup=0.2, n_classes=3, seed=9)
    X = np.random.default_rng(0).normal(size=(16, 12)).astype(np.float32)
    y = np.arange(16) % 3
    a = aug(X, y, epoch=2, step=5)
    b = aug(X, y, epoch=2, step=5)
    c = aug(X, y, epoch=2, step=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert a[0].dtype == np.float32 and a[1].shape == (16, 3)
    with pytest.raises(ValueError, match="need image data"):
        augment.Augment(None, shift=2)
