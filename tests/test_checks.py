"""The self-checks accept correct solutions written several ways and name each typical mistake."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

from replearn import checks
from replearn.models import VAE, kl_bernoulli


def stub(*args):
    raise NotImplementedError("写好这个函数")


def verdict(check, fn, capsys) -> tuple[bool, str]:
    """What the check returns, and what it prints without its line breaks."""
    passed = check(fn)
    return passed, capsys.readouterr().out.replace("\n", "")


# --- reconstruction loss: fn(x, x_hat) -> scalar ------------------------------------------------

RECON_CORRECT = {
    "reference": lambda x, x_hat: (x_hat - x).pow(2).sum(-1).mean(),
    "mse_sum_over_batch_size": lambda x, x_hat: F.mse_loss(x_hat, x, reduction="sum") / x.shape[0],
    "torch_functions": lambda x, x_hat: torch.mean(torch.sum((x - x_hat) ** 2, dim=1)),
    "squared_norm": lambda x, x_hat: torch.linalg.vector_norm(x - x_hat, dim=1).pow(2).mean(),
    "one_element": lambda x, x_hat: ((x - x_hat) ** 2).sum(1).mean().reshape(1),
}

RECON_WRONG = {
    "batch_sum": (lambda x, x_hat: ((x_hat - x) ** 2).sum(), "对批次求了和"),
    "mse_default": (lambda x, x_hat: F.mse_loss(x_hat, x), "对像素取了平均"),
    "half": (lambda x, x_hat: 0.5 * ((x_hat - x) ** 2).sum(-1).mean(), "½"),
    "sign": (lambda x, x_hat: -((x_hat - x) ** 2).sum(-1).mean(), "符号反了"),
    "per_image": (lambda x, x_hat: ((x_hat - x) ** 2).sum(-1), "形状不对"),
    "no_pixel_sum": (lambda x, x_hat: (x_hat - x) ** 2, "对像素求和"),
    "not_squared": (lambda x, x_hat: (x_hat - x).norm(dim=1).mean(), "平方"),
    "absolute": (lambda x, x_hat: (x_hat - x).abs().sum(-1).mean(), "绝对误差"),
    "factor_3": (lambda x, x_hat: 3 * ((x_hat - x) ** 2).sum(-1).mean(), "参考值的 3 倍"),
    "item": (lambda x, x_hat: ((x_hat - x) ** 2).sum(-1).mean().item(), ".item()"),
    "detached": (lambda x, x_hat: ((x_hat.detach() - x) ** 2).sum(-1).mean(), "计算图"),
    "no_return": (lambda x, x_hat: None, "return"),
    "tuple": (lambda x, x_hat: (((x_hat - x) ** 2).sum(-1).mean(), {}), "tuple"),
    "crash": (lambda x, x_hat: x.reshape(3, -1).sum(), "RuntimeError"),
    "sparse": (lambda x, x_hat: ((x_hat - x) ** 2).sum(-1).mean().to_sparse(), "无法把你的结果与参考实现比较"),
}


def test_crash_shows_the_failing_line(capsys):
    def reconstruction_loss(x, x_hat):
        diff = x - x_hat
        return diff.view(7, 7).sum()

    passed, out = verdict(checks.check_reconstruction_loss, reconstruction_loss, capsys)
    assert not passed and "RuntimeError" in out and "diff.view(7, 7)" in out, out


# --- sparsity penalty: fn(h, rho) -> scalar -----------------------------------------------------

def sparsity_by_hand(h, rho):
    rho_hat = h.mean(dim=0)
    return torch.sum(rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat)))


def sparsity_torch_distributions(h, rho):
    rho_hat = h.mean(0)
    return kl_divergence(Bernoulli(probs=torch.full_like(rho_hat, rho)), Bernoulli(probs=rho_hat)).sum()


def sparsity_xlogy(h, rho):
    rho = torch.tensor(rho)
    rho_hat = h.sum(0) / h.shape[0]
    return (torch.xlogy(rho, rho) - torch.xlogy(rho, rho_hat)
            + torch.xlogy(1 - rho, 1 - rho) - torch.xlogy(1 - rho, 1 - rho_hat)).sum()


SPARSITY_CORRECT = {
    "reference": lambda h, rho: kl_bernoulli(rho, h.mean(0)).sum(),
    "by_hand": sparsity_by_hand,
    "torch_distributions": sparsity_torch_distributions,
    "xlogy": sparsity_xlogy,
}

SPARSITY_WRONG = {
    "mean_over_units": (lambda h, rho: kl_bernoulli(rho, h.mean(0)).mean(), "对隐单元取了平均"),
    "swapped": (lambda h, rho: kl_bernoulli(h.mean(0), torch.tensor(rho)).sum(), "顺序反了"),
    "per_image": (lambda h, rho: kl_bernoulli(rho, h).sum(1).mean(), "分别算了 KL"),
    "wrong_axis": (lambda h, rho: kl_bernoulli(rho, h.mean(1)).sum(), "h.mean(1)"),
    "sign": (lambda h, rho: -kl_bernoulli(rho, h.mean(0)).sum(), "符号反了"),
    "one_term": (lambda h, rho: (rho * torch.log(rho / h.mean(0))).sum(), "少了 (1−ρ)"),
    "per_unit": (lambda h, rho: kl_bernoulli(rho, h.mean(0)), "对 j 求和"),
    "rho_hat_sum": (lambda h, rho: (rho * torch.log(rho / h.sum(0))
                                    + (1 - rho) * torch.log((1 - rho) / (1 - h.sum(0)))).sum(),
                    "NaN"),
}


# --- corrupt: fn(x, noise_std, eps) -> x_tilde --------------------------------------------------

def corrupt_in_place(x, noise_std, eps):
    return x.add_(noise_std * eps).clamp_(0, 1)


CORRUPT_CORRECT = {
    "reference": lambda x, noise_std, eps: (x + noise_std * eps).clamp(0, 1),
    "torch_clamp": lambda x, noise_std, eps: torch.clamp(x + eps * noise_std, min=0.0, max=1.0),
    "min_max": lambda x, noise_std, eps: torch.minimum(torch.maximum(x + noise_std * eps,
                                                                      torch.zeros_like(x)),
                                                        torch.ones_like(x)),
    "clip": lambda x, noise_std, eps: (x + noise_std * eps).clip(0, 1),
}

CORRUPT_WRONG = {
    "no_clip": (lambda x, noise_std, eps: x + noise_std * eps, "截断到 [0, 1]"),
    "no_scale": (lambda x, noise_std, eps: (x + eps).clamp(0, 1), "没有乘以 noise_std"),
    "variance": (lambda x, noise_std, eps: (x + noise_std ** 2 * eps).clamp(0, 1), "平方（方差）"),
    "own_noise": (lambda x, noise_std, eps: (x + noise_std * torch.randn_like(x)).clamp(0, 1),
                  "自己生成了随机噪声"),
    "in_place": (corrupt_in_place, "原地修改"),
    "sign": (lambda x, noise_std, eps: (x - noise_std * eps).clamp(0, 1), "符号反了"),
    "noise_only": (lambda x, noise_std, eps: (noise_std * eps).clamp(0, 1), "噪声本身"),
    "flattened": (lambda x, noise_std, eps: (x + noise_std * eps).clamp(0, 1).flatten(), "形状不对"),
}


# --- denoising loss: fn(model, x, eps) -> scalar ------------------------------------------------

def denoising_by_hand(model, x, eps):
    x_tilde = model.corrupt(x, eps)  # (B, D)
    x_hat = model(x_tilde)
    return ((x_hat - x) ** 2).sum(dim=1).mean()


def denoising_functional(model, x, eps):
    x_tilde = torch.clamp(x + model.noise_std * eps, 0, 1)
    return F.mse_loss(model.decode(model.encode(x_tilde)), x, reduction="sum") / len(x)


DENOISING_CORRECT = {
    "reference": lambda model, x, eps: model.loss(x, noise=eps)[0],
    "by_hand": denoising_by_hand,
    "functional": denoising_functional,
}


def sse(a, b):
    return ((a - b) ** 2).sum(-1)


DENOISING_WRONG = {
    "noise_on_target": (lambda m, x, eps: sse(m(x), m.corrupt(x, eps)).mean(), "噪声加在了目标上"),
    "noisy_target": (lambda m, x, eps: sse(m(m.corrupt(x, eps)), m.corrupt(x, eps)).mean(),
                     "与加噪的 x̃ 比较"),
    "no_noise": (lambda m, x, eps: sse(m(x), x).mean(), "没有加噪声"),
    "no_clip": (lambda m, x, eps: sse(m(x + m.noise_std * eps), x).mean(), "没有截断"),
    "batch_sum": (lambda m, x, eps: sse(m(m.corrupt(x, eps)), x).sum(), "对批次求了和"),
    "mse_default": (lambda m, x, eps: F.mse_loss(m(m.corrupt(x, eps)), x), "对像素取了平均"),
    "ignores_eps": (lambda m, x, eps: m.loss(x)[0], "使用传入的 eps"),
    "hard_coded_std": (lambda m, x, eps: sse(m((x + 0.3 * eps).clamp(0, 1)), x).mean(), "写死成了 0.3"),
    "loss_and_parts": (lambda m, x, eps: m.loss(x, noise=eps), "tuple"),
    "per_image": (lambda m, x, eps: sse(m(m.corrupt(x, eps)), x), "对批次取平均"),
}


# --- Gaussian KL: fn(mu, logvar) -> (B,) --------------------------------------------------------

def kl_from_std(mu, logvar):
    std = torch.exp(0.5 * logvar)
    return 0.5 * torch.sum(mu ** 2 + std ** 2 - 2 * torch.log(std) - 1, dim=1)


KL_CORRECT = {
    "reference": VAE.kl,
    "pytorch_examples_per_image": lambda mu, logvar: -0.5 * torch.sum(
        1 + logvar - mu.pow(2) - logvar.exp(), dim=1),
    "torch_distributions": lambda mu, logvar: kl_divergence(
        Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1),
    "from_std": kl_from_std,
}

KL_WRONG = {
    "no_half": (lambda mu, lv: (mu ** 2 + lv.exp() - lv - 1).sum(-1), "少了因子 ½"),
    "sign": (lambda mu, lv: 0.5 * (1 + lv - mu ** 2 - lv.exp()).sum(-1), "符号反了"),
    "batch_sum": (lambda mu, lv: -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp()), "不要对批次求和"),
    "batch_mean": (lambda mu, lv: VAE.kl(mu, lv).mean(), "形状不对"),
    "logvar_as_std": (lambda mu, s: 0.5 * (mu ** 2 + s ** 2 - torch.log(s ** 2) - 1).sum(-1),
                      "当成了标准差"),
    "std_for_var": (lambda mu, lv: 0.5 * (mu ** 2 + (0.5 * lv).exp() - lv - 1).sum(-1), "σ² 项写成了 σ"),
    "log_of_logvar": (lambda mu, lv: 0.5 * (mu ** 2 + lv - torch.log(lv) - 1).sum(-1), "NaN"),
    "no_latent_sum": (lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - lv - 1), "对潜变量的 d 个维度求和"),
    "latent_mean": (lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - lv - 1).mean(-1), "取了平均"),
    "no_minus_one": (lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - lv).sum(-1), "常数项 −1"),
}


# --- reparameterize: fn(mu, logvar, eps) -> z ---------------------------------------------------

REPARAM_CORRECT = {
    "reference": lambda mu, logvar, eps: VAE(latent_dim=2).reparameterize(mu, logvar, eps),
    "sqrt_of_variance": lambda mu, logvar, eps: mu + torch.exp(logvar).sqrt() * eps,
    "addcmul": lambda mu, logvar, eps: torch.addcmul(mu, torch.exp(0.5 * logvar), eps),
    "divide": lambda mu, logvar, eps: mu + eps * logvar.div(2).exp(),
}

REPARAM_WRONG = {
    "logvar_as_std": (lambda mu, lv, eps: mu + lv * eps, "当成了标准差"),
    "variance": (lambda mu, lv, eps: mu + lv.exp() * eps, "用了方差"),
    "no_mu": (lambda mu, lv, eps: (0.5 * lv).exp() * eps, "忘了加上 mu"),
    "own_noise": (lambda mu, lv, eps: mu + (0.5 * lv).exp() * torch.randn_like(mu), "自己生成了随机噪声"),
    "detached": (lambda mu, lv, eps: (mu + (0.5 * lv).exp() * eps).detach(), "计算图"),
    "mu_detached": (lambda mu, lv, eps: mu.detach() + (0.5 * lv).exp() * eps, "对 mu 没有梯度"),
    "sqrt_logvar": (lambda mu, lv, eps: mu + lv.sqrt() * eps, "NaN"),
    "minus": (lambda mu, lv, eps: mu - (0.5 * lv).exp() * eps, "符号反了"),
    "summed": (lambda mu, lv, eps: (mu + (0.5 * lv).exp() * eps).sum(-1), "形状不对"),
}


# --- IWAE bound: fn(model, x, k) -> (B,) --------------------------------------------------------

def log_weights_loop(model, x, k, prior=True):
    """(K, B) log-weights, one sample at a time, with the log-densities written out."""
    mu, logvar = model.encode(x)
    rows = []
    for _ in range(k):
        z = model.reparameterize(mu, logvar)
        log_p_z = -0.5 * (z ** 2).sum(-1) if prior else 0  # -d/2 log 2 pi cancels against log q
        log_q = -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar).sum(-1)
        rows.append(model.log_likelihood(x, z) + log_p_z - log_q)
    return torch.stack(rows)


def iwae_loop(model, x, k):
    return torch.logsumexp(log_weights_loop(model, x, k), dim=0) - math.log(k)


def iwae_batch_first(model, x, k):
    """(B, K) layout with torch.distributions."""
    mu, logvar = model.encode(x)
    q = Normal(mu.unsqueeze(1), (0.5 * logvar).exp().unsqueeze(1))  # batch shape (B, 1, d)
    z = q.rsample(torch.Size([k])).squeeze(2).transpose(0, 1)  # (B, K, d)
    log_p_z = Normal(0.0, 1.0).log_prob(z).sum(-1)  # (B, K)
    log_q = q.log_prob(z).sum(-1)  # (B, K)
    x_rep = x.unsqueeze(1).expand(-1, k, -1).reshape(-1, x.shape[1])  # (B K, D)
    log_lik = model.log_likelihood(x_rep, z.reshape(-1, z.shape[-1])).view(len(x), k)
    return torch.logsumexp(log_lik + log_p_z - log_q, dim=1) - math.log(k)


IWAE_CORRECT = {
    "reference": VAE.iwae_bound,
    "loop": iwae_loop,
    "batch_first": iwae_batch_first,
}


def test_iwae_reference_is_the_models_bound():
    model, x = checks._iwae_model(), torch.rand(4, 784).bernoulli()
    eps = torch.randn(3, 4, model.latent_dim)
    log_w = torch.stack([model.iwae_bound(x, 1, eps=e[None]) for e in eps])
    torch.testing.assert_close(torch.logsumexp(log_w, 0) - math.log(3), model.iwae_bound(x, 3, eps=eps))

IWAE_WRONG = {
    "elbo": (lambda m, x, k: log_weights_loop(m, x, k).mean(0), "ELBO"),
    "no_log_k": (lambda m, x, k: torch.logsumexp(log_weights_loop(m, x, k), 0), "少了 −log K"),
    "sign": (lambda m, x, k: -iwae_loop(m, x, k), "符号反了"),
    "one_sample": (lambda m, x, k: log_weights_loop(m, x, 1)[0], "只用了一个样本"),
    "exp_then_log": (lambda m, x, k: log_weights_loop(m, x, k).exp().mean(0).log(), "logsumexp"),
    "batch_mean": (lambda m, x, k: iwae_loop(m, x, k).mean(), "不要对批次求和"),
    "wrong_axis": (lambda m, x, k: torch.logsumexp(log_weights_loop(m, x, k), 1) - math.log(k),
                   "logsumexp 的维度不对"),
    "no_prior": (lambda m, x, k: torch.logsumexp(log_weights_loop(m, x, k, prior=False), 0)
                 - math.log(k), "平均值与参考实现不同"),
}


# --- each check: the right answers pass, each typical mistake fails with its own message -----------

CASES = {  # check: (correct implementations by name, (mistake, words the verdict must contain) by name)
    checks.check_reconstruction_loss: (RECON_CORRECT, RECON_WRONG),
    checks.check_sparsity_penalty: (SPARSITY_CORRECT, SPARSITY_WRONG),
    checks.check_corrupt: (CORRUPT_CORRECT, CORRUPT_WRONG),
    checks.check_denoising_loss: (DENOISING_CORRECT, DENOISING_WRONG),
    checks.check_gaussian_kl: (KL_CORRECT, KL_WRONG),
    checks.check_reparameterize: (REPARAM_CORRECT, REPARAM_WRONG),
    checks.check_iwae_bound: (IWAE_CORRECT, IWAE_WRONG),
}
ACCEPT = [pytest.param(check, fn, id=f"{check.__name__}-{name}")
          for check, (correct, _) in CASES.items() for name, fn in correct.items()]
REJECT = [pytest.param(check, fn, message, id=f"{check.__name__}-{name}")
          for check, (_, wrong) in CASES.items() for name, (fn, message) in wrong.items()]


@pytest.mark.parametrize("check, fn", ACCEPT)
def test_accepts_correct_implementations(check, fn, capsys):
    passed, out = verdict(check, fn, capsys)
    assert passed and out.startswith("通过"), out


@pytest.mark.parametrize("check, fn, message", REJECT)
def test_rejects_each_mistake_by_name(check, fn, message, capsys):
    passed, out = verdict(check, fn, capsys)
    assert not passed and out.startswith("未通过") and message in out, out


def test_every_check_has_cases():
    assert {c.__name__ for c in CASES} == set(checks.__all__)
    assert all(len(correct) >= 3 for correct, _ in CASES.values())  # the reference and two more


# --- every check --------------------------------------------------------------------------------

ALL_CHECKS = [getattr(checks, name) for name in checks.__all__]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=checks.__all__)
def test_stub_reports_not_done(check, capsys):
    passed, out = verdict(check, stub, capsys)
    assert passed is False and out.startswith("尚未完成") and "NotImplementedError" in out, out


@pytest.mark.parametrize("check", ALL_CHECKS, ids=checks.__all__)
def test_never_raises_and_leaves_the_global_rng_alone(check, capsys):
    state = torch.get_rng_state()
    passed, out = verdict(check, "not a function", capsys)
    assert passed is False and "TypeError" in out, out
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=checks.__all__)
def test_checks_return_bool(check):
    assert check.__annotations__["return"] == "bool" and check.__doc__


def test_long_verdicts_wrap_without_losing_a_character():
    text = "未通过：去噪自编码器的损失。" + "应把加噪的 x̃ = model.corrupt(x, eps) 送进模型，" * 4
    wrapped = checks._wrap(text, width=40)
    assert wrapped.replace("\n", "") == text and wrapped.count("\n") >= 4
    assert "model.corrupt(x, eps)" in wrapped  # code is never broken
    assert not any(line.startswith(("，", "。")) for line in wrapped.splitlines())
