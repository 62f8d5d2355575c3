"""Central differences of a loss with respect to the network's outputs, for the losses' gradient tests."""
import numpy as np


def loss_output_gradient(loss, out, y, eps=1e-6):
    """d loss.forward(out, y) / d out, entry by entry, by central differences (float64 ``out``)."""
    num = np.zeros_like(out)
    for idx in np.ndindex(out.shape):
        o = out.copy()
        o[idx] += eps
        up = loss.forward(o, y)
        o[idx] -= 2 * eps
        num[idx] = (up - loss.forward(o, y)) / (2 * eps)
    return num
