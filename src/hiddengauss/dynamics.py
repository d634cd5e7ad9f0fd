"""How the sampler unfolds (issue 20): step counts, the posterior's multimodality, and the
variance of the denoising target.

The empirical distribution (1/N) Σ_i δ(y − y_i) of a training subset has, at noise σ, the
posterior over training images

    p_i(x) = softmax_i(−‖x − y_i‖² / (2σ²)),

whose mean is the empirical-optimal denoiser D_M (:mod:`.empirical`). Its entropy says how many
images a denoiser has to average (why one big step cannot land on a single image), and its
covariance is the noise of the regression target the network is trained on (Vastola,
"Generalization through variance", ICLR 2025).
"""

from __future__ import annotations

import numpy as np
import torch

from .empirical import empirical_optimal_denoiser, squared_distance_chunks
from .memorization import generalization_summary, paired_rmse
from .sampling import Denoiser, pf_ode_sampler, seeded_latents
from .schedules import SamplerConfig, nfe


def posterior_logits(x: torch.Tensor, sigma: float, train: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """ℓ_i(x) = −‖x − y_i‖²/(2σ²) for every input (B, d) and training image (N, d), float64,
    from the chunked squared distances of :func:`.empirical.squared_distance_chunks`. Returns (B, N)."""
    return -torch.cat([d2 for _, d2 in squared_distance_chunks(x, train, chunk)], 1) / (2 * sigma**2)


def effective_images(log_p: torch.Tensor) -> torch.Tensor:
    """Effective number of training images the posterior averages: exp(H), H = −Σ_i p_i log p_i,
    from log-probabilities (B, N); 1 when one image takes all the weight, N when all are equal."""
    return torch.exp(-(log_p.exp() * log_p).sum(1))


def proxy_variance_fraction(x: torch.Tensor, p: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Share of the denoising target's second moment that is its posterior variance:
    tr Cov[(x − y)/σ² | x] / E[‖(x − y)/σ²‖² | x] = tr Cov[y|x] / (‖x − m‖² + tr Cov[y|x]),
    m = Σ_i p_i y_i, tr Cov[y|x] = Σ_i p_i ‖y_i − m‖² (σ⁴ cancels). 0 for one training image."""
    y = train.to(device=x.device, dtype=torch.float64)
    xd = x.to(torch.float64)
    m = p @ y
    var = (p @ (y * y).sum(1)) - (m * m).sum(1)
    var = var.clamp_min(0)
    return var / (((xd - m) ** 2).sum(1) + var).clamp_min(1e-300)


def empirical_posterior(x: torch.Tensor, sigma: float, train: torch.Tensor, batch: int = 256) -> dict[str, torch.Tensor]:
    """Per input x (B, d): ``n_eff`` (:func:`effective_images`), ``proxy_fraction``
    (:func:`proxy_variance_fraction`), ``nearest`` (the single nearest training image, the
    posterior's mode: the answer of a denoiser that commits to one image) and ``mean`` (D_M(x;σ)),
    in batches of inputs so that a (batch, N) weight matrix is the largest array kept."""
    out: dict[str, list[torch.Tensor]] = {"n_eff": [], "proxy_fraction": [], "nearest": [], "mean": []}
    y = train.to(device=x.device, dtype=torch.float64)
    for start in range(0, x.shape[0], batch):
        xb = x[start : start + batch]
        log_p = torch.log_softmax(posterior_logits(xb, sigma, train), 1)
        p = log_p.exp()
        out["n_eff"].append(effective_images(log_p))
        out["proxy_fraction"].append(proxy_variance_fraction(xb, p, train))
        out["nearest"].append(y[log_p.argmax(1)])
        out["mean"].append(p @ y)
    return {k: torch.cat(v) for k, v in out.items()}


POSTERIOR_DISTANCES = (("network", "nearest"), ("network", "gaussian"), ("network", "empirical"), ("gaussian", "nearest"))


def posterior_rows(y: torch.Tensor, noise: torch.Tensor, sigmas, train: torch.Tensor, network: Denoiser,
                   gaussian: Denoiser) -> list[dict]:  # fmt: skip
    """posterior.csv rows of one checkpoint: at every σ, on the noisy held-out inputs x = y + σn,
    the effective number of images and the proxy-variance fraction (mean and 10/50/90% quantiles
    over inputs), and the mean per-input RMS between the answers of :data:`POSTERIOR_DISTANCES`:
    the network, the Gaussian model, the nearest training image (a denoiser that commits to one
    image) and the empirical posterior mean D_M."""
    rows = []
    for sigma in map(float, sigmas):
        x = y + sigma * noise
        post = empirical_posterior(x, sigma, train)
        answers = {"network": network(x, sigma).to(torch.float64), "gaussian": gaussian(x, sigma).to(torch.float64),
                   "nearest": post["nearest"], "empirical": post["mean"]}  # fmt: skip
        row = {"sigma": sigma, "n_inputs": int(x.shape[0]), "n_images": int(train.shape[0])}
        for name in ("n_eff", "proxy_fraction"):
            v = post[name].cpu().numpy()
            row |= {name: float(v.mean()), f"{name}_q10": float(np.quantile(v, 0.1)),
                    f"{name}_q50": float(np.quantile(v, 0.5)), f"{name}_q90": float(np.quantile(v, 0.9))}  # fmt: skip
        for a, b in POSTERIOR_DISTANCES:
            row[f"{a}_to_{b}"] = float(paired_rmse(answers[a], answers[b]).mean())
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- step counts


def solver_grid(solvers, steps) -> list[SamplerConfig]:
    """The EDM ρ-schedule samplers of the step-count study: every solver at every step count."""
    return [SamplerConfig(solver=s, steps=int(n)) for s in solvers for n in steps]


def final_samples(denoise: Denoiser, z: torch.Tensor, config: SamplerConfig) -> torch.Tensor:
    """One sampler's final samples from latents z (x_0 = σ_max z)."""
    return pf_ode_sampler(denoise, z * config.sigma_max, config.sigmas(), config.solver)


def step_count_samples(denoise: Denoiser, z: torch.Tensor, configs: list[SamplerConfig]) -> dict[tuple[str, int], torch.Tensor]:
    """{(solver, steps): final samples} from the same latents z for every config."""
    return {(c.solver, c.steps): final_samples(denoise, z, c) for c in configs}


def gaussian_step_limit(gauss, z: torch.Tensor, config: SamplerConfig) -> torch.Tensor:
    """What the discretized sampler converges to for the Gaussian model as steps → ∞: the exact
    flow from σ_max to σ_min, then the last (always Euler) step to 0, x = D_G(x(σ_min); σ_min)."""
    x = gauss.pf_ode(z * config.sigma_max, config.sigma_max, config.sigma_min)
    return gauss.denoise(x, config.sigma_min)


def step_count_rows(name: str, denoise: Denoiser, z: torch.Tensor, configs: list[SamplerConfig],
                    references: dict[str, torch.Tensor], train: torch.Tensor) -> list[dict]:  # fmt: skip
    """step_count.csv rows of one denoiser from latents z: for each sampler config and each of
    ``references`` (name -> samples from the same latents: a fine solve, or the Gaussian model's
    exact limit and exact map), NFE, the mean per-sample RMSE to it, and the samples'
    memorization measures against the training set."""
    rows = []
    for c in configs:
        x = final_samples(denoise, z, c)
        summary = generalization_summary(x, train)
        for ref_name, ref in references.items():
            rows.append({"denoiser": name, "solver": c.solver, "steps": c.steps, "nfe": nfe(c), "n_samples": int(x.shape[0]),
                         "reference": ref_name, "rmse": float(paired_rmse(x, ref).mean()),
                         "gl_score": summary["gl_score"], "memorized_fraction": summary["memorized_fraction"]})  # fmt: skip
    return rows


# references of the step-count table: a fine Heun solve from the same latents; the Gaussian
# model's exact limit of the discretized sampler and its exact map to σ = 0
FINE, EXACT_LIMIT, EXACT_MAP = "fine_heun", "exact_limit", "exact_map"


def _study_configs(settings: dict) -> list[SamplerConfig]:
    return solver_grid(settings["solvers"], settings["steps"])


def _fine_solve(denoise: Denoiser, z: torch.Tensor, settings: dict) -> dict[str, torch.Tensor]:
    return {FINE: final_samples(denoise, z, SamplerConfig(solver="heun", steps=int(settings["reference_steps"])))}


def network_step_count(denoise: Denoiser, train: torch.Tensor, seeds, dim: int, settings: dict, device="cpu") -> list[dict]:
    """step_count.csv rows of a checkpoint (``settings``: experiments.sampler_dynamics): every
    solver and step count against a Heun solve of ``reference_steps`` from the same latents."""
    z = seeded_latents(seeds, dim, device=device)
    return step_count_rows("network", denoise, z, _study_configs(settings), _fine_solve(denoise, z, settings), train)


def closed_form_step_count(gauss, train: torch.Tensor, seeds, dim: int, settings: dict, device="cpu") -> list[dict]:
    """step_count.csv rows of a training subset's own models: the Gaussian model against its exact
    limit :func:`gaussian_step_limit` (so its discretization error is known exactly) and its exact
    map to σ = 0, and the empirical-optimal denoiser against a fine Heun solve."""
    configs = _study_configs(settings)
    z = seeded_latents(seeds, dim, device=device)
    refs = {EXACT_LIMIT: gaussian_step_limit(gauss, z, configs[0]), EXACT_MAP: gauss.sample(z)}
    emp = lambda x, s: empirical_optimal_denoiser(x, s, train)  # noqa: E731
    return step_count_rows("gaussian", gauss.denoise, z, configs, refs, train) + step_count_rows(
        "empirical", emp, z, configs, _fine_solve(emp, z, settings), train
    )


# --------------------------------------------------------------------------- coarse to fine


def trajectory_dimensionality(denoised: torch.Tensor, components: int = 5) -> torch.Tensor:
    """Share of a trajectory's variance in its top principal components: for each trajectory b
    of the per-step denoised estimates (steps, B, d), the singular values s of its steps centred
    over the steps, cumsum(s²)/Σ s² for k = 1 … ``components``. Returns (B, components)."""
    x = denoised.to(torch.float64).permute(1, 0, 2)
    x = x - x.mean(1, keepdim=True)
    s2 = torch.linalg.svdvals(x) ** 2
    frac = s2.cumsum(1) / s2.sum(1, keepdim=True).clamp_min(1e-300)
    k = min(components, frac.shape[1])
    return torch.cat([frac[:, :k], frac[:, -1:].expand(-1, components - k)], 1)


def settling_sigmas(denoised: torch.Tensor, sigmas, mean: torch.Tensor, eigenvectors: torch.Tensor,
                    tol: float = 0.1) -> torch.Tensor:  # fmt: skip
    """The noise level at which each eigenmode of the training set commits: c_k(t) = u_kᵀ(D(x_t; σ_t) − μ)
    along a trajectory (per-step denoised estimates (steps, B, d) at ``sigmas``), σ_settle the
    σ_t of the first step from which |c_k(t') − c_k(T)| ≤ tol·|c_k(T)| for every later t' (T the
    last step). For the Gaussian model on its exact flow c_k(t)/c_k(T) = √(λ_k/(λ_k+σ_t²)), so
    σ_settle = √λ_k·√(1/(1−tol)² − 1) (0.48 √λ_k at tol = 0.1): modes of larger variance commit
    earlier. Returns (B, K)."""
    c = (denoised.to(torch.float64) - mean.to(torch.float64)) @ eigenvectors.to(torch.float64)  # (steps, B, K)
    final = c[-1]
    off = (c - final).abs() > tol * final.abs()  # (steps, B, K): not yet within tolerance
    # the last step still off (−1 when none is): the mode settles at the step after it
    steps = torch.arange(c.shape[0]).view(-1, 1, 1).expand_as(off)
    last_off = torch.where(off, steps, torch.full_like(steps, -1)).max(0).values
    sig = torch.as_tensor(np.asarray(sigmas, dtype=float)[: c.shape[0]], dtype=torch.float64)
    return sig[(last_off + 1).clamp_max(c.shape[0] - 1)]


def sampler_states(denoise: Denoiser, z: torch.Tensor, config: SamplerConfig) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Every state x_t of one sampler run from latents z (x_0 = σ_max z, the last state the
    sample) and the per-step denoised estimates D(x_t; σ_t) (steps, B, d)."""
    sigmas = config.sigmas()
    xs, dens = [z * float(sigmas[0])], []
    for i in range(len(sigmas) - 1):
        x, d = pf_ode_sampler(denoise, xs[-1], sigmas[i : i + 2], config.solver, return_denoised=True)
        xs.append(x)
        dens.append(d[0])
    return xs, torch.stack(dens)


def perturbation_rows(name: str, denoise: Denoiser, z: torch.Tensor, config: SamplerConfig, train: torch.Tensor,
                      eta: float, seed: int) -> list[dict]:  # fmt: skip
    """When content is decided: at every step t, x_t + η·σ_t·ε (ε standard normal from ``seed``, the
    same for every t and model: a fraction η of the noise present), the rest of the run
    finished; rows of the mean per-sample RMSE between the perturbed and the unperturbed final
    samples and the share whose nearest training image changes."""
    from .memorization import nearest_neighbours

    xs, _ = sampler_states(denoise, z, config)
    sigmas = config.sigmas()
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(z)
    _, nn0 = nearest_neighbours(xs[-1], train, k=1)
    rows = []
    for t in range(len(sigmas) - 1):
        x = pf_ode_sampler(denoise, xs[t] + eta * float(sigmas[t]) * eps, sigmas[t:], config.solver)
        _, nn = nearest_neighbours(x, train, k=1)
        rows.append({"denoiser": name, "step": t, "sigma": float(sigmas[t]), "eta": eta, "n_samples": int(z.shape[0]),
                     "rmse_change": float(paired_rmse(x, xs[-1]).mean()),
                     "nn_changed": float((nn[:, 0] != nn0[:, 0]).double().mean())})  # fmt: skip
    return rows


def commitment_rows(name: str, denoise: Denoiser, gauss, train: torch.Tensor, seeds, dim: int, settings: dict,
                    device="cpu") -> dict[str, list[dict]]:  # fmt: skip
    """The three coarse-to-fine tables of one denoiser (``settings``: experiments.sampler_dynamics)
    on ``commitment_sampler`` runs from the same latents: ``trajectory_dimension`` (share of each
    trajectory's variance in its top 1 … ``components`` principal components: mean, 10% and 90%
    over trajectories), ``trajectory_modes`` (for the top ``modes`` eigenmodes of the training
    subset's covariance, the σ at which the mode's coefficient settles, quartiles over
    trajectories, next to √λ_k) and ``perturbation`` (:func:`perturbation_rows`)."""
    from .schedules import PRESETS

    config = PRESETS[settings["commitment_sampler"]]
    z = seeded_latents(seeds, dim, device=device)
    _, den = sampler_states(denoise, z, config)
    frac = trajectory_dimensionality(den, settings["components"]).cpu().numpy()
    dims = [{"denoiser": name, "components": k + 1, "variance_fraction": float(frac[:, k].mean()),
             "q10": float(np.quantile(frac[:, k], 0.1)), "q90": float(np.quantile(frac[:, k], 0.9))}
            for k in range(frac.shape[1])]  # fmt: skip
    k = min(settings["modes"], gauss.eigenvalues.numel())
    settle = settling_sigmas(den, config.sigmas()[:-1], gauss.mean, gauss.eigenvectors[:, :k], settings["settle_tol"]).cpu().numpy()
    lam = gauss.eigenvalues[:k].cpu().numpy()
    modes = [{"denoiser": name, "k": i + 1, "eigenvalue": float(lam[i]), "sqrt_eigenvalue": float(np.sqrt(lam[i])),
              "settle_q25": float(np.quantile(settle[:, i], 0.25)), "settle_sigma": float(np.median(settle[:, i])),
              "settle_q75": float(np.quantile(settle[:, i], 0.75))} for i in range(k)]  # fmt: skip
    pert = perturbation_rows(name, denoise, z, config, train, settings["perturbation"], settings["perturbation_seed"])
    return {"trajectory_dimension": dims, "trajectory_modes": modes, "perturbation": pert}
