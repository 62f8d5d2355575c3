"""Image augmentation beyond shifts and flips: the affine warp checked against exact references (np.rot90,
integer shifts, bilinear interpolation of linear images, a lattice-preserving round trip), brightness,
contrast, cutout, reproducibility per (seed, epoch, step), test-time views, and the CLI options."""
import json

import numpy as np
import pytest

from varprop.cli import main
from varprop.nn import Trainer, build_mlp
from varprop.nn.augment import (Augment, affine, affine_matrices, brightness, contrast, cutout, rotate, shift,
                                tta_average)


def _imgs(n=4, h=8, w=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, h * w))


@pytest.mark.parametrize("h", [7, 8])
def test_rotation_by_zero_is_the_identity_and_a_quarter_turn_is_rot90(h):
    X = _imgs(h=h, w=h)
    assert np.array_equal(rotate(X, (h, h), 0.0), X)
    imgs = X.reshape(-1, h, h)
    for k in (1, 2, 3, -1):
        ref = np.rot90(imgs, k=k, axes=(1, 2)).reshape(len(X), -1)
        assert np.array_equal(rotate(X, (h, h), 90.0 * k), ref)


def test_integer_translation_is_the_shift_of_the_same_offset():
    X = _imgs()
    rng = np.random.default_rng(5)
    d = rng.integers(-2, 3, size=(len(X), 2))
    shifted = shift(X, (8, 8), np.random.default_rng(5), 2)     # draws the same offsets d
    assert np.array_equal(affine(X, (8, 8), np.eye(2), d.astype(float)), shifted)


def test_bilinear_warp_of_a_linear_image_is_exact_inside_the_frame():
    h, w = 9, 8
    rows, cols = np.mgrid[0:h, 0:w].astype(float)
    img = (0.7 * rows - 1.3 * cols + 2.0).reshape(1, -1)
    M = affine_matrices(1, rotate=17.0, zoom=1.15, shear=8.0)[0]
    t = np.array([0.3, -0.6])
    out = affine(img, (h, w), M, t).reshape(h, w)
    c = np.array([(h - 1) / 2, (w - 1) / 2])
    p = np.stack([rows.ravel(), cols.ravel()], axis=1)
    src = np.linalg.solve(M, (p - c - t).T).T + c          # the inverse map, solved independently
    inside = (src[:, 0] >= 0) & (src[:, 0] <= h - 1) & (src[:, 1] >= 0) & (src[:, 1] <= w - 1)
    assert inside.sum() > 30
    expect = 0.7 * src[:, 0] - 1.3 * src[:, 1] + 2.0
    np.testing.assert_allclose(out.ravel()[inside], expect[inside], rtol=0, atol=1e-12)


def test_outside_the_frame_reads_zero():
    X = np.ones((1, 64))
    out = affine(X, (8, 8), np.eye(2), [100.0, 0.0])
    assert np.array_equal(out, np.zeros_like(X))


def test_affine_round_trip_of_a_lattice_preserving_shear():
    h = 7
    X = _imgs(n=2, h=h, w=h)
    M = affine_matrices(1, shear=45.0)[0]                   # [[1, 0], [1, 1]]: pixel centres to pixel centres
    back = affine(affine(X, (h, h), M), (h, h), np.linalg.inv(M))
    u, v = np.mgrid[0:h, 0:h] - (h - 1) / 2
    kept = (np.abs(v + u) <= (h - 1) / 2).ravel()           # pixels whose sheared position stayed in the frame
    assert np.array_equal(back[:, kept], X[:, kept])
    assert np.all(back[:, ~kept] == 0)
    # and a quarter turn there and back
    assert np.array_equal(rotate(rotate(X, (h, h), 90.0), (h, h), -90.0), X)


def test_zoom_scales_about_the_centre():
    h = 9
    X = np.zeros((1, h * h))
    X[0, 4 * h + 5] = 1.0                                   # one pixel right of the centre (4, 4)
    out = affine(X, (h, h), affine_matrices(1, zoom=2.0)[0]).reshape(h, h)
    # output (4, x) reads the input at (4, 4 + (x - 4) / 2): the pixel lands 2 right, half of it 1 and 3 right
    assert out[4, 6] == 1.0 and out[4, 5] == 0.5 and out[4, 7] == 0.5 and out[4, 4] == 0.0
    assert out.sum() == pytest.approx(4.0)                  # the area grows by 2 x 2


def test_brightness_contrast_and_cutout():
    rng = np.random.default_rng(0)
    X = _imgs(n=50)
    b = brightness(X, np.random.default_rng(1), 0.3)
    delta = b - X
    assert np.allclose(delta, delta[:, :1]) and np.all(np.abs(delta) <= 0.3)
    c = contrast(X, np.random.default_rng(1), 0.5)
    np.testing.assert_allclose(c.mean(axis=1), X.mean(axis=1), atol=1e-12)
    k = (c - c.mean(1, keepdims=True)) / (X - X.mean(1, keepdims=True))
    assert np.allclose(k, k[:, :1]) and np.all((k > 0.5 - 1e-12) & (k < 1.5 + 1e-12))
    ones = np.ones((200, 64))
    cut = cutout(ones, (8, 8), rng, 3)
    zeros = (cut == 0).sum(axis=1)
    assert zeros.max() == 9 and zeros.min() >= 4 and np.all(zeros <= 9)


def test_augment_is_a_pure_function_of_seed_epoch_and_step():
    X = _imgs(n=16)
    opts = dict(rotate=15, zoom=0.2, shear=10, translate=1.0, brightness=0.1, contrast=0.2, cutout=2)
    a = Augment((8, 8), seed=3, **opts)
    x1, _ = a(X, None, epoch=2, step=5)
    x2, _ = Augment((8, 8), seed=3, **opts)(X, None, epoch=2, step=5)
    assert np.array_equal(x1, x2) and not np.array_equal(x1, X)
    assert not np.array_equal(x1, a(X, None, epoch=2, step=6)[0])
    assert not np.array_equal(x1, Augment((8, 8), seed=4, **opts)(X, None, epoch=2, step=5)[0])
    assert a.config()["rotate"] == 15 and a.config()["cutout"] == 2
    # an augmenter without the new transforms draws and records exactly what it did before
    old = Augment((8, 8), shift=1, noise=0.1, seed=3)
    assert set(old.config()) == {"shift", "flip", "noise", "mixup", "seed", "stream"}


def test_views_are_fixed_and_start_with_the_input():
    X = _imgs(n=5)
    a = Augment((8, 8), rotate=10, seed=1)
    v1, v2 = a.views(X, 4), a.views(X, 4)
    assert len(v1) == 4 and v1[0] is not None and np.array_equal(v1[0], X)
    assert all(np.array_equal(p, q) for p, q in zip(v1, v2))
    assert not np.array_equal(v1[1], v1[2])
    avg = tta_average(lambda v: v[:, :3], X, a, 4)
    np.testing.assert_allclose(avg, np.mean([v[:, :3] for v in v1], axis=0))


def test_trainer_predict_with_test_time_augmentation():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 16)).astype(np.float32)
    y = (X[:, :8].sum(1) > 0).astype(int)
    t = Trainer(build_mlp(16, [8], 2, seed=0), epochs=2, batch_size=16, progress=False)
    t.fit(X, y)
    a = Augment((4, 4), rotate=20, seed=0)
    assert np.array_equal(t.predict_output(X, tta=a, tta_views=1), t.predict_output(X).astype(np.float64))
    p = t.predict_output(X, tta=a, tta_views=3)
    ref = np.mean([t.predict_output(v) for v in a.views(X, 3)], axis=0)
    np.testing.assert_allclose(p, ref, rtol=1e-6)
    assert np.array_equal(t.predict(X, tta=a, tta_views=3), p.argmax(1))


@pytest.mark.parametrize("kw, what", [({"zoom": 1.0}, "zoom"), ({"rotate": -1}, "rotate"), ({"shear": 90}, "shear"),
                                      ({"cutout": 1.5}, "cutout"), ({"brightness": float("nan")}, "brightness")])
def test_bad_options_are_refused(kw, what):
    with pytest.raises(ValueError, match=what):
        Augment((8, 8), **kw)


def test_image_transforms_need_an_image_shape_and_views_a_count():
    with pytest.raises(ValueError, match="image"):
        Augment(None, rotate=5)
    Augment(None, brightness=0.1)          # brightness and contrast need no image shape
    with pytest.raises(ValueError, match="views"):
        Augment((8, 8), rotate=5).views(np.zeros((1, 64)), 0)
    with pytest.raises(ValueError, match="invertible"):
        affine(np.zeros((1, 64)), (8, 8), np.zeros((2, 2)))


def test_cli_augment_tta_and_resume(tmp_path, capsys):
    common = ["train", "--data", "digits", "--hidden", "16", "--batch-size", "64", "--augment", "--rotate", "10",
              "--zoom", "0.1", "--cutout", "2", "--preprocess", "standardize"]
    full, half, resumed, ck = (tmp_path / "full.json", tmp_path / "half.json", tmp_path / "res.json",
                               tmp_path / "ck.npz")
    assert main(common + ["--epochs", "2", "--tta", "3", "--json", str(full)]) == 0
    out = capsys.readouterr().out
    assert "test-time augmentation over 3 views" in out
    res = json.loads(full.read_text())
    assert res["config"]["rotate"] == 10 and res["config"]["cutout"] == 2 and 0 <= res["tta_test_acc"] <= 1
    assert main(common + ["--epochs", "1", "--checkpoint", str(ck), "--json", str(half)]) == 0
    assert main(common + ["--epochs", "2", "--resume", str(ck), "--json", str(resumed)]) == 0
    a, b = json.loads(full.read_text()), json.loads(resumed.read_text())
    assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]
    # resuming with other augmentation options is refused
    assert main(common[:-4] + ["--rotate", "20", "--preprocess", "standardize", "--epochs", "2",
                               "--resume", str(ck)]) == 2
    assert "augmentation" in capsys.readouterr().err


@pytest.mark.parametrize("args, what", [(["--rotate", "5"], "need --augment"), (["--zoom", "1", "--augment"], "--zoom"),
                                        (["--tta", "4"], "--tta needs"), (["--cutout", "-1"], "--cutout"),
                                        (["--augment", "--rotate", "x"], "--rotate must be a number")])
def test_cli_bad_augmentation_options_exit_2(args, what, capsys):
    assert main(["train", "--data", "digits", *args]) == 2
    err = capsys.readouterr().err
    assert what in err and err.count("\n") == 1


def test_cli_image_transforms_need_image_data(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(60, 5)), y=np.arange(60) % 3)
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--augment", "--rotate", "5", "--epochs", "1"]) == 2
    assert "image" in capsys.readouterr().err
