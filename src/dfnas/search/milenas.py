"""The MiLeNAS local step (He et al., CVPR 2020), first order, as FedNAS runs it.

Mixed-level: the alpha gradient is the validation gradient plus lambda times the training
gradient, g_alpha = grad_alpha L_val(w, alpha) + lambda grad_alpha L_train(w, alpha), an
Adam step on alpha; then an SGD step on w with grad_w L_train (clipped). Three forward and
backward passes per step, each over the whole mixed supernet: the cost DFNAS avoids.
``milenas_step_one_train_pass`` is the option that changes the order (two passes: the
weight gradient comes from the train pass alpha's gradient came from, at the alpha before
its step); it is off by default.
The validation batch comes from the client's own validation split, never a test set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def milenas_alpha_grads(
    net: nn.Module, x_tr: Tensor, y_tr: Tensor, x_val: Tensor, y_val: Tensor, lam: float
) -> list[Tensor]:
    alphas = net.arch_parameters()
    g_val = torch.autograd.grad(F.cross_entropy(net(x_val), y_val), alphas)
    g_tr = torch.autograd.grad(F.cross_entropy(net(x_tr), y_tr), alphas)
    return [gv + lam * gt for gv, gt in zip(g_val, g_tr, strict=True)]


def milenas_step(
    net: nn.Module,
    x_tr: Tensor,
    y_tr: Tensor,
    x_val: Tensor,
    y_val: Tensor,
    w_opt: torch.optim.Optimizer,
    a_opt: torch.optim.Optimizer,
    lam: float,
    clip: float | None,
) -> Tensor:
    a_opt.zero_grad(set_to_none=True)
    for alpha, grad in zip(
        net.arch_parameters(), milenas_alpha_grads(net, x_tr, y_tr, x_val, y_val, lam), strict=True
    ):
        alpha.grad = grad
    a_opt.step()
    w_opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(net(x_tr), y_tr)
    loss.backward()
    _weight_step(net, w_opt, clip)
    return loss.detach()


def _weight_step(net: nn.Module, w_opt: torch.optim.Optimizer, clip: float | None) -> None:
    for alpha in net.arch_parameters():
        alpha.grad = None  # the weight step must not move alpha
    if clip:
        nn.utils.clip_grad_norm_(net.weight_parameters(), clip)
    w_opt.step()


def milenas_step_one_train_pass(
    net: nn.Module,
    x_tr: Tensor,
    y_tr: Tensor,
    x_val: Tensor,
    y_val: Tensor,
    w_opt: torch.optim.Optimizer,
    a_opt: torch.optim.Optimizer,
    lam: float,
    clip: float | None,
) -> Tensor:
    """MiLeNAS with one train pass for both updates: grad_alpha L_train and grad_w L_train
    from the same forward and backward, both at the current (w, alpha), then both steps.
    Two passes instead of three; the weights step against the alpha before its step."""
    alphas = net.arch_parameters()
    g_val = torch.autograd.grad(F.cross_entropy(net(x_val), y_val), alphas)
    a_opt.zero_grad(set_to_none=True)
    w_opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(net(x_tr), y_tr)
    loss.backward()
    for alpha, gv in zip(alphas, g_val, strict=True):
        alpha.grad = gv + lam * alpha.grad
    a_opt.step()
    _weight_step(net, w_opt, clip)
    return loss.detach()
