"""Self-checking exercises: run the reader's function on random inputs against the book's own code.

Each `check_*` calls the reader's function on inputs drawn from a fixed generator (CPU,
deterministic), compares the result with the reference implementation from `replearn.models`
and prints one verdict in Chinese:

- 通过：…… when every result matches;
- 未通过：…… naming what differs: the shape, a constant factor (the missing ½ of the Gaussian
  KL), the sign, a sum over the batch where the book takes the mean, log-variance used as a
  standard deviation, noise put on the target instead of the input, a missing clip, ...;
- 尚未完成：…… while the function still raises NotImplementedError (the exercise stub).

A check returns True only on a pass and never raises, so a student notebook runs top to bottom:

    from replearn.checks import check_gaussian_kl
    check_gaussian_kl(gaussian_kl)   # prints 通过：…… and returns True

The reader's global random state is left untouched: each check runs inside `fork_rng` and seeds
the global generator itself, so a function that draws its own noise gives the same verdict on
every run.
"""
from __future__ import annotations

import functools
import math
import os
import traceback
import unicodedata
from typing import Callable

import torch

from .models import VAE, DenoisingAutoencoder, kl_bernoulli

__all__ = [
    "check_reconstruction_loss", "check_sparsity_penalty", "check_corrupt",
    "check_denoising_loss", "check_gaussian_kl", "check_reparameterize", "check_iwae_bound",
]

D = 784  # image size of the book's models; reader functions may rely on it
RTOL, ATOL = 1e-4, 1e-5  # float32 sums over 784 pixels agree to ~1e-6 whatever the order


class _Verdict(Exception):
    """Ends a check early; the message is what the reader reads."""


class _NotDone(_Verdict):
    pass


class _Failed(_Verdict):
    pass


def _check(task: str, call: str):
    """Turn `body(fn) -> pass message` into a check that prints a verdict and returns a bool.

    task names the exercise ("重构误差"), call shows how the check calls the reader's function.
    """
    def decorate(body: Callable[[Callable], str]) -> Callable[[Callable], bool]:
        @functools.wraps(body)
        def check(fn: Callable) -> bool:  # body's name and docstring, this signature
            try:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)
                    with torch.enable_grad():
                        detail = body(fn)
            except _NotDone:
                print(_wrap(f"尚未完成：{task}。{call} 还在抛出 NotImplementedError；"
                            "写好这个函数，再运行这个单元格。"))
                return False
            except _Failed as verdict:
                print(_wrap(f"未通过：{task}。{verdict}"))
                return False
            except Exception as error:  # a result so unusual that comparing it failed
                print(_wrap(f"未通过：{task}。无法把你的结果与参考实现比较（{type(error).__name__}: "
                            f"{error}）。请确认 {call} 返回题目要求的张量。"))
                return False
            print(_wrap(f"通过：{task}。{detail}"))
            return True
        check.__annotations__ = {"fn": "Callable", "return": "bool"}
        return check
    return decorate


def _wrap(text: str, width: int = 72) -> str:
    """Break text into lines of about `width` columns (a CJK character takes two). Lines break
    only next to a CJK character, never inside code or a number, and not before closing
    punctuation; so removing the line breaks gives back the text. Book pages do not wrap output."""
    def wide(ch: str) -> bool:
        return unicodedata.east_asian_width(ch) in "WF"

    lines, line, cols = [], "", 0
    for ch in text:
        if ch == "\n":
            lines.append(line)
            line, cols = "", 0
            continue
        if (cols + 1 + wide(ch) > width and line and (wide(ch) or wide(line[-1]))
                and ch not in "，。、：；）！？”』」"):
            lines.append(line)
            line, cols = "", 0
        line += ch
        cols += 1 + wide(ch)
    return "\n".join(lines + [line])


def _call(fn: Callable, *args):
    """fn(*args), turning the reader's exceptions into verdicts and refusing in-place edits."""
    before = [a.detach().clone() if torch.is_tensor(a) else None for a in args]
    try:
        out = fn(*args)
    except NotImplementedError:
        raise _NotDone() from None
    except Exception as error:  # any mistake of the reader's becomes a message, never a crash
        raise _Failed(f"运行你的函数时出错 —— {type(error).__name__}: {error}{_where(error)}") from None
    for name, arg, old in zip("第一 第二 第三".split(), args, before):
        if old is not None and not torch.equal(arg.detach(), old):
            raise _Failed(f"你的函数原地修改了{name}个参数（例如 x += …、x.clamp_(…)）。"
                          "请计算一个新张量并返回它，不要改动传入的张量。")
    return out


def _where(error: Exception) -> str:
    """The reader's own line where the error happened (the deepest frame outside torch)."""
    library = (os.path.dirname(torch.__file__), os.path.dirname(__file__))
    frames = [f for f in traceback.extract_tb(error.__traceback__)[1:]
              if not f.filename.startswith(library) and f.line]
    return f"\n出错的一行：{frames[-1].line}" if frames else ""


def _tensor(out, want: str) -> torch.Tensor:
    """The reader's result as a tensor, or a verdict saying what came back instead."""
    if torch.is_tensor(out):
        return out
    if out is None:
        raise _Failed("你的函数没有返回任何值（忘了写 return？）。")
    if isinstance(out, (tuple, list)):
        raise _Failed(f"你的函数返回了 {type(out).__name__}（{len(out)} 个元素），"
                      f"应该只返回一个张量：{want}。")
    raise _Failed(f"你的函数返回了 {type(out).__name__}，应该返回 torch 张量：{want}。"
                  "不要用 .item()、.numpy() 或 float(…) 把结果转换成数或 NumPy 数组。")


def _shape(out: torch.Tensor, ref: torch.Tensor, hints: dict[tuple, str]) -> torch.Tensor:
    """out with ref's shape (a 1-element tensor counts as a scalar), or a verdict on its shape."""
    if ref.dim() == 0 and out.numel() == 1:
        return out.reshape(())
    if out.shape != ref.shape:
        shape = tuple(out.shape)
        hint = hints.get(shape, "")
        raise _Failed(f"形状不对：应为 {_show(ref.shape)}，你的结果是 {_show(shape)}。{hint}")
    return out


def _show(shape) -> str:
    shape = tuple(shape)
    return "标量 ()" if shape == () else str(shape)


def _differentiable(out: torch.Tensor, what: str) -> None:
    if not out.requires_grad:
        raise _Failed(f"结果与 {what} 断开了计算图，无法求梯度。不要用 .item()、.numpy()、"
                      ".detach() 或 torch.tensor(…) 重新包装中间结果。")


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=RTOL, atol=ATOL)


class _Trials:
    """Results of the reader and the reference over several random inputs, plus wrong variants.

    `wrong` maps a message to what a typical mistake would have returned on the same inputs;
    the verdict names the first mistake that reproduces the reader's numbers exactly. Values
    are judged before gradients: a wrong formula is the more useful thing to hear about.
    """

    def __init__(self):
        self.raw: list[torch.Tensor] = []
        self.outs: list[torch.Tensor] = []
        self.refs: list[torch.Tensor] = []
        self.wrong: dict[str, list[torch.Tensor]] = {}

    def add(self, out: torch.Tensor, ref: torch.Tensor, wrong: dict[str, torch.Tensor]) -> None:
        self.raw.append(out)
        self.outs.append(out.detach().double().flatten())
        self.refs.append(ref.detach().double().flatten())
        for message, value in wrong.items():
            self.wrong.setdefault(message, []).append(value.detach().double().flatten())

    def verdict(self, nan_hint: str = "", grad_of: str = "") -> None:
        """Return if the reader's numbers match the reference (and, if `grad_of` names the
        inputs, carry their gradient), else raise the best diagnosis."""
        out, ref = torch.cat(self.outs), torch.cat(self.refs)
        if not torch.isfinite(out).all() and torch.isfinite(ref).all():
            raise _Failed(f"结果中出现了 NaN 或无穷大。{nan_hint}")
        if _close(out, ref):
            for raw in self.raw if grad_of else ():
                _differentiable(raw, grad_of)
            return
        for message, values in self.wrong.items():
            if _close(out, torch.cat(values)):
                raise _Failed(message)
        raise _Failed(_difference(out, ref))


def _difference(out: torch.Tensor, ref: torch.Tensor) -> str:
    """Describe a mismatch no known mistake explains: a constant factor, an offset, or values."""
    big = ref.abs() > 1e-3
    if big.sum() >= 2:
        ratio = out[big] / ref[big]
        r = ratio.mean().item()
        if (ratio - r).abs().max() < 1e-4 * max(1, abs(r)):
            return (f"你的结果恰好是参考值的 {r:.4g} 倍：公式里多了或少了一个常数因子"
                    "（检查 ½、2、求和还是求平均）。")
    if out.numel() >= 2:
        shift = out - ref
        s = shift.mean().item()
        if (shift - s).abs().max() < 1e-4 * max(1, abs(s)):
            return f"你的结果比参考值恰好多了一个常数 {s:.4g}：检查公式里的常数项。"
    i = (out - ref).abs().argmax().item()
    return (f"结果与参考实现不同（最大相差 {(out - ref).abs().max().item():.4g}：第 {i} 个数，"
            f"你的 {out[i].item():.6g}，参考 {ref[i].item():.6g}）。对照书中的公式逐项检查。")


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(g: torch.Generator, batch: int) -> torch.Tensor:
    """MNIST-like rows in [0, 1]: many exact 0s, some exact 1s, grey values between."""
    return (0.6 * torch.randn(batch, D, generator=g) - 0.1).clamp(0, 1)  # (B, D)


def _same_twice(fn: Callable, args_a: tuple, args_b: tuple, what: str) -> torch.Tensor:
    """Call fn on two copies of the same inputs; a function that draws its own noise differs."""
    first = _tensor(_call(fn, *args_a), what)
    second = _tensor(_call(fn, *args_b), what)
    if first.shape == second.shape and not torch.equal(first.detach().nan_to_num(),
                                                       second.detach().nan_to_num()):
        raise _Failed("对同样的输入调用两次，结果却不同：你的函数自己生成了随机噪声。"
                      "请使用传入的 eps（不要调用 torch.randn / randn_like），"
                      "这样结果可以复现，也能和参考实现比较。")
    return first


# --- the autoencoder ---------------------------------------------------------------------------

@_check("重构误差", "reconstruction_loss(x, x_hat)")
def check_reconstruction_loss(fn: Callable) -> str:
    """fn(x, x_hat) -> scalar: batch mean of the per-image summed squared error, eq. (ae-min)."""
    g, trials = _generator(), _Trials()
    for batch in (5, 8, 13):
        x = _images(g, batch)
        x_hat = torch.sigmoid(torch.randn(batch, D, generator=g)).requires_grad_()
        out = _tensor(_call(fn, x.clone(), x_hat), "批平均的重构误差（标量）")
        ref = (x_hat - x).pow(2).sum(-1).mean()  # eq. (ae-min)
        out = _shape(out, ref, {
            (batch,): "这是每张图像的误差，还要对批次取平均 .mean()。",
            (batch, D): "还要对像素求和 .sum(-1)，再对批次取平均 .mean()。",
        })
        per_image = (x_hat - x).pow(2).sum(-1)  # (B,)
        trials.add(out, ref, {
            "你对批次求了和，本书对批次取平均：每张图像的误差之和再除以批大小 B。":
                per_image.sum(),
            "你对像素取了平均（F.mse_loss 的默认 reduction='mean' 正是如此），"
            "本书对每张图像的 784 个像素求和，再对批次取平均。":
                (x_hat - x).pow(2).mean(),
            "你对像素取了平均、对批次求了和，正好反了：应对像素求和、对批次取平均。":
                (x_hat - x).pow(2).mean(-1).sum(),
            "结果多了一个因子 ½：本书的重构误差是 ‖x − x̂‖²，没有 ½。": per_image.mean() / 2,
            "结果的符号反了：误差是平方和，不会是负数。": -per_image.mean(),
            "你用的是距离 ‖x − x̂‖，而不是它的平方 ‖x − x̂‖²。": per_image.sqrt().mean(),
            "你用的是绝对误差 |x − x̂|，本书用平方误差 (x − x̂)²。":
                (x_hat - x).abs().sum(-1).mean(),
        })
    trials.verdict(grad_of="x_hat")
    return "在 3 个随机批次上与参考实现一致。"


# --- the sparse autoencoder --------------------------------------------------------------------

@_check("稀疏惩罚", "sparsity_penalty(h, rho)")
def check_sparsity_penalty(fn: Callable) -> str:
    """fn(h, rho) -> scalar: sum_j KL(rho || rho_hat_j), rho_hat = h.mean(0), eq. (sparse-kl)."""
    g, trials = _generator(), _Trials()
    for batch, m, rho in ((20, 16, 0.05), (32, 24, 0.1), (9, 40, 0.2)):
        h = torch.sigmoid(torch.randn(batch, m, generator=g) - 1.5).requires_grad_()  # (B, m)
        out = _tensor(_call(fn, h, rho), "惩罚项（标量）")
        rho_hat = h.mean(0)  # (m,)
        ref = kl_bernoulli(rho, rho_hat).sum()  # eq. (sparse-kl)
        out = _shape(out, ref, {
            (m,): "这是每个隐单元的 KL(ρ‖ρ̂_j)，还要对 j 求和。",
            (batch,): "ρ̂_j 是隐单元 j 在批次上的平均激活 h.mean(0)，得到 m 个数，再对 j 求和。",
            (batch, m): "先对批次取平均得到 ρ̂ = h.mean(0)，再对 j 求 KL 的和。",
        })
        trials.add(out, ref, {
            "你对隐单元取了平均，公式是对 j 求和 Σ_j KL(ρ‖ρ̂_j)。": kl_bernoulli(rho, rho_hat).mean(),
            "KL 的两个参数顺序反了：惩罚是 KL(ρ‖ρ̂_j)，以目标 ρ 为第一个分布。":
                kl_bernoulli(rho_hat, torch.tensor(rho)).sum(),
            "ρ̂_j 应当是隐单元 j 在批次上的平均 h.mean(0)；你对每张图像的 h_j 分别算了 KL 再平均。":
                kl_bernoulli(rho, h).sum(-1).mean(),
            "ρ̂ 取平均的维度不对：应为 h.mean(0)（对批次平均，每个隐单元一个数），"
            "你用的是 h.mean(1)。":
                kl_bernoulli(rho, h.mean(1)).sum(),
            "结果的符号反了：KL 散度不会是负数。": -ref,
            "只有 ρ log(ρ/ρ̂_j) 一项，少了 (1−ρ) log((1−ρ)/(1−ρ̂_j))。":
                (rho * torch.log(rho / rho_hat)).sum(),
        })
    trials.verdict("ρ̂_j = h.mean(0) 在 (0, 1) 之间，log ρ̂_j 和 log(1 − ρ̂_j) 才有限（不要用 h.sum）。",
                   grad_of="h")
    return "在 3 组随机激活和 ρ 上与参考实现一致。"


# --- the denoising autoencoder -----------------------------------------------------------------

def _denoiser(noise_std: float = 0.4) -> DenoisingAutoencoder:
    """A small denoising autoencoder with fixed random weights; by default noise_std = 0.4, not
    the chapter's 0.3, so that a value copied from the chapter shows up."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return DenoisingAutoencoder(hidden_dim=32, code_dim=8, noise_std=noise_std)


@_check("加噪", "corrupt(x, noise_std, eps)")
def check_corrupt(fn: Callable) -> str:
    """fn(x, noise_std, eps) -> x_tilde = clip(x + noise_std * eps, 0, 1), eq. (dae-corrupt)."""
    g, trials = _generator(), _Trials()
    for batch, noise_std in ((4, 0.3), (7, 0.55)):
        x = _images(g, batch)
        eps = torch.randn(batch, D, generator=g)
        out = _same_twice(fn, (x.clone(), noise_std, eps.clone()),
                          (x.clone(), noise_std, eps.clone()), "加噪后的图像 x̃")
        ref = _denoiser(noise_std).corrupt(x, eps)  # eq. (dae-corrupt)
        out = _shape(out, ref, {})
        trials.add(out, ref, {
            "没有把 x̃ 截断到 [0, 1]：加噪后的像素可能小于 0 或大于 1，"
            "用 .clamp(0, 1) 让 x̃ 仍是一张合法的图像。": x + noise_std * eps,
            "噪声没有乘以 noise_std：x̃ = clip(x + noise_std · eps, 0, 1)。":
                (x + eps).clamp(0, 1),
            "noise_std 是噪声的标准差，直接乘在 eps 上；你乘的是它的平方（方差）。":
                (x + noise_std ** 2 * eps).clamp(0, 1),
            "noise_std 是噪声的标准差，直接乘在 eps 上；你乘的是它的平方根。":
                (x + math.sqrt(noise_std) * eps).clamp(0, 1),
            "你返回的是截断后的噪声本身，应返回加噪后的图像 x̃ = clip(x + noise_std · eps, 0, 1)。":
                (noise_std * eps).clamp(0, 1),
            "噪声的符号反了：x̃ = clip(x + noise_std · eps, 0, 1)。":
                (x - noise_std * eps).clamp(0, 1),
        })
    trials.verdict()
    return "在 2 组随机图像和噪声上与参考实现一致。"


@_check("去噪自编码器的损失", "denoising_loss(model, x, eps)")
def check_denoising_loss(fn: Callable) -> str:
    """fn(model, x, eps) -> scalar: batch mean of ||x - model(corrupt(x, eps))||^2, (dae-loss)."""
    g, trials, model = _generator(), _Trials(), _denoiser()
    for batch in (6, 10):
        x = _images(g, batch)
        eps = torch.randn(batch, D, generator=g)
        out = _same_twice(fn, (model, x.clone(), eps.clone()), (model, x.clone(), eps.clone()),
                          "批平均的损失（标量）")
        ref, _ = model.loss(x, noise=eps)  # eq. (dae-loss)
        out = _shape(out, ref, {
            (batch,): "这是每张图像的损失，还要对批次取平均 .mean()。",
            (batch, D): "还要对像素求和 .sum(-1)，再对批次取平均 .mean()。",
        })
        x_tilde = model.corrupt(x, eps)
        x_hat = model(x_tilde)

        def sse(a, b):  # (B,) per-image summed squared error
            return (a - b).pow(2).sum(-1)

        trials.add(out, ref, {
            "噪声加在了目标上而不是输入上：应把加噪的 x̃ = model.corrupt(x, eps) 送进模型，"
            "再与干净的 x 比较，即 ‖x − model(x̃)‖²。": sse(model(x), x_tilde).mean(),
            "你把重构与加噪的 x̃ 比较了：目标应是干净的 x，‖x − model(x̃)‖²。":
                sse(x_hat, x_tilde).mean(),
            "没有加噪声：这是普通自编码器的损失。先用 x̃ = model.corrupt(x, eps) 加噪，"
            "再计算 ‖x − model(x̃)‖²。": sse(model(x), x).mean(),
            "加噪后没有截断到 [0, 1]：用 model.corrupt(x, eps)，它会 clip。":
                sse(model(x + model.noise_std * eps), x).mean(),
            "你对批次求了和，本书对批次取平均。": sse(x_hat, x).sum(),
            "你对像素取了平均（F.mse_loss 的默认 reduction='mean'），本书对像素求和、对批次取平均。":
                (x_hat - x).pow(2).mean(),
            "结果多了一个因子 ½：本书的损失是 ‖x − x̂‖²，没有 ½。": sse(x_hat, x).mean() / 2,
            **{f"噪声强度写死成了 {std}：请用 model.corrupt(x, eps)（它用 model.noise_std）。":
               sse(model((x + std * eps).clamp(0, 1)), x).mean() for std in (0.3, 0.5)},
        })
    trials.verdict(grad_of="模型参数")
    return "在 2 个随机批次上与 model.loss(x, noise=eps) 一致。"


# --- the variational autoencoder ---------------------------------------------------------------

LOGVAR_AS_STD = "把 logvar 当成了标准差 σ。logvar = log σ²，所以 σ = exp(logvar / 2)，σ² = exp(logvar)。"


@_check("高斯 KL 散度", "gaussian_kl(mu, logvar)")
def check_gaussian_kl(fn: Callable) -> str:
    """fn(mu, logvar) -> (B,): KL(N(mu, diag exp(logvar)) || N(0, I)) per image, eq. (vae-kl)."""
    g, trials = _generator(), _Trials()
    for batch, d in ((6, 4), (9, 20)):
        mu = torch.randn(batch, d, generator=g).requires_grad_()
        logvar = (0.8 * torch.randn(batch, d, generator=g)).requires_grad_()  # both signs
        out = _tensor(_call(fn, mu, logvar), "每张图像的 KL，形状 (B,)")
        ref = VAE.kl(mu, logvar)  # (B,), eq. (vae-kl)
        out = _shape(out, ref, {
            (): "应返回每张图像的 KL（形状 (B,)），不要对批次求和或取平均。",
            (batch, d): "还要对潜变量的 d 个维度求和 .sum(-1)。",
            (d,): "求和的维度不对：应对潜变量维度求和 .sum(-1)，保留批次维度。",
        })
        var, std = logvar.exp(), (0.5 * logvar).exp()
        terms = mu.pow(2) + var - logvar - 1  # (B, d)
        trials.add(out, ref, {
            "少了因子 ½：KL = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1)。": terms.sum(-1),
            "结果的符号反了：KL 散度不会是负数。": -0.5 * terms.sum(-1),
            "你对潜变量维度取了平均，应当求和：KL = ½ Σ_j (…)。": 0.5 * terms.mean(-1),
            LOGVAR_AS_STD: 0.5 * (mu.pow(2) + logvar.pow(2) - logvar.pow(2).log() - 1).sum(-1),
            "σ² 项写成了 σ：公式里是方差 σ² = exp(logvar)，不是 exp(logvar / 2)。":
                0.5 * (mu.pow(2) + std - logvar - 1).sum(-1),
            "把 logvar 当成了 log σ（对数标准差）：logvar = log σ²，σ² = exp(logvar)。":
                0.5 * (mu.pow(2) + (2 * logvar).exp() - 2 * logvar - 1).sum(-1),
            "少了常数项 −1（每个潜变量维度 −½）：KL = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1)。":
                0.5 * (mu.pow(2) + var - logvar).sum(-1),
            "log σ² 项的符号反了：KL = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1)。":
                0.5 * (mu.pow(2) + var + logvar - 1).sum(-1),
        })
    trials.verdict("logvar = log σ² 可以是负数，不能直接对它取对数或开平方；方差是 exp(logvar)。",
                   grad_of="mu 和 logvar")
    return "在 2 组随机 mu、logvar 上与 VAE.kl 一致。"


@_check("重参数化", "reparameterize(mu, logvar, eps)")
def check_reparameterize(fn: Callable) -> str:
    """fn(mu, logvar, eps) -> z = mu + exp(logvar / 2) * eps, eq. (vae-reparam)."""
    g, trials, connected = _generator(), _Trials(), []
    reference = VAE(input_dim=1, hidden_dim=1, latent_dim=1)  # reparameterize uses no weights
    for batch, d in ((6, 4), (9, 20)):
        mu = torch.randn(batch, d, generator=g)
        logvar = 0.8 * torch.randn(batch, d, generator=g)  # both signs
        eps = torch.randn(batch, d, generator=g)
        leaves = [t.clone().requires_grad_() for t in (mu, logvar, mu, logvar)]
        out = _same_twice(fn, (leaves[0], leaves[1], eps.clone()),
                          (leaves[2], leaves[3], eps.clone()), "潜变量 z，形状 (B, d)")
        ref = reference.reparameterize(mu, logvar, eps)  # eq. (vae-reparam)
        out = _shape(out, ref, {(batch,): "z 应与 mu 形状相同 (B, d)，不要对维度求和。"})
        connected.append((out, leaves[:2]))
        std = (0.5 * logvar).exp()
        trials.add(out, ref, {
            LOGVAR_AS_STD + " z = mu + σ · eps。": mu + logvar * eps,
            "你用了方差 exp(logvar) 而不是标准差 σ = exp(logvar / 2)：z = mu + σ · eps。":
                mu + logvar.exp() * eps,
            "忘了加上 mu：z = mu + σ · eps。": std * eps,
            "噪声项的符号反了：本书写 z = mu + σ · eps（用 mu − σ · eps 时同一个 eps 给出不同的 z）。":
                mu - std * eps,
            "eps 没有乘以 σ：z = mu + σ · eps，σ = exp(logvar / 2)。": mu + eps,
            "σ 不是 logvar / 2：σ = exp(logvar / 2)。": mu + 0.5 * logvar * eps,
        })
    trials.verdict("logvar = log σ² 可以是负数，不能直接对它开平方或取对数；σ = exp(logvar / 2)。",
                   grad_of="mu 和 logvar")
    for out, leaves in connected:
        grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
        for name, grad in zip(("mu", "logvar"), grads):
            if grad is None or not grad.abs().sum() > 0:
                raise _Failed(f"z 对 {name} 没有梯度：重参数化的意义正在于让梯度经 z 传回 mu 和 "
                              "logvar。请直接用张量运算计算 z = mu + σ · eps，不要 detach。")
    return "在 2 组随机 mu、logvar、eps 上与 VAE.reparameterize 一致，梯度也能传回 mu 和 logvar。"


def _iwae_model() -> VAE:
    """A small Bernoulli VAE whose log-weights spread enough to tell IWAE from the ELBO.

    Tuned so that the log-weights have a standard deviation of about 3 nats: the IWAE bound with
    K = 10 then lies 1.1 to 1.8 nats above the ELBO, some 20 standard errors of the check.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = VAE(hidden_dim=16, latent_dim=2, likelihood="bernoulli")
        with torch.no_grad():
            model.decoder[-1].weight.mul_(0.2)  # log p(x|z) varies by a few nats with z
            model.to_logvar.bias.fill_(1.0)  # q wider than the prior: bounded weights p(z)/q(z|x)
    return model


@_check("IWAE 下界", "iwae_bound(model, x, k)")
def check_iwae_bound(fn: Callable) -> str:
    """fn(model, x, k) -> (B,): log (1/K) sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x).

    The bound is random, so the check compares averages: each of a few images is repeated many
    times in the batch, and the mean of the reader's estimates for each image must agree with the
    mean of the reference's within 5 standard errors. Typical mistakes (the ELBO instead of the
    bound, a missing log K, a sign) move the mean by many standard errors.
    """
    model, g = _iwae_model(), _generator()
    images, copies, k = 5, 300, 10  # log K = 2.3 stands clear of other mistakes' offsets
    x = torch.bernoulli(_images(g, images), generator=g)  # (5, D) binary images
    batch = x.repeat_interleave(copies, 0)  # (1500, D): 300 copies of each image
    with torch.no_grad():
        out = _tensor(_call(fn, model, batch.clone(), k), "每张图像的 IWAE 下界，形状 (B,)")
        out = _shape(out, torch.empty(len(batch)), {
            (): "应返回每张图像的下界（形状 (B,)），不要对批次求和或取平均。",
            (k,): "logsumexp 的维度不对：应对 K 个样本取 logsumexp，保留批次维度。",
            (k, len(batch)): "还要对 K 个样本做 logsumexp 并减去 log K。",
            (len(batch), k): "还要对 K 个样本做 logsumexp 并减去 log K。",
        })
        eps = torch.randn(k, len(batch), model.latent_dim, generator=g)  # (K, B, d)
        # IWAE with K = 1 is one log-weight log p(x, z_k) - log q(z_k|x); stacked: (K, B)
        log_w = torch.stack([model.iwae_bound(batch, 1, eps=e.unsqueeze(0)) for e in eps])
        ref = torch.logsumexp(log_w, 0) - math.log(k)  # = model.iwae_bound(batch, k, eps=eps)
    out = out.detach().double()
    if not torch.isfinite(out).all():
        raise _Failed("结果中出现了 NaN 或无穷大：用 torch.logsumexp 计算 log Σ_k w_k，"
                      "不要先 exp 再 log（权重 w_k 会下溢为 0）。")

    def per_image(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard error of each image's estimates: (images,) each."""
        values = values.double().view(images, copies)
        return values.mean(1), values.std(1) / math.sqrt(copies)

    def agrees(values: torch.Tensor) -> bool:
        (m_out, se_out), (m_val, se_val) = per_image(out), per_image(values)
        return bool(((m_out - m_val).abs() <= 5 * (se_out ** 2 + se_val ** 2).sqrt() + 1e-3).all())

    if agrees(ref):
        return (f"{images} 张图像各重复 {copies} 次，K = {k}：每张图像的平均值与参考实现"
                "在统计误差内一致。")
    if agrees(log_w[0]):  # the ELBO's mean: one sample, or K log-weights averaged
        spread = out.view(images, copies).std(1)
        one = log_w[0].view(images, copies).std(1)
        if (spread > 0.5 * (one + log_w.mean(0).view(images, copies).std(1))).all():
            raise _Failed("只用了一个样本 z：请抽取传入的 k 个样本 z_1, …, z_K，"
                          "再计算 logsumexp_k(log w_k) − log K。")
        raise _Failed("你算的是 ELBO（K 个 log 权重的平均），不是 IWAE 下界：应对 K 个 log 权重"
                      "取 logsumexp 再减 log K，即 log (1/K) Σ_k w_k。")
    wrong = {
        f"少了 −log K：IWAE 下界是 log((1/K) Σ_k w_k) = logsumexp_k(log w_k) − log K"
        f"（K = {k} 时差 {math.log(k):.3f}）。": ref + math.log(k),
        "结果的符号反了：下界是 log p(x) 的下界，对这些图像应为负数。": -ref,
    }
    for message, values in wrong.items():
        if agrees(values):
            raise _Failed(message)
    (m_out, _), (m_ref, _) = per_image(out), per_image(ref)
    differences = "，".join(f"{a:.2f} 对 {b:.2f}" for a, b in zip(m_out.tolist(), m_ref.tolist()))
    raise _Failed(f"每张图像的平均值与参考实现不同（你的对参考的：{differences}）。"
                  "检查 log p(x|z)（用 model.log_likelihood）、log p(z) 与 log q(z|x) 三项，"
                  "log 权重为 log p(x|z) + log p(z) − log q(z|x)。")
