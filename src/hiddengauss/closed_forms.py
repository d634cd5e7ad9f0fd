"""Closed-form denoisers beyond the global Gaussian (exact, no learned parameters).

Each model is a posterior mean built from the training images y_1 … y_N (flattened rows of
shape (C, H, W), pixels in [-1, 1]) and the noise level σ of x = y + σn:

* :func:`gaussian_mixture_denoiser`: Wang & Vastola's Gaussian-mixture score, one Gaussian per
  k-means cluster (:func:`fit_gaussian_mixture`); K = 1 is the Wiener denoiser D_G and K = N
  the empirical denoiser D_M;
* :func:`local_denoiser` with :func:`wiener_locality_mask`: Lukoianov et al.'s data-driven
  locality (NeurIPS 2025), a softmax over training images of a masked distance per pixel;
* :func:`patch_denoiser`: Niedoba et al.'s patch posterior mean (ICML 2025), per crop position
  the posterior mean of the training patches at that position, overlapping crops averaged;
* :func:`els_denoiser`: Kamb & Ganguli's equivariant local score machine (ICML 2025), per pixel
  the centre of a softmax over every k×k patch of every training image at every position.

Inputs x are (B, d) with d = C·H·W, as every denoiser of the pipeline; sums over training
images are streamed in chunks with a running log-sum-exp (:class:`.empirical.StreamingSoftmaxMean`), so memory
stays bounded by the chunk, and everything runs on x's device in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .empirical import StreamingSoftmaxMean
from .gaussian import GaussianModel, fit_gaussian


def _images(x: torch.Tensor, shape) -> torch.Tensor:
    return x.reshape(x.shape[0], *shape)


# --------------------------------------------------------------------------- Gaussian mixture


@dataclass
class GaussianMixture:
    """K Gaussians (one per cluster, each a :class:`GaussianModel`) and their weights π_k."""

    components: list[GaussianModel]
    weights: torch.Tensor

    @property
    def k(self) -> int:
        return len(self.components)


def fit_gaussian_mixture(train: torch.Tensor, image_shape, k: int, seed: int = 0) -> GaussianMixture:
    """k-means (scikit-learn, seeded, 4 restarts) into ``k`` clusters; each cluster's mean and
    1/n covariance (:func:`.gaussian.fit_gaussian`); π_k = n_k/N. k = N puts each image alone
    (covariance 0), k = 1 is the global Gaussian."""
    from sklearn.cluster import KMeans

    n = train.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"a mixture of {k} Gaussians needs 1 <= k <= {n} (the training images)")
    y = train.detach().to("cpu", torch.float64)
    labels = torch.zeros(n, dtype=torch.long) if k == 1 else \
        torch.from_numpy(KMeans(k, n_init=4, random_state=seed).fit_predict(y.numpy())).long()  # fmt: skip
    comps, sizes = [], []
    for c in range(k):
        rows = y[labels == c]
        if len(rows) == 0:  # k-means can leave a cluster empty only with duplicates; skip it
            continue
        comps.append(fit_gaussian([rows], tuple(image_shape)).to(train.device))
        sizes.append(len(rows))
    sizes = torch.tensor(sizes, dtype=torch.float64, device=train.device)
    return GaussianMixture(comps, sizes / sizes.sum())


def gaussian_log_density(x: torch.Tensor, sigma: float, g: GaussianModel) -> torch.Tensor:
    """log N(x; μ, Σ + σ²I) per row, from Σ = U Λ Uᵀ (U may span Σ only; the complement has
    variance σ²): −½[Σ_j c_j²/(λ_j+σ²) + ‖r‖²/σ² + Σ_j log(λ_j+σ²) + (d − r)·log σ² + d·log 2π],
    c = Uᵀ(x − μ), r = the part of x − μ outside span U."""
    mean, lam, u = (t.to(x.device, torch.float64) for t in (g.mean, g.eigenvalues, g.eigenvectors))
    xc = x.to(torch.float64) - mean
    c = xc @ u
    resid = (xc * xc).sum(1) - (c * c).sum(1)
    s2 = sigma**2
    d, r = xc.shape[1], lam.numel()
    quad = (c * c / (lam + s2)).sum(1) + resid.clamp_min(0) / s2
    logdet = torch.log(lam + s2).sum() + (d - r) * math.log(s2)
    return -0.5 * (quad + logdet + d * math.log(2 * math.pi))


def gaussian_mixture_denoiser(x: torch.Tensor, sigma: float, mixture: GaussianMixture) -> torch.Tensor:
    """Posterior mean under Σ_k π_k N(μ_k, Σ_k): D(x;σ) = Σ_k r_k(x) D_k(x;σ) with
    D_k = μ_k + Σ_k(Σ_k + σ²I)⁻¹(x − μ_k) (each component's Wiener denoiser) and responsibilities
    r_k ∝ π_k N(x; μ_k, Σ_k + σ²I). Returns x's dtype."""
    logits = torch.stack([torch.log(w) + gaussian_log_density(x, sigma, g)
                          for w, g in zip(mixture.weights, mixture.components)], 1)  # fmt: skip
    r = torch.softmax(logits, dim=1)
    xd = x.to(torch.float64)
    out = sum(r[:, k : k + 1] * g.denoise(xd, sigma) for k, g in enumerate(mixture.components))
    return out.to(x.dtype)


# --------------------------------------------------------------------------- data-driven locality


def wiener_locality_mask(gauss: GaussianModel, sigma: float, threshold: float = 0.02, scope: str = "row") -> torch.Tensor:
    """Lukoianov et al.'s mask at σ from the Wiener filter W_σ = U diag(λ/(λ+σ²)) Uᵀ (d × d);
    row n is the neighbourhood output pixel n sees (threshold 0.02: their repository's default).

    ``scope="row"`` (this pipeline's default): M[n,m] = 1 where |W_σ[n,m]| ≥ threshold·max_m'
    |W_σ[n,m']|, and M[n,n] = 1 always; each row is judged against its own largest entry, so a
    row's scale (its pixel's variance) cannot empty another row. ``scope="global"`` (their
    repository): each row divided by its diagonal entry, A[n,m] = W_σ[n,m]/W_σ[n,n] (a diagonal
    entry below 1e-9 of the largest counts as 1), M[n,m] = 1 where |A[n,m]| ≥ threshold·max|A|
    over the whole matrix; on images with low-variance pixels most rows come out empty."""
    from .gaussian import wiener_matrix

    w = wiener_matrix(gauss.eigenvalues.to(torch.float64), gauss.eigenvectors.to(torch.float64), sigma)
    if scope == "row":
        a = w.abs()
        mask = a >= threshold * a.amax(1, keepdim=True)
        mask[a.amax(1) <= 1e-12 * a.max()] = False  # a pixel without variance: only itself
        return (mask | torch.eye(w.shape[0], dtype=torch.bool)).to(torch.float64)
    if scope != "global":
        raise ValueError(f"locality mask scope must be 'row' or 'global', got {scope!r}")
    diag = torch.diagonal(w).clone()
    diag[diag.abs() < 1e-9 * diag.abs().max()] = 1.0
    a = w / diag[:, None]
    return (a.abs() >= threshold * a.abs().max()).to(torch.float64)


def local_denoiser(x: torch.Tensor, sigma: float, train: torch.Tensor, mask: torch.Tensor,
                   temperature: float = 1.0, chunk: int = 256) -> torch.Tensor:  # fmt: skip
    """Data-driven locality: output pixel n is Σ_i softmax_i(−Σ_m M[n,m](x_m − y_{i,m})² / (2σ²τ)) y_{i,n}.

    An all-ones mask gives the empirical denoiser (τ = 1), an identity mask a per-pixel
    posterior mean. Cost B·N·d² (dense mask), streamed over chunks of training images."""
    xd, mask = x.to(torch.float64), mask.to(x.device, torch.float64)
    acc = StreamingSoftmaxMean()
    for start in range(0, train.shape[0], chunk):
        y = train[start : start + chunk].to(x.device, torch.float64)  # (n, d)
        delta = (xd[:, None, :] - y[None]) ** 2  # (B, n, d)
        logits = -(delta @ mask.T) / (2 * sigma**2 * temperature)  # (B, n, d): pixel n's distance
        logits = logits.transpose(1, 2)  # (B, d, n): softmax over images per pixel
        acc.add(logits, lambda w, y=y: (w * y.T[None]).sum(-1, keepdim=True))
    return acc.mean()[..., 0].to(x.dtype)


# --------------------------------------------------------------------------- patches


def _unfold(img: torch.Tensor, k: int, padding: str = "valid") -> torch.Tensor:
    """(B, C, H, W) → (B, C·k², P) k×k patches at every position (stride 1); ``valid`` keeps the
    patches inside the image, ``circular`` / ``zeros`` centre one on every pixel (k odd)."""
    if padding == "valid":
        return F.unfold(img, k)
    if k % 2 == 0:
        raise ValueError(f"a patch centred on every pixel needs an odd size, got {k}")
    p = k // 2
    img = F.pad(img, (p, p, p, p), mode="circular" if padding == "circular" else "constant")
    return F.unfold(img, k)


def patch_denoiser(x: torch.Tensor, sigma: float, train: torch.Tensor, image_shape, k: int,
                   chunk: int = 256) -> torch.Tensor:  # fmt: skip
    """Patch posterior mean ("square" patches): for each k×k crop position p,
    D_p = Σ_i softmax_i(−‖x_p − y_{i,p}‖²/2σ²) y_{i,p} over the training patches at the same
    position; each pixel is the mean of the D_p of the crops that cover it. k = H = W is the
    empirical denoiser."""
    _, h, w = image_shape
    if not 1 <= k <= min(h, w):
        raise ValueError(f"patch size {k} must be in [1, {min(h, w)}]")
    xp = _unfold(_images(x.to(torch.float64), image_shape), k)  # (B, Ck², P)
    acc = StreamingSoftmaxMean()
    for start in range(0, train.shape[0], chunk):
        yp = _unfold(_images(train[start : start + chunk].to(x.device, torch.float64), image_shape), k)  # (n, Ck², P)
        d2 = (xp * xp).sum(1)[:, :, None] - 2 * torch.einsum("bcp,ncp->bpn", xp, yp) + (yp * yp).sum(1).T[None]
        acc.add(-d2.clamp_min(0) / (2 * sigma**2), lambda wt, yp=yp: torch.einsum("bpn,ncp->bpc", wt, yp))  # (B, P, Ck²)
    patches = acc.mean().transpose(1, 2)  # (B, Ck², P)
    ones = torch.ones_like(patches[:1])
    summed = F.fold(patches, (h, w), k)
    count = F.fold(ones, (h, w), k)
    return (summed / count).reshape(x.shape[0], -1).to(x.dtype)


def els_denoiser(x: torch.Tensor, sigma: float, train: torch.Tensor, image_shape, k: int,
                 padding: str = "zeros", chunk: int = 16) -> torch.Tensor:  # fmt: skip
    """Equivariant local score machine: pixel p of the output is Σ_φ φ_centre · softmax_φ(−‖x_Ω(p) − φ‖²/2σ²)
    over the set Φ of every k×k patch (k odd) of every training image at every position, x_Ω(p)
    the k×k neighbourhood of p in x (``padding`` ``zeros`` or ``circular`` beyond the border, the
    same for the training patches). With ``circular``, translating x translates the output.
    Cost B·HW·N·HW·Ck²: tiny images only (the docs say where it stops being feasible).
    ‖x_Ω(p)‖² is the same for every φ and cancels in the softmax, so the logits are formed in one
    fused product as (x_Ω(p)·φ − ‖φ‖²/2)/σ²."""
    c, h, w = image_shape
    xp = _unfold(_images(x.to(torch.float64), image_shape), k, padding).transpose(1, 2)  # (B, P, Ck²)
    xp = xp.reshape(-1, xp.shape[-1])  # (B·P, Ck²)
    centre = (k * k) // 2  # index of the centre pixel within one channel's k×k patch
    inv = 1.0 / sigma**2
    acc = StreamingSoftmaxMean()
    for start in range(0, train.shape[0], chunk):
        yp = _unfold(_images(train[start : start + chunk].to(x.device, torch.float64), image_shape), k, padding)
        phi = yp.transpose(1, 2).reshape(-1, yp.shape[1])  # (n·P, Ck²): every patch of every image
        logits = torch.addmm((phi * phi).sum(-1)[None], xp, phi.T, beta=-0.5 * inv, alpha=inv)  # (B·P, nP)
        centres = phi.reshape(-1, c, k * k)[:, :, centre]  # (nP, C)
        acc.add(logits, lambda wt, centres=centres: wt @ centres)  # (B·P, C)
    out = acc.mean().reshape(x.shape[0], h * w, c)
    return out.transpose(1, 2).reshape(x.shape[0], -1).to(x.dtype)


# --------------------------------------------------------------------------- the pipeline's set


def patch_schedule(sigma: float, side: int, k_min: int = 3, sigma_lo: float = 0.002, sigma_hi: float = 80.0) -> int:
    """Patch size of the "square" schedule at σ: the whole image (``side``) at σ ≥ σ_hi, k_min
    at σ ≤ σ_lo, log-linear in σ between (rounded); Niedoba et al. shrink the patch from the full
    image to 3 pixels along the sampler's σ schedule."""
    t = (math.log(max(sigma, sigma_lo)) - math.log(sigma_lo)) / (math.log(sigma_hi) - math.log(sigma_lo))
    return int(round(k_min + min(t, 1.0) * (side - k_min)))


def calibrated_patch(chosen: dict[float, int], sigma: float) -> int:
    """The ELS patch size at σ from a calibration {σ_j: chosen size}: the size chosen at the
    calibrated σ_j nearest to σ in log σ (σ outside the calibrated range takes the end's size)."""
    if not chosen:
        raise ValueError("no ELS calibration: need at least one (sigma, chosen patch) row")
    return chosen[min(chosen, key=lambda s: abs(math.log(s) - math.log(sigma)))]


def baseline_denoisers(settings: dict, gauss: GaussianModel, train: torch.Tensor, image_shape,
                       els_patches: dict[float, int] | None = None) -> dict:  # fmt: skip
    """The closed-form denoisers ``settings`` (config ``baselines``) enables, as D(x;σ) functions
    of the training images ``train`` and their Gaussian ``gauss``: ``mixture<K>`` per K (K capped
    at N), ``local``, ``patch``, and ``els`` when its calibration against a network is given
    (``els_patches`` {σ: chosen patch size}, from :func:`els_patch_choice`; between calibrated σ's
    :func:`calibrated_patch`)."""
    models = settings.get("models", [])
    out = {}
    if "mixture" in models:
        for k in settings.get("mixture_components", [8]):
            kk = min(int(k), train.shape[0])
            mix = fit_gaussian_mixture(train, image_shape, kk, seed=settings.get("seed", 0))
            out[f"mixture{kk}"] = lambda x, s, mix=mix: gaussian_mixture_denoiser(x, s, mix)
    if "local" in models:
        thr, tau = settings.get("local_threshold", 0.02), settings.get("local_temperature", 1.0)
        scope = settings.get("local_threshold_scope", "row")
        masks: dict[float, torch.Tensor] = {}

        def local(x, s):
            if s not in masks:
                masks[s] = wiener_locality_mask(gauss, s, thr, scope)
            return local_denoiser(x, s, train, masks[s], tau)

        out["local"] = local
    if "patch" in models:
        side = min(image_shape[1:])
        k_min = min(settings.get("patch_min", 3), side)
        out["patch"] = lambda x, s: patch_denoiser(x, s, train, image_shape, patch_schedule(s, side, k_min))
    if "els" in models and els_patches is not None:
        pad = settings.get("els_padding", "zeros")
        out["els"] = lambda x, s: els_denoiser(x, s, train, image_shape, calibrated_patch(els_patches, s), pad)
    return out


def els_patch_choice(target: torch.Tensor, candidates: dict[int, torch.Tensor], sigma: float) -> tuple[int, list[dict]]:
    """Kamb & Ganguli's calibration of the ELS machine at one σ: of the ELS outputs
    ``candidates`` {patch size k: output} on calibration inputs (noisy images drawn apart from
    the evaluated ones), the k whose output has the highest mean r² to the network's output
    ``target`` on the same inputs. Returns (k, calibration rows {sigma, patch, r2, chosen})."""
    from .metrics import denoiser_distance_per_sample

    scores = {k: float(denoiser_distance_per_sample(target, out)["r2"].mean()) for k, out in candidates.items()}
    best = max(scores, key=scores.get)
    return best, [{"sigma": sigma, "patch": k, "r2": r, "chosen": k == best} for k, r in scores.items()]
