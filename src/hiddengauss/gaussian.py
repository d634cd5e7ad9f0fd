"""The Gaussian model of a training set (paper §3, Theorem 1; Wang & Vastola's closed form).

The training set {y_i} (flattened, in [-1, 1]) is summarised by its empirical mean μ and
biased (1/N) covariance Σ = U Λ Uᵀ. Everything else follows in closed form:

* the Wiener denoiser D_G, the optimal denoiser of N(μ, Σ) and of any affine denoiser trained
  on data with these two moments (Theorem 1);
* its score;
* the exact solution of the probability-flow ODE dx/dσ = (x − D_G(x;σ))/σ, which makes the
  Gaussian model's noise → sample map a single matrix product.

Tensors are torch tensors; batches are (B, d). Statistics are float64.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from scipy.linalg.blas import dsyrk

from .io import atomic_h5, read_array
from .metrics import score_from_denoiser

Sigma = float | torch.Tensor


def _sigma_column(sigma: Sigma, x: torch.Tensor) -> torch.Tensor:
    """σ as a (B, 1) (or scalar) tensor on x's device and dtype."""
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    return s.reshape(-1, 1) if s.ndim else s


def empirical_mean_covariance(
    chunks: Iterable[np.ndarray | torch.Tensor], device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Mean and biased covariance of a data set streamed in chunks of rows (float64).

    μ = (1/N) Σ_i y_i,   Σ = (1/N) Σ_i (y_i − μ)(y_i − μ)ᵀ.

    Rows are shifted by the first chunk's mean before the products are accumulated, so the
    result does not suffer from the cancellation of E[yyᵀ] − μμᵀ; only one chunk and the d×d
    accumulator are in memory at a time. Returns (μ, Σ, N).
    """
    total = None
    n = 0
    shift = None
    syrk = torch.device(device).type == "cpu"  # BLAS dsyrk: one triangle, half the flops of addmm
    for chunk in chunks:
        y = torch.as_tensor(chunk).to(device=device, dtype=torch.float64)
        if y.ndim != 2:
            raise ValueError(f"chunks must be (rows, d) arrays, got shape {tuple(y.shape)}")
        if y.shape[0] == 0:
            continue
        if shift is None:
            d = y.shape[1]
            shift = y.mean(0)
            total = torch.zeros(d, dtype=torch.float64, device=device)
            second = np.zeros((d, d), order="F") if syrk else torch.zeros(d, d, dtype=torch.float64, device=device)
        y = (y - shift).contiguous()
        total += y.sum(0)
        if syrk:  # upper triangle of second += yᵀy, in place (yᵀ of a C-ordered y is Fortran-ordered)
            second = dsyrk(1.0, y.numpy().T, beta=1.0, c=second, trans=0, lower=0, overwrite_c=1)
        else:
            second.addmm_(y.T, y)
        n += y.shape[0]
    if n == 0:
        raise ValueError("cannot fit a Gaussian to an empty set of images")
    m = total / n
    if not syrk:
        cov = second / n - torch.outer(m, m)
        return shift + m, (cov + cov.T) / 2, n
    # mirror the triangle and centre in place, a block of rows at a time: no d×d temporaries,
    # and the result is exactly symmetric (m_i m_j = m_j m_i), so no symmetrization is needed
    cov = torch.from_numpy(second.T)  # C-ordered view; its lower triangle holds the sums
    blocks = [(s, min(s + 512, d)) for s in range(0, d, 512)]
    for s, e in blocks:
        cov[:s, s:e] = cov[s:e, :s].T
        block = cov[s:e, s:e]
        block.copy_(torch.tril(block) + torch.tril(block, -1).T)
    for s, e in blocks:
        cov[s:e].div_(n).sub_(torch.outer(m[s:e], m))
    return shift + m, cov, n


def eigendecompose(cov: torch.Tensor, overwrite: bool = False) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Σ = U Λ Uᵀ with eigenvalues in decreasing order, clipped at 0.

    Round-off makes the tiny eigenvalues of a rank-deficient Σ (N ≤ d) slightly negative;
    compared with σ_min² = 4e-6 they would leak noise at small σ, so λ ← max(λ, 0).
    On the CPU this is LAPACK ``dsyevr`` (scipy): 1.3× faster than ``torch.linalg.eigh``'s
    ``dsyevd`` at d = 6144 and it needs one d×d array (U) besides Σ instead of three;
    ``overwrite=True`` lets it destroy Σ's storage. U is returned as a column-major view
    (columns reordered in place, no copy). On a GPU, ``torch.linalg.eigh``.
    Returns (λ, U, number of clipped eigenvalues).
    """
    if cov.device.type != "cpu":
        if not torch.isfinite(cov).all():
            raise ValueError("the covariance has NaN or Inf entries: check the images it was computed from")
        evals, evecs = torch.linalg.eigh(cov.to(torch.float64))
        evals, evecs = evals.flip(0), evecs.flip(1)
    else:
        from scipy.linalg import eigh

        own = cov.dtype != torch.float64  # the cast below is then a private copy, free to destroy
        a = cov.to(torch.float64).numpy()
        a = a.T if a.flags.c_contiguous else a  # Σ is symmetric: its transpose is a Fortran-ordered alias
        if not np.isfinite(a.sum()):  # one pass, no d×d temporary; LAPACK would not notice
            raise ValueError("the covariance has NaN or Inf entries: check the images it was computed from")
        w, v = eigh(a, driver="evr", overwrite_a=overwrite or own, check_finite=False)
        rows = v.T  # C-ordered (Fortran v): row k is the k-th eigenvector, ascending
        buf = np.empty(rows.shape[1])
        for i in range(rows.shape[0] // 2):  # reverse the rows in place, one row buffer
            j = rows.shape[0] - 1 - i
            buf[:] = rows[i]
            rows[i] = rows[j]
            rows[j] = buf
        evals, evecs = torch.from_numpy(w[::-1].copy()), torch.from_numpy(rows).T
    n_clipped = int((evals < 0).sum())
    return evals.clamp_min(0.0), evecs, n_clipped


def gram_eigendecompose(y: torch.Tensor, rtol: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """μ and the eigenpairs of Σ with nonzero eigenvalue, from the N × N Gram matrix (for N < d).

    With Y the centred rows (N × d), Σ = YᵀY/N and G = YYᵀ/N = V Λ Vᵀ share their nonzero
    eigenvalues, and u_k = Yᵀv_k/√(Nλ_k) is a unit eigenvector of Σ:
    Σu_k = Yᵀ(YYᵀ/N)v_k/√(Nλ_k) = λ_k u_k and ‖u_k‖² = v_kᵀGv_k/λ_k = 1.
    Σ has rank at most N − 1; eigenvalues ≤ rtol·λ_1 (round-off) are dropped, so U is d × r with
    r < N and its orthogonal complement is Σ's null space, which the Wiener denoiser maps to μ
    and the probability-flow map scales by σ/σ_T, exactly as a full basis with λ = 0 there.
    The basis is then re-orthonormalised (Rayleigh–Ritz on span U: Q = qr(U), the r × r matrix
    QᵀΣQ = (YQ)ᵀ(YQ)/N diagonalised), which removes the O(ε λ_1/λ_k) loss of orthogonality of
    the back-projection. Cost O(N²d + Nr d) instead of O(Nd² + d³) and no d × d array.
    Returns (μ, λ decreasing (r,), U (d, r), number of dropped eigenvalues)."""
    y = y.to(torch.float64)
    if y.ndim != 2 or y.shape[0] == 0:
        raise ValueError(f"need a non-empty (rows, d) array of images, got shape {tuple(y.shape)}")
    n = y.shape[0]
    mean = y.mean(0)
    yc = y - mean
    gram = yc @ yc.T / n
    w, v, _ = eigendecompose((gram + gram.T) / 2, overwrite=True)  # decreasing, clipped at 0; refuses NaN
    keep = (w > rtol * w[0]) & (w > 0)
    if not keep.any():  # one image, or identical ones: Σ = 0
        return mean, w[:0], yc.new_zeros(yc.shape[1], 0), n
    u = (yc.T @ v[:, keep]) / torch.sqrt(n * w[keep])
    q = torch.linalg.qr(u).Q  # Rayleigh–Ritz refinement on span U
    b = yc @ q
    lam, r, _ = eigendecompose((b.T @ b) / n, overwrite=True)
    return mean, lam, q @ r, int((~keep).sum())


def wiener_shrinkage(eigenvalues, sigma):
    """The Wiener filter's gain along each principal direction, λ_k/(λ_k+σ²) (tensors or arrays)."""
    return eigenvalues / (eigenvalues + sigma**2)


def wiener_matrix(eigenvalues: torch.Tensor, eigenvectors: torch.Tensor, sigma: float) -> torch.Tensor:
    """W_G = U diag(λ/(λ+σ²)) Uᵀ, the linear part of the Wiener denoiser."""
    return (eigenvectors * wiener_shrinkage(eigenvalues, sigma)) @ eigenvectors.T


def wiener_denoiser(
    x: torch.Tensor, sigma: Sigma, mean: torch.Tensor, eigenvalues: torch.Tensor, eigenvectors: torch.Tensor
) -> torch.Tensor:
    """Gaussian (Wiener) denoiser, the posterior mean E[y | y + σn = x] for y ~ N(μ, Σ).

    D_G(x;σ) = μ + U diag(λ_k/(λ_k+σ²)) Uᵀ(x − μ).

    With a truncated basis U (rank r < d) the orthogonal complement is mapped to μ.
    """
    s = _sigma_column(sigma, x)
    coeff = (x - mean) @ eigenvectors
    return mean + (coeff * wiener_shrinkage(eigenvalues, s)) @ eigenvectors.T


def gaussian_score(
    x: torch.Tensor, sigma: Sigma, mean: torch.Tensor, eigenvalues: torch.Tensor, eigenvectors: torch.Tensor
) -> torch.Tensor:
    """Score of the noised Gaussian p_σ = N(μ, Σ + σ²I).

    ∇ log p_σ(x) = (D_G(x;σ) − x)/σ² = −(Σ + σ²I)⁻¹(x − μ).
    """
    return score_from_denoiser(wiener_denoiser(x, sigma, mean, eigenvalues, eigenvectors), x, _sigma_column(sigma, x))


def gaussian_pf_ode_solution(
    x_start: torch.Tensor,
    sigma_start: float,
    sigma: float,
    mean: torch.Tensor,
    eigenvalues: torch.Tensor,
    eigenvectors: torch.Tensor,
) -> torch.Tensor:
    """Exact solution of the probability-flow ODE dx/dσ = (x − D_G(x;σ))/σ from σ_T to σ.

    x(σ) = μ + Σ_k √((λ_k+σ²)/(λ_k+σ_T²)) c_k u_k + (σ/σ_T) r,

    with c_k = ⟨x(σ_T) − μ, u_k⟩ and r the part of x(σ_T) − μ outside span(U).
    Each eigen-coordinate obeys dc_k/dσ = σ c_k/(λ_k + σ²), which integrates to the square root.
    """
    centred = x_start - mean
    coeff = centred @ eigenvectors
    residual = centred - coeff @ eigenvectors.T
    lam = eigenvalues
    gain = torch.sqrt((lam + sigma**2) / (lam + sigma_start**2))
    return mean + (coeff * gain) @ eigenvectors.T + (sigma / sigma_start) * residual


def gaussian_sample(
    z: torch.Tensor,
    mean: torch.Tensor,
    eigenvalues: torch.Tensor,
    eigenvectors: torch.Tensor,
    sigma_max: float = 80.0,
) -> torch.Tensor:
    """The Gaussian model's sample for latent z: the exact ODE map from x(σ_max) = σ_max z to σ = 0.

    x(0) = μ + U diag(√(λ_k/(λ_k+σ_max²))) Uᵀ σ_max z  ≈ μ + Σ^{1/2} z for σ_max² ≫ λ.
    """
    return gaussian_pf_ode_solution(sigma_max * z, sigma_max, 0.0, mean, eigenvalues, eigenvectors)


def effective_rank(eigenvalues: torch.Tensor | np.ndarray, sigma: float) -> float:
    """Effective number of kept directions of the Wiener filter: Σ_k λ_k/(λ_k+σ²)."""
    lam = torch.tensor(np.asarray(eigenvalues), dtype=torch.float64)
    return float(wiener_shrinkage(lam, sigma).sum())


def truncate_rank(
    eigenvalues: torch.Tensor, eigenvectors: torch.Tensor, rank: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the top-``rank`` eigenpairs (None or rank ≥ d keeps all)."""
    if rank is None or rank >= eigenvalues.numel():
        return eigenvalues, eigenvectors
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    return eigenvalues[:rank], eigenvectors[:, :rank]


@dataclass
class GaussianModel:
    """μ, Λ (decreasing) and U of one training subset, plus bookkeeping."""

    mean: torch.Tensor
    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    n_images: int
    image_shape: tuple[int, int, int]
    n_clipped: int = 0

    @property
    def dim(self) -> int:
        return self.mean.numel()

    def spectrum(self) -> torch.Tensor:
        """All d eigenvalues of Σ, decreasing: those of the basis, then zeros for the directions
        a Gram-matrix fit leaves out (its basis spans Σ only)."""
        pad = self.dim - self.eigenvalues.numel()
        return torch.cat([self.eigenvalues, self.eigenvalues.new_zeros(pad)]) if pad else self.eigenvalues

    def to(self, device=None, dtype=None) -> "GaussianModel":
        conv = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
        return GaussianModel(
            conv(self.mean), conv(self.eigenvalues), conv(self.eigenvectors),
            self.n_images, self.image_shape, self.n_clipped,
        )  # fmt: skip

    def truncated(self, rank: int | None) -> "GaussianModel":
        lam, u = truncate_rank(self.eigenvalues, self.eigenvectors, rank)
        return GaussianModel(self.mean, lam, u, self.n_images, self.image_shape, self.n_clipped)

    def _cast(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            self.mean.to(x.device, x.dtype),
            self.eigenvalues.to(x.device, x.dtype),
            self.eigenvectors.to(x.device, x.dtype),
        )

    def denoise(self, x: torch.Tensor, sigma: Sigma) -> torch.Tensor:
        return wiener_denoiser(x, sigma, *self._cast(x))

    def score(self, x: torch.Tensor, sigma: Sigma) -> torch.Tensor:
        return gaussian_score(x, sigma, *self._cast(x))

    def pf_ode(self, x_start: torch.Tensor, sigma_start: float, sigma: float) -> torch.Tensor:
        return gaussian_pf_ode_solution(x_start, sigma_start, sigma, *self._cast(x_start))

    def sample(self, z: torch.Tensor, sigma_max: float = 80.0) -> torch.Tensor:
        return gaussian_sample(z, *self._cast(z), sigma_max=sigma_max)

    def save(self, path: str | Path, store_dtype: str = "float64", attrs: dict | None = None) -> None:
        """Write μ, λ, U (U in ``store_dtype``) and attributes; atomic (tmp file + rename)."""
        with atomic_h5(path) as f:
            f["mean"] = self.mean.cpu().numpy().astype(np.float64)
            f["eigenvalues"] = self.eigenvalues.cpu().numpy().astype(np.float64)
            f.create_dataset("eigenvectors", data=self.eigenvectors.cpu().numpy().astype(store_dtype))
            f.attrs.update(
                n_images=self.n_images, dim=self.dim, image_shape=list(self.image_shape),
                n_clipped=self.n_clipped, rank=self.eigenvalues.numel(),
                covariance=("biased 1/N, float64; " + ("eigh of the d x d covariance" if self.eigenvalues.numel() == self.dim
                            else "eigh of the N x N Gram matrix (basis of span, rank < d)")),
                **(attrs or {}),
            )  # fmt: skip

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "GaussianModel":
        with h5py.File(path, "r") as f:
            t = lambda k: torch.from_numpy(read_array(f, k).astype(np.float64)).to(device)  # noqa: E731
            return cls(
                t("mean"), t("eigenvalues"), t("eigenvectors"), int(f.attrs["n_images"]),
                tuple(int(v) for v in f.attrs["image_shape"]), int(f.attrs["n_clipped"]),
            )  # fmt: skip


FIT_METHODS = ("auto", "covariance", "gram")
GRAM_MAX_ROWS = 0.5  # auto: the Gram path for N <= d/2 (measured: 67x faster at N = d/11, slower near N = d)


def fit_gaussian(
    chunks: Iterable[np.ndarray], image_shape: tuple[int, int, int], device: str | torch.device = "cpu",
    method: str = "auto",
) -> GaussianModel:  # fmt: skip
    """Fit the Gaussian model of a data set given as chunks of flattened float images.

    ``method``: ``covariance`` streams the d × d covariance and diagonalises it
    (:func:`empirical_mean_covariance`, :func:`eigendecompose`; O(Nd² + d³), the full basis);
    ``gram`` holds the N rows and diagonalises their N × N Gram matrix
    (:func:`gram_eigendecompose`; O(N²d), a basis of span Σ only); ``auto`` takes ``gram`` when
    the set has at most half as many images as pixels (decided while reading: chunks are held
    until more than d/2 rows have arrived, then streamed into the covariance; near N = d the
    Gram path's two N × N eigendecompositions and the QR cost more than the d × d one).
    Both give the same D_G and ODE map.
    """
    if method not in FIT_METHODS:
        raise ValueError(f"unknown Gaussian fit method {method!r}; expected one of {', '.join(FIT_METHODS)}")
    it = iter(chunks)
    held, rows = [], 0
    if method != "covariance":
        for chunk in it:
            held.append(torch.as_tensor(chunk).to(device=device, dtype=torch.float64))
            rows += held[-1].shape[0]
            if method == "auto" and held[-1].ndim == 2 and rows > GRAM_MAX_ROWS * held[-1].shape[1]:
                break
        else:  # all rows read: fewer than d (auto) or gram asked for
            if not held:
                raise ValueError("cannot fit a Gaussian to an empty set of images")
            mean, evals, evecs, n_dropped = gram_eigendecompose(torch.cat(held))
            return GaussianModel(mean, evals, evecs, rows, tuple(image_shape), n_dropped)
    mean, cov, n = empirical_mean_covariance(itertools.chain(held, it), device=device)
    del held
    evals, evecs, n_clipped = eigendecompose(cov, overwrite=True)
    return GaussianModel(mean, evals, evecs, n, tuple(image_shape), n_clipped)


def fit_gaussian_h5(
    data_h5, split_h5, out_h5, subset: str, chunk_size: int = 2048, store_dtype: str = "float64",
    method: str = "auto", device: str = "auto", threads: int | None = None, log=None,
) -> GaussianModel:  # fmt: skip
    """Fit the Gaussian model of training subset ``subset`` (its split file ``split_h5``) of a
    prepared data set and save it.

    Images are read from HDF5 ``chunk_size`` at a time, so the data never sit in memory whole
    (except with the Gram matrix, ``method`` as in :func:`fit_gaussian`, where N ≤ d/2 rows do).
    """
    from tqdm.auto import tqdm

    from .dataset import read_attrs, read_images, to_float
    from .runtime import resolve_device, set_threads
    from .splits import load_split

    set_threads(threads)
    dev = resolve_device(device)
    idx = np.sort(load_split(split_h5))
    attrs = read_attrs(data_h5)
    shape = tuple(int(v) for v in read_images(data_h5, idx[:1]).shape[1:])
    starts = range(0, len(idx), chunk_size)
    chunks = (to_float(read_images(data_h5, idx[s : s + chunk_size])) for s in tqdm(starts, desc="covariance"))
    model = fit_gaussian(chunks, shape, device=dev, method=method)
    if log:
        how = "d x d covariance" if model.eigenvalues.numel() == model.dim else "N x N Gram matrix"
        log.info(
            "fitted N=%d d=%d from the %s: top eigenvalue %.4g, %d eigenvalues > 1e-8, %d clipped at 0 or dropped",
            model.n_images, model.dim, how, float(model.eigenvalues[0]),
            int((model.eigenvalues > 1e-8).sum()), model.n_clipped,
        )  # fmt: skip
    model.save(
        out_h5, store_dtype=store_dtype,
        attrs={"subset": subset, "data_sha256": str(attrs.get("source_sha256", ""))},
    )  # fmt: skip
    return model


def spectrum_table(gaussian_files: list[str]):
    """Tidy table of eigenvalues: one row per (training subset, k)."""
    import pandas as pd

    frames = []
    for path in gaussian_files:
        with h5py.File(path, "r") as f:
            lam = read_array(f, "eigenvalues")
            lam = np.concatenate([lam, np.zeros(int(f.attrs.get("dim", lam.size)) - lam.size)])  # Gram fit: rank < d
            subset = str(f.attrs["subset"])
            frames.append(
                pd.DataFrame(
                    {"subset": subset, "dataset_size": int(f.attrs["n_images"]),
                     "k": np.arange(1, len(lam) + 1), "eigenvalue": lam}
                )
            )  # fmt: skip
    return pd.concat(frames, ignore_index=True)
