"""The public face of the data / estimator side of varprop.nn: lazy names and light imports."""
import subprocess
import sys

import numpy as np


def test_lazy_names_resolve_to_their_modules():
    import varprop.nn as nn
    from varprop.nn import data, estimator
    assert nn.MLPClassifier is estimator.MLPClassifier and nn.MLPRegressor is estimator.MLPRegressor
    assert nn.load is data.load and nn.read_idx is data.read_idx
    assert nn.preprocess.get("standardize").name == "standardize"
    assert nn.augment.Augment((2, 2)).active is False


def test_data_preprocess_augment_and_cli_module_import_light():
    code = ("import sys, varprop.nn.data, varprop.nn.preprocess, varprop.nn.augment, varprop.cli.train; "
            "print(sorted(m for m in ('sklearn', 'torch', 'mnist1d', 'sympy', 'matplotlib', 'numba') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_end_to_end_library_route_matches_the_estimator():
    """data.load -> preprocess -> MLPClassifier: the documented pipeline runs and beats chance clearly."""
    from varprop.nn import MLPClassifier, load, preprocess
    ds = load("digits", seed=1)
    prep = preprocess.get("standardize").fit(ds.X_train)
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=15, batch_size=64, random_state=0)
    clf.fit(prep.transform(ds.X_train), ds.y_train)
    acc = clf.score(prep.transform(ds.X_test), ds.y_test)
    # chance is 0.1; with 360 test images the binomial standard error is below 0.03
    assert acc > 0.85, acc
    assert clf.network_.dtype == np.float32  # the loaders hand out float32, and it stays float32
