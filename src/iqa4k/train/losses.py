"""Training losses, split into per-sample terms and batch terms.

The trainer scales per-sample terms by the global batch size, so a batch split over processes
adds up to the loss one process would compute; batch terms (TReS's ranking and consistency)
are each process's own, as under the official multi-GPU code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import TrainConfig


def step_loss(
    config: TrainConfig, model: torch.nn.Module, inputs: list[torch.Tensor], target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(per-sample losses [B], batch term)`` of one step of ``config.loss``."""
    if config.loss == "tres":
        return _tres(model, inputs, target)
    pred = model(*inputs).float()
    if config.loss == "l1":
        return F.l1_loss(pred, target, reduction="none"), pred.new_zeros(())
    if config.loss == "fidelity":
        return _fidelity(pred, target, config), pred.new_zeros(())
    return F.mse_loss(pred, target, reduction="none"), pred.new_zeros(())


def _fidelity(pred: torch.Tensor, target: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """UIQA's loss: samples ``2k`` and ``2k+1`` form a pair (a random partner, as the order is
    shuffled); pair_weight x fidelity of P(first better) = Phi(s1 - s2) against
    Phi(y1 - y2), plus regression_weight x (MSE(s1, y1) + MSE(s2, y2)). Each sample carries
    its pair's fidelity and twice its squared error, so that the batch mean is the official
    mean over pairs. An unpaired last sample keeps only its squared error."""
    per = 2 * config.regression_weight * (pred - target) ** 2
    n = pred.shape[0] // 2 * 2
    if n:
        s1, s2, y1, y2 = pred[0:n:2], pred[1:n:2], target[0:n:2], target[1:n:2]
        normal = torch.distributions.Normal(0.0, 1.0)
        p, g = normal.cdf(s1 - s2), normal.cdf(y1 - y2)
        fidelity = 1 - (p * g + 1e-8).sqrt() - ((1 - p) * (1 - g) + 1e-8).sqrt()
        paired = F.pad(fidelity.repeat_interleave(2), (0, pred.shape[0] - n))
        per = per + config.pair_weight * paired
    return per


def _tres(
    model: torch.nn.Module, inputs: list[torch.Tensor], target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """TReS's loss: L1 of the crop's and its flip's predictions, their consistency terms, and
    the relative-ranking triplets of the batch extremes with their self-consistency:
    ``C + C_f + 0.5 (|T - sg(T_f)| + |T_f - sg(T)|) + 0.05 (T + T_f)``."""
    (x,) = inputs
    pred, _, consistency = model(x, training_outputs=True)
    pred_f, _, consistency_f = model(x.flip(-1), training_outputs=True)
    per = F.l1_loss(pred, target, reduction="none") + F.l1_loss(pred_f, target, reduction="none")
    rank, rank_f = _ranking(pred, target), _ranking(pred_f, target)
    batch = consistency + consistency_f
    batch = batch + 0.5 * ((rank - rank_f.detach()).abs() + (rank_f - rank.detach()).abs())
    return per, batch + 0.05 * (rank + rank_f)


def _ranking(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Triplet margin losses (p=1) of the batch's lowest, second lowest, highest and second
    highest labels: the best must be farther from the worst than the second worst is, by the
    label gap, and the other way round."""
    if pred.shape[0] < 4:
        return pred.new_zeros(())
    order = torch.argsort(target)
    lo, lo2, hi2, hi = order[0], order[1], order[-2], order[-1]

    def triplet(a, p, n, margin):
        return F.triplet_margin_loss(
            pred[a].view(1, 1), pred[p].view(1, 1), pred[n].view(1, 1), margin=float(margin), p=1
        )

    return triplet(lo, lo2, hi, target[hi] - target[lo2]) + triplet(
        hi, hi2, lo, target[hi2] - target[lo]
    )
