"""The paper's losses, counted over the trimap's unknown pixels only.

- Alpha-prediction loss: ``sqrt((a_pred - a_gt)^2 + eps^2)``, eps = 1e-6.
- Compositional loss: the same on RGB, between the composite made with the
  predicted alpha (from the ground-truth foreground and background) and the
  real composite, which is the network's input image.

Each is averaged over the unknown pixels of the whole batch (and, for the
compositional loss, over the three channels): a sample without unknown
pixels adds nothing, and a batch without any gives 0 rather than a division
by zero. Stage 1 (encoder-decoder) uses ``0.5 alpha + 0.5 compositional``,
stage 2 (refinement alone) the alpha loss of the refined alpha, and stage 3
the sum of both, as OpenMMLab's stage-3 configuration trains the whole
network.

Losses are computed in float32 whatever precision the forward pass ran in.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = [
    "EPS",
    "STAGES",
    "alpha_loss",
    "composition_loss",
    "per_sample_alpha_loss",
    "stage_loss",
    "unknown_mask",
]

EPS = 1e-6
STAGES = (1, 2, 3)


def unknown_mask(trimap: torch.Tensor) -> torch.Tensor:
    """float32 (N, 1, H, W): 1 where the uint8 trimap is 128 (unknown)."""
    return (trimap == 128).to(torch.float32)


def _charbonnier(diff: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(diff * diff + EPS * EPS)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    channels = values.shape[1]
    total = (values * mask).sum()
    count = mask.sum() * channels
    return total / count.clamp_min(1.0)


def alpha_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over unknown pixels of ``sqrt((pred - gt)^2 + eps^2)``; (N, 1, H, W) each."""
    return _masked_mean(_charbonnier(pred.float() - gt.float()), mask)


def composition_loss(
    pred: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor, image: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean over unknown pixels and RGB of the Charbonnier distance of the recomposed image."""
    a = pred.float()
    recomposed = a * fg.float() + (1.0 - a) * bg.float()
    return _masked_mean(_charbonnier(recomposed - image.float()), mask)


def per_sample_alpha_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) alpha loss of each sample (0 for a sample without unknown pixels), for hard mode."""
    values = _charbonnier(pred.detach().float() - gt.float()) * mask
    return values.sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3)).clamp_min(1.0)


def stage_loss(
    outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor], stage: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training loss of ``stage`` and its terms (detached, for the log).

    ``outputs`` is DIMNet's dict; ``batch`` holds "alpha", "fg", "bg",
    "image" and the uint8 "trimap".
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be 1, 2 or 3, not {stage!r}")
    mask = unknown_mask(batch["trimap"])
    gt = batch["alpha"]
    terms: dict[str, torch.Tensor] = {}
    total = torch.zeros((), device=gt.device)
    if stage in (1, 3):
        stage1 = outputs["stage1"]
        terms["alpha"] = alpha_loss(stage1, gt, mask)
        terms["comp"] = composition_loss(stage1, batch["fg"], batch["bg"], batch["image"], mask)
        total = total + 0.5 * terms["alpha"] + 0.5 * terms["comp"]
    if stage in (2, 3):
        terms["refine"] = alpha_loss(outputs["refined"], gt, mask)
        total = total + terms["refine"]
    return total, {k: v.detach() for k, v in terms.items()}
