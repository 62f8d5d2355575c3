"""Theory against Monte Carlo: a layer initialized by for_activation keeps the variance it should.

Forward: x = phi(z), z ~ N(0, 1) (q = 1); h = W x with W from ``for_activation(name)`` (mode fan_in). Theory:
E[h^2] = fan_in Var(w) E[phi(z)^2] = 1. Backward: delta ~ N(0, 1) at the layer's pre-activations,
g = W^T (delta phi'(z)), W from ``for_activation(name, mode="fan_out")``: E[g^2] = 1. Each replicate uses
fresh weights and inputs; the standard error comes from the spread of the replicates (they are iid), so the
tolerance of 5 standard errors does not rely on a guess about the correlations inside a replicate.
"""
import math

import numpy as np
import pytest

from varprop.activations import get as get_activation
from varprop.nn import init

REPLICATES, BATCH, FAN_IN, FAN_OUT = 24, 64, 256, 192


def _replicates(ini, phi, backward, seed):
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):            # small products: a second BLAS thread only spins on a busy machine
        return _replicates_serial(ini, phi, backward, seed)


def _replicates_serial(ini, phi, backward, seed):
    rng = np.random.default_rng(seed)
    out = []
    for r in range(REPLICATES):
        w = ini((FAN_OUT, FAN_IN), rng=seed * 1000 + r, dtype=np.float64)
        if backward:
            z = rng.standard_normal((BATCH, FAN_OUT))
            delta = rng.standard_normal((BATCH, FAN_OUT))
            g = (delta * phi.numpy_derivative(z)) @ w            # W^T applied to each row
            out.append(np.mean(g ** 2))
        else:
            x = phi.numpy(rng.standard_normal((BATCH, FAN_IN)))
            out.append(np.mean((x @ w.T) ** 2))
    m = np.array(out)
    return m.mean(), m.std(ddof=1) / math.sqrt(REPLICATES)


@pytest.mark.parametrize("name", ["relu", "tanh", "gelu", "silu", "mish", "selu", "elu", "softplus"])
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_exact_initializer_preserves_the_variance(name, backward):
    phi = get_activation(name)
    ini = init.for_activation(name, mode="fan_out" if backward else "fan_in")
    mean, se = _replicates(ini, phi, backward, seed=11)
    assert abs(mean - 1.0) < 5 * se


def test_pytorch_tanh_gain_is_detectably_off():
    # the same check fails for PyTorch's 5/3: its variance ratio (5/3)^2 / 1.5925^2 = 1.095 is far outside
    phi = get_activation("tanh")
    ini = init.get("he_normal", nonlinearity="tanh", gain="torch")
    mean, se = _replicates(ini, phi, False, seed=11)
    assert abs(mean - 1.0) > 5 * se
    assert mean == pytest.approx((5 / 3) ** 2 / init.activation_scale("tanh"), abs=5 * se)
