"""Shared fixtures of the denoiser tests: a Gaussian model fitted to correlated data in 12 dimensions."""

import numpy as np
import torch

from hiddengauss.gaussian import fit_gaussian

D = 12


def fitted_gaussian():
    g = np.random.default_rng(0)
    a = g.normal(size=(D, D))
    x = g.multivariate_normal(g.normal(size=D) * 0.3, a @ a.T / D + 0.01 * np.eye(D), size=500)
    return fit_gaussian([x], (1, 3, 4))


def non_gaussian_inputs(n=300, seed=1):
    g = np.random.default_rng(seed)
    return torch.tensor(np.sign(g.normal(size=(n, D))) * g.exponential(size=(n, D)))  # heavy-tailed, bimodal


