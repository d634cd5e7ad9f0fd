"""Distances between two sets of images, offline (no downloaded feature network): every metric
works on flattened pixels (or any other coordinates the caller passes, e.g. the Gaussian model's
whitened ones), each with a bootstrap interval over the images of both sets.

- :func:`frechet_distance`: Fréchet distance between the two sets' Gaussians. In pixel space it
  sees only means and covariances, so samples of the Gaussian model score near zero against the
  data by construction: it cannot stand alone.
- :func:`kernel_distance`: unbiased squared MMD with the cubic polynomial kernel (KID).
- :func:`prdc`: k-nearest-neighbour precision, recall, density and coverage.
- :class:`PatchSWD`: sliced Wasserstein distance (:func:`sliced_wasserstein`) between
  Laplacian-pyramid patches, which sees more than second moments.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .inference import bootstrap_weights, interval, item_rng


def _rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(len(x), -1).to(torch.float64)


def _centred(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, rows minus the mean over √(n − 1)): AᵀA is the unbiased covariance."""
    mu = x.mean(0)
    return mu, (x - mu) / max(len(x) - 1, 1) ** 0.5


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FD(a, b) = ‖μ_a − μ_b‖² + tr Σ_a + tr Σ_b − 2 tr (Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2}, the
    2-Wasserstein distance² between the Gaussians of the two sets' means and unbiased covariances.

    With Σ_a = AᵀA and Σ_b = BᵀB (centred, scaled rows), the trace term is the nuclear norm ‖A Bᵀ‖_*
    (the eigenvalues of Σ_a^{1/2} Σ_b Σ_a^{1/2} are the squared singular values of A Bᵀ); it is
    taken in whichever of the d×d and n_a×n_b forms is smaller."""
    a, b = _rows(a), _rows(b)
    mu_a, A = _centred(a)
    mu_b, B = _centred(b)
    if a.shape[1] <= min(len(a), len(b)):
        lam, v = torch.linalg.eigh(A.T @ A)
        root = (v * lam.clamp_min(0).sqrt()) @ v.T
        cross = torch.linalg.eigvalsh(root @ (B.T @ B) @ root).clamp_min(0).sqrt().sum()
    else:
        cross = torch.linalg.svdvals(A @ B.T).sum()
    return float((mu_a - mu_b).square().sum() + A.square().sum() + B.square().sum() - 2 * cross)


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (xᵀy / d + 1)³, the kernel of KID (Bińkowski et al. 2018)."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def _u_mean(k: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Σ_{i≠j} w_i w_j k_ij / Σ_{i≠j} w_i w_j for each row of weights ``w`` (R, n): the U-statistic
    mean of a kernel matrix over distinct original images, so bootstrap duplicates never pair with
    themselves."""
    num = ((w @ k) * w).sum(-1) - (w.square() * k.diagonal()).sum(-1)
    return num / (w.sum(-1).square() - w.square().sum(-1))


def kernel_distance(a: torch.Tensor, b: torch.Tensor, wa=None, wb=None) -> torch.Tensor | float:
    """KID = MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(a_i, a_j) + 1/(n(n−1)) Σ_{i≠j} k(b_i, b_j) − 2/(mn) Σ_ij k(a_i, b_j),
    the unbiased squared maximum mean discrepancy with :func:`polynomial_kernel` (zero in
    expectation for two samples of one distribution). ``wa`` (R, m) / ``wb`` (R, n): bootstrap
    counts, giving R weighted U-statistics at once (the same-set sums over distinct images)."""
    a, b = _rows(a), _rows(b)
    single = wa is None
    wa = torch.ones(1, len(a), dtype=a.dtype) if wa is None else torch.as_tensor(wa, dtype=a.dtype).reshape(-1, len(a))
    wb = torch.ones(1, len(b), dtype=b.dtype) if wb is None else torch.as_tensor(wb, dtype=b.dtype).reshape(-1, len(b))
    cross = ((wa @ polynomial_kernel(a, b)) * wb).sum(-1) / (wa.sum(-1) * wb.sum(-1))
    out = _u_mean(polynomial_kernel(a, a), wa) + _u_mean(polynomial_kernel(b, b), wb) - 2 * cross
    return float(out[0]) if single else out


def _kth_neighbour_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row of x to its k-th nearest other row of x."""
    d = torch.cdist(x, x)
    return d.topk(k + 1, dim=1, largest=False).values[:, k]


def prdc_items(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, np.ndarray]:
    """Per-image terms of :func:`prdc`: over the fake images, ``precision`` (in some real ball) and
    ``density`` (how many real balls hold it, over k); over the real images, ``recall`` (in some
    fake ball) and ``coverage`` (its ball holds a fake)."""
    real, fake = _rows(real), _rows(fake)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"prdc needs more than k = {k} images in each set, got {len(real)} and {len(fake)}")
    r_real, r_fake = _kth_neighbour_radius(real, k), _kth_neighbour_radius(fake, k)
    d = torch.cdist(real, fake)  # (N, M)
    inside_real = d <= r_real[:, None]  # fake j in the ball of real i
    items = {
        "precision": inside_real.any(0),
        "density": inside_real.sum(0) / k,
        "recall": (d <= r_fake[None, :]).any(1),
        "coverage": inside_real.any(1),
    }
    return {name: v.double().numpy() for name, v in items.items()}


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """k-NN precision, recall, density and coverage (Kynkäänniemi et al. 2019; Naeem et al. 2020),
    with B(x, r_k(x)) the ball around x of radius its k-th nearest-neighbour distance in its own set:
    precision = frac. of fake y in ∪_i B(real_i); recall = frac. of real x in ∪_j B(fake_j);
    density = 1/(kM) Σ_j Σ_i 1[fake_j ∈ B(real_i)]; coverage = frac. of real_i whose ball holds a fake."""
    return {name: float(v.mean()) for name, v in prdc_items(real, fake, k).items()}


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels of (B, C, H, W) images, finest first: L_l = G_l − up(G_{l+1}) with
    G_{l+1} = down(G_l) (2×2 average pooling, nearest-neighbour upsampling), the coarsest level the
    last Gaussian level itself; stops when a side would drop below 2."""
    out, g = [], images.to(torch.float64)
    for _ in range(levels - 1):
        if min(g.shape[-2:]) < 4:
            break
        small = F.avg_pool2d(g, 2)
        out.append(g - F.interpolate(small, size=g.shape[-2:], mode="nearest"))
        g = small
    return out + [g]


def pyramid_patches(images: torch.Tensor, patch: int, per_image: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Per pyramid level, (B, n, C·p²) patch×patch crops of each image (p capped at the level's
    side): every position when the level has at most ``per_image`` of them (small images), else
    ``per_image`` random positions per image."""
    out = []
    for level in laplacian_pyramid(images, levels=8):
        b, c, h, w = level.shape
        p = min(patch, h, w)
        if (h - p + 1) * (w - p + 1) <= per_image:
            out.append(F.unfold(level, p).transpose(1, 2))  # (B, positions, C·p²)
            continue
        ys = torch.randint(0, h - p + 1, (b, per_image), generator=generator)
        xs = torch.randint(0, w - p + 1, (b, per_image), generator=generator)
        rows = torch.arange(p)[None, None, :, None] + ys[..., None, None]
        cols = torch.arange(p)[None, None, None, :] + xs[..., None, None]
        crops = level[torch.arange(b)[:, None, None, None], :, rows, cols]  # (B, per, p, p, C)
        out.append(crops.permute(0, 1, 4, 2, 3).reshape(b, per_image, -1))
    return out


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, theta: torch.Tensor, wa: torch.Tensor | None = None,
                       wb: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """SW₁(a, b) = mean_θ W₁(θᵀa, θᵀb) over the unit columns θ of ``theta``, for R weightings of
    the rows at once (``wa`` (R, n_a), ``wb`` (R, n_b); default one weighting, all ones): with the
    projections of both sets sorted together, u_(1) ≤ … ≤ u_(n), W₁ = Σ_k |F_a(u_(k)) − F_b(u_(k))|
    (u_(k+1) − u_(k)), F the weighted empirical CDFs. Returns (R,)."""
    wa = torch.ones(1, len(a), dtype=a.dtype) if wa is None else wa.to(a.dtype)
    wb = torch.ones(1, len(b), dtype=b.dtype) if wb is None else wb.to(b.dtype)
    u = torch.cat([a, b]) @ theta  # (n, P)
    su, order = u.sort(0)
    gaps = su[1:] - su[:-1]  # (n − 1, P)
    signed = torch.cat([wa / wa.sum(1, keepdim=True), -wb / wb.sum(1, keepdim=True)], 1)  # (R, n)
    total = torch.zeros(len(signed), dtype=a.dtype)
    for j in range(theta.shape[1]):
        cdf_gap = signed[:, order[:, j]].cumsum(1)[:, :-1]  # F_a − F_b between consecutive points
        total += cdf_gap.abs() @ gaps[:, j]
    return total / theta.shape[1]


class PatchSWD:
    """Patch sliced Wasserstein distance between two image sets (after Karras et al. 2018): per
    Laplacian-pyramid level, patches of every image (:func:`pyramid_patches`), normalised per
    channel by the mean and std of both sets' patches together (Karras et al. normalise each set
    by its own, which hides a shift of the patch statistics), then :func:`sliced_wasserstein` over
    ``projections`` random directions; the value is the mean over levels, ×10³. ``value(wa, wb)``
    recomputes it for image weights (R, n_a) and (R, n_b), each patch weighted as its image, with
    the same patches and directions."""

    def __init__(self, a, b, image_shape, patch: int = 7, per_image: int = 16, projections: int = 128,
                 seed: int = 0) -> None:  # fmt: skip
        g = torch.Generator().manual_seed(seed)
        self.levels, self.theta = [], []
        c = image_shape[0]
        pa = pyramid_patches(a.reshape(len(a), *image_shape), patch, per_image, g)
        pb = pyramid_patches(b.reshape(len(b), *image_shape), patch, per_image, g)
        for xa, xb in zip(pa, pb):
            xa, xb = (x.reshape(*x.shape[:2], c, -1) for x in (xa, xb))  # (B, per, C, p²)
            both = torch.cat([xa, xb])
            mu, sd = both.mean((0, 1, 3), keepdim=True), both.std((0, 1, 3), keepdim=True).clamp_min(1e-12)
            self.levels.append(tuple(((x - mu) / sd).flatten(2) for x in (xa, xb)))
            theta = torch.randn(self.levels[-1][0].shape[-1], projections, generator=g, dtype=torch.float64)
            self.theta.append(theta / theta.norm(dim=0, keepdim=True))
        self.n = (len(a), len(b))

    def value(self, wa=None, wb=None) -> torch.Tensor | float:
        single = wa is None
        wa = torch.ones(1, self.n[0]) if wa is None else torch.as_tensor(wa).reshape(-1, self.n[0])
        wb = torch.ones(1, self.n[1]) if wb is None else torch.as_tensor(wb).reshape(-1, self.n[1])
        sw = []
        for (xa, xb), theta in zip(self.levels, self.theta):
            per = xa.shape[1]  # patches per image, the same in both sets
            sw.append(sliced_wasserstein(xa.reshape(-1, xa.shape[-1]), xb.reshape(-1, xb.shape[-1]), theta,
                                         wa.repeat_interleave(per, 1), wb.repeat_interleave(per, 1)))  # fmt: skip
        out = 1e3 * torch.stack(sw).mean(0)
        return float(out[0]) if single else out


METRICS = ("frechet", "kid", "swd", "precision", "recall", "density", "coverage")
# Plug-in estimators whose bias grows when a resample repeats images (fewer distinct images: a
# larger Fréchet distance, a worse sorted match): their interval is the basic bootstrap one,
# [2θ̂ − q_97.5, 2θ̂ − q_2.5], which subtracts that shift instead of reporting it.
# At a few hundred images the bias can exceed the spread, so the interval can lie below the
# plug-in value (two sets of 256 uniform 14×14 images: FD 6.4, interval [1.4, 2.4]): compare these
# two only between sets of the same size, and read KID (unbiased) for a verdict.
BASIC_INTERVAL = ("frechet", "swd")


def metric_interval(metric: str, value: float, replicates) -> tuple[float, float]:
    """95% bootstrap interval of ``metric`` from its replicates: percentile, or basic
    (2θ̂ − [q₉₇.₅, q₂.₅]) for the :data:`BASIC_INTERVAL` metrics."""
    lo, hi = interval(replicates)
    return (2 * value - hi, 2 * value - lo) if metric in BASIC_INTERVAL else (lo, hi)


def distances(a: torch.Tensor, b: torch.Tensor, image_shape, n_boot: int = 500, seed: int = 0, k: int = 5,
              swd: dict | None = None, weights: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict]:  # fmt: skip
    """Every metric of :data:`METRICS` between image sets ``a`` (the reference, "real" for the k-NN
    metrics) and ``b``, rows {metric, value, ci_low, ci_high, replicates}. Intervals: a percentile bootstrap
    over the images of both sets (the same resamples for every metric; KID as weighted
    U-statistics, so a duplicated image never pairs with itself; :data:`BASIC_INTERVAL` metrics
    take the basic bootstrap interval); the k-NN metrics resample their
    per-image terms with the neighbour balls held fixed, the patch SWD its images with the patches
    and directions held fixed. ``swd``: options of :class:`PatchSWD`. ``weights``: each set's
    (n, 1 + R) bootstrap weights (:func:`.inference.bootstrap_weights`, column 0 the point
    estimate); a set resampled the same way in every pair makes differences of distances paired.
    Without them, ``n_boot`` resamples are drawn from ``seed``."""
    a, b = _rows(a), _rows(b)
    if weights is None:
        rng = np.random.default_rng(seed)
        weights = bootstrap_weights(len(a), n_boot, rng), bootstrap_weights(len(b), n_boot, rng)
    if weights[0].shape[0] != len(a) or weights[1].shape[0] != len(b):
        raise ValueError(f"bootstrap weights cover {weights[0].shape[0]} and {weights[1].shape[0]} images, the sets {len(a)} and {len(b)}")
    wa, wb = weights[0][:, 1:].T, weights[1][:, 1:].T
    ia = [np.repeat(np.arange(len(a)), w.astype(int)) for w in wa]
    ib = [np.repeat(np.arange(len(b)), w.astype(int)) for w in wb]
    reps = {
        "frechet": (frechet_distance(a, b), [frechet_distance(a[i], b[j]) for i, j in zip(ia, ib)]),
        "kid": (kernel_distance(a, b), kernel_distance(a, b, torch.as_tensor(wa), torch.as_tensor(wb)).numpy()),
    }
    sw = PatchSWD(a, b, image_shape, seed=seed, **(swd or {}))
    reps["swd"] = (sw.value(), sw.value(torch.as_tensor(wa), torch.as_tensor(wb)).numpy())
    for name, v in prdc_items(a, b, k).items():
        w = wb if name in ("precision", "density") else wa  # terms over b's images, or over a's
        reps[name] = (float(v.mean()), (w @ v) / w.sum(1))
    out = []
    for name in METRICS:
        value, r = reps[name]
        lo, hi = metric_interval(name, value, r)
        out.append({"metric": name, "value": value, "ci_low": lo, "ci_high": hi, "replicates": np.asarray(r, float)})
    return out


# The statistic of claim disjoint_models_closer_than_data (docs/claims.md): how much closer the
# two models are to each other than, on average, to held-out data; negative when they agree more.
CONTRAST = (("model_s1", "model_s2"), (("model_s1", "heldout"), ("model_s2", "heldout")))


def distance_table(sets: dict[str, torch.Tensor], image_shape, n_boot: int = 500, seed: int = 0, k: int = 5,
                   swd: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Every metric between every two of ``sets`` (all of one size): (rows set_a, set_b, metric,
    value, ci_low, ci_high, in the order of ``sets``; the contrast of :data:`CONTRAST` per metric,
    d(S1 model, S2 model) − ½[d(S1 model, held-out) + d(S2 model, held-out)], with the interval of
    its paired replicates). Each set is resampled the same way in every distance (weights from
    ``seed`` and the set's name), so differences between distances keep their pairing."""
    weights = {name: bootstrap_weights(len(x), n_boot, item_rng(seed, f"distributions:{name}")) for name, x in sets.items()}
    rows, reps = [], {}
    for a, b in itertools.combinations(sets, 2):
        for r in distances(sets[a], sets[b], image_shape, k=k, swd=swd, seed=seed, weights=(weights[a], weights[b])):
            reps[a, b, r["metric"]] = (r["value"], r.pop("replicates"))
            rows.append({"set_a": a, "set_b": b, **r})
    (pair, refs), contrasts = CONTRAST, []
    for metric in METRICS:
        value = reps[(*pair, metric)][0] - np.mean([reps[(*ref, metric)][0] for ref in refs])
        rep = reps[(*pair, metric)][1] - np.mean([reps[(*ref, metric)][1] for ref in refs], axis=0)
        lo, hi = metric_interval(metric, value, rep)
        contrasts.append({"metric": metric, "value": value, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows), pd.DataFrame(contrasts)
