"""The Deep Image Matting network (Xu et al., CVPR 2017).

Layout follows timm's convention: blocks -> model -> checkpoint key remapping
-> builders. Layer names read like the paper so that a weights file can be
inspected by eye:

    encoder.conv1_1 ... encoder.conv5_3, encoder.conv6
    decoder.deconv6_1, decoder.deconv5_1 ... decoder.deconv1_1, decoder.deconv1
    refine.conv1, refine.conv2, refine.conv3, refine.pred

Input is the normalised 4-channel tensor (N, 4, H, W): RGB normalised with the
weights' normalisation (see :func:`normalize_input`) and the trimap / 255.
H and W must be multiples of 32 (five 2x2 poolings); use
:func:`pad_to_multiple` and crop the result back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dim_studio.errors import DimStudioError, TrimapError, WeightsError

__all__ = [
    "DEFAULT_NORMALIZATION",
    "DIMConfig",
    "DIMNet",
    "InputShapeError",
    "build_dim",
    "count_parameters",
    "normalize_input",
    "pad_to_multiple",
    "predict_alpha",
]

#: Reference normalisation of the OpenMMLab reproduction (and of torchvision's
#: ImageNet VGG-16): RGB in 0-255, minus mean, divided by std; trimap / 255.
#: It belongs to a weights file's metadata because imported checkpoints differ.
DEFAULT_NORMALIZATION: dict[str, Any] = {
    "channel_order": "RGB",
    "input_range": 255.0,
    "mean": [123.675, 116.28, 103.53],
    "std": [58.395, 57.12, 57.375],
    "trimap_divisor": 255.0,
}

#: Total down-sampling of the encoder (five 2x2 max-poolings).
SIZE_MULTIPLE = 32

#: Range of DIMConfig.width (channel multiplier).
MIN_WIDTH = 1 / 64
MAX_WIDTH = 2.0


class InputShapeError(DimStudioError, ValueError):
    """The input tensor has the wrong shape for the network; says what would work."""


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DIMConfig:
    """Architecture options of the DIM network.

    conv6: "1x1" is a 512->512 1x1 convolution (OpenMMLab's choice: about 100M
        fewer parameters and better reported results); "7x7" is the paper's
        fc6 of VGG-16 converted into a 7x7x4096 convolution.
    refine: whether the refinement stage exists.
    width: multiplier of every hidden layer's channel count. 1 is the paper's
        network (and the only width VGG-16 or published checkpoints fit); a
        narrow network (e.g. 1/16) trains in seconds on a CPU, which is what
        the training tests need.
    """

    conv6: Literal["1x1", "7x7"] = "1x1"
    refine: bool = True
    width: float = 1.0

    def __post_init__(self) -> None:
        if self.conv6 not in ("1x1", "7x7"):
            raise WeightsError(f'conv6 must be "1x1" or "7x7", not {self.conv6!r}')
        if not isinstance(self.refine, bool):
            raise WeightsError(f"refine must be true or false, not {self.refine!r}")
        width = self.width
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not (
            MIN_WIDTH <= width <= MAX_WIDTH
        ):
            raise WeightsError(f"width must be a number from {MIN_WIDTH:g} to {MAX_WIDTH:g}, not {width!r}")
        object.__setattr__(self, "width", float(width))

    def channels(self, n: int) -> int:
        """The channel count of a layer that has ``n`` in the paper's network."""
        return n if self.width == 1.0 else max(2, int(round(n * self.width)))

    @property
    def conv6_channels(self) -> int:
        return self.channels(512 if self.conv6 == "1x1" else 4096)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.width == 1.0:
            del data["width"]  # files of the paper's width read the same in older versions
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DIMConfig:
        return cls(conv6=data.get("conv6", "1x1"), refine=bool(data.get("refine", True)),
                   width=data.get("width", 1.0))

    def describe(self) -> str:
        conv6 = "1x1 512" if self.conv6 == "1x1" else "7x7 4096 (converted fc6)"
        text = f"DIM, conv6 {conv6}, refinement {'on' if self.refine else 'off'}"
        return text if self.width == 1.0 else f"{text}, width x{self.width:g}"


# --------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------

# (name, in, out) of the 13 VGG-16 convolutions, grouped by pooling block.
VGG16_BLOCKS: tuple[tuple[tuple[str, int, int], ...], ...] = (
    (("conv1_1", 4, 64), ("conv1_2", 64, 64)),
    (("conv2_1", 64, 128), ("conv2_2", 128, 128)),
    (("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256)),
    (("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512)),
    (("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512)),
)
VGG16_CONV_NAMES: tuple[str, ...] = tuple(n for block in VGG16_BLOCKS for n, _, _ in block)

# (name, in, out, kernel) of the decoder convolutions after deconv6_1; each is
# preceded by a max-unpooling with the matching encoder indices.
DECODER_CONVS: tuple[tuple[str, int, int], ...] = (
    ("deconv5_1", 512, 512),
    ("deconv4_1", 512, 256),
    ("deconv3_1", 256, 128),
    ("deconv2_1", 128, 64),
    ("deconv1_1", 64, 64),
)


class Encoder(nn.Module):
    """VGG-16's 13 convolutions (no batch norm) + conv6, returning pooling indices."""

    def __init__(self, config: DIMConfig) -> None:
        super().__init__()
        c = config.channels
        for block in VGG16_BLOCKS:
            for name, cin, cout in block:
                # conv1_1 reads the 4 input channels whatever the width
                self.add_module(name, nn.Conv2d(cin if name == "conv1_1" else c(cin), c(cout),
                                                kernel_size=3, padding=1))
        if config.conv6 == "1x1":
            self.conv6 = nn.Conv2d(c(512), config.conv6_channels, kernel_size=1)
        else:
            # fc6 as a convolution; padding 3 keeps the spatial size so the
            # decoder's first unpooling lines up with the fifth pooling.
            self.conv6 = nn.Conv2d(c(512), config.conv6_channels, kernel_size=7, padding=3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Size]]:
        indices: list[torch.Tensor] = []
        sizes: list[torch.Size] = []
        out = x
        for block in VGG16_BLOCKS:
            for name, _, _ in block:
                out = F.relu(getattr(self, name)(out), inplace=True)
            sizes.append(out.shape[-2:])
            out, idx = F.max_pool2d(out, kernel_size=2, stride=2, return_indices=True)
            indices.append(idx)
        out = F.relu(self.conv6(out), inplace=True)
        return out, indices, sizes


class Decoder(nn.Module):
    """1x1 conv, five [max-unpool -> 5x5 conv + ReLU], 5x5 conv to the alpha logit.

    Unpooling, not deconvolution: the seed implementation found deconvolution
    could not learn fine structure such as hair.
    """

    def __init__(self, config: DIMConfig) -> None:
        super().__init__()
        c = config.channels
        self.deconv6_1 = nn.Conv2d(config.conv6_channels, c(512), kernel_size=1)
        for name, cin, cout in DECODER_CONVS:
            self.add_module(name, nn.Conv2d(c(cin), c(cout), kernel_size=5, padding=2))
        self.deconv1 = nn.Conv2d(c(64), 1, kernel_size=5, padding=2)

    def forward(
        self, x: torch.Tensor, indices: list[torch.Tensor], sizes: list[torch.Size]
    ) -> torch.Tensor:
        out = F.relu(self.deconv6_1(x), inplace=True)
        for (name, _, _), idx, size in zip(DECODER_CONVS, reversed(indices), reversed(sizes)):
            out = F.max_unpool2d(out, idx, kernel_size=2, stride=2, output_size=size)
            out = F.relu(getattr(self, name)(out), inplace=True)
        return self.deconv1(out)


class Refiner(nn.Module):
    """Three 3x3 64-channel convs + ReLU and a 3x3 conv to a residual on the logit."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        # Input channel order is (R, G, B, alpha), as in OpenMMLab's
        # PlainRefiner (torch.cat((x[:, :3], pred_alpha), 1)).
        self.conv1 = nn.Conv2d(4, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.pred = nn.Conv2d(channels, 1, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x), inplace=True)
        out = F.relu(self.conv2(out), inplace=True)
        out = F.relu(self.conv3(out), inplace=True)
        return self.pred(out)


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------


class DIMNet(nn.Module):
    """Encoder-decoder with max-unpooling, plus the optional refinement stage.

    ``forward(x)`` returns a dict:
      - ``logit``: stage-1 raw alpha logit (N, 1, H, W)
      - ``stage1``: sigmoid(logit)
      - ``refined``: sigmoid(logit + refine(rgb, stage1)), only when refining
      - ``alpha``: the final prediction (``refined`` if refining, else ``stage1``)
    """

    def __init__(self, config: DIMConfig | None = None) -> None:
        super().__init__()
        self.config = config or DIMConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        self.refine: Refiner | None = Refiner(self.config.channels(64)) if self.config.refine else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier (normal) weights and zero biases, like OpenMMLab's xavier_init."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.weight.device.type != "meta":
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def check_input(x: torch.Tensor) -> None:
        """Raise :class:`InputShapeError` saying what would work."""
        if x.ndim != 4:
            raise InputShapeError(
                f"the network takes a 4-D tensor (N, 4, H, W), got shape {list(x.shape)}"
            )
        if x.shape[1] != 4:
            raise InputShapeError(
                f"the network takes 4 channels (normalised RGB + trimap), got {x.shape[1]}: "
                "build the input with dim_studio.net.normalize_input"
            )
        h, w = int(x.shape[2]), int(x.shape[3])
        if h < SIZE_MULTIPLE or w < SIZE_MULTIPLE or h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            ph = max(SIZE_MULTIPLE, math.ceil(h / SIZE_MULTIPLE) * SIZE_MULTIPLE)
            pw = max(SIZE_MULTIPLE, math.ceil(w / SIZE_MULTIPLE) * SIZE_MULTIPLE)
            raise InputShapeError(
                f"height {h} and width {w} must be multiples of {SIZE_MULTIPLE} "
                f"(and at least {SIZE_MULTIPLE}): pad to {ph}x{pw} "
                "(use dim_studio.net.pad_to_multiple) and crop the result back"
            )

    def forward(self, x: torch.Tensor, refine: bool | None = None) -> dict[str, torch.Tensor]:
        """Predict alpha. ``refine=False`` skips the refiner (stage-1 training)."""
        self.check_input(x)
        if refine and self.refine is None:
            raise WeightsError("these weights have no refinement stage (refine=False)")
        feats, indices, sizes = self.encoder(x)
        logit = self.decoder(feats, indices, sizes)
        stage1 = torch.sigmoid(logit)
        out = {"logit": logit, "stage1": stage1, "alpha": stage1}
        if self.refine is not None and refine is not False:
            # The refiner sees the normalised RGB and the stage-1 alpha after
            # the sigmoid, and predicts a residual added to the logit, exactly
            # as OpenMMLab's DIM._forward / PlainRefiner do.
            residual = self.refine(torch.cat((x[:, :3], stage1), dim=1))
            refined = torch.sigmoid(logit + residual)
            out["refined"] = refined
            out["alpha"] = refined
        return out


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (elements) of ``model``."""
    return sum(p.numel() for p in model.parameters())


def random_dim(config: DIMConfig | None = None, seed: int = 0) -> DIMNet:
    """A DIMNet with He-normal random weights, for timing and tests.

    The default (Xavier) init makes activations vanish through the 20-odd
    layers, so every output would be nearly constant and a test comparing two
    ways of running the net would pass whatever they did; He init keeps the
    activations' scale.
    """
    model = DIMNet(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0.0, math.sqrt(2.0 / m.weight[0].numel()), generator=gen)
                if m.bias is not None:
                    m.bias.zero_()
    return model.eval()


# --------------------------------------------------------------------------
# Input preparation
# --------------------------------------------------------------------------


def reflect_indices(n: int, total: int) -> np.ndarray:
    """Indices 0..total-1 reflected into 0..n-1 (numpy 'reflect', repeated).

    Works when the pad exceeds n - 1 (where torch's reflect pad refuses) by
    bouncing back and forth; a length-1 axis is replicated.
    """
    i = np.arange(total)
    if n == 1:
        return np.zeros(total, dtype=np.int64)
    period = 2 * (n - 1)
    m = i % period
    return np.where(m < n, m, period - m).astype(np.int64)


def _pad_indices(n: int, target: int, mode: str) -> np.ndarray:
    if mode == "reflect":
        return reflect_indices(n, target)
    if mode in ("replicate", "edge"):
        return np.minimum(np.arange(target), n - 1).astype(np.int64)
    raise ValueError(f'pad mode must be "reflect", "replicate" or "constant", not {mode!r}')


def pad_to_multiple(
    data: torch.Tensor | np.ndarray, multiple: int = SIZE_MULTIPLE, mode: str = "reflect"
) -> tuple[torch.Tensor | np.ndarray, tuple[int, int]]:
    """Pad bottom and right so height and width are multiples of ``multiple``.

    ``data`` is a torch tensor with H, W as its last two dims (e.g. (N, C, H, W))
    or a numpy array with H, W as its first two dims ((H, W) or (H, W, C)).
    ``mode`` is "reflect" (default, as the reference inference), "replicate"
    or "constant" (zeros). Returns ``(padded, (h, w))``; crop back with
    ``out[..., :h, :w]`` (tensor) or ``out[:h, :w]`` (array).
    """
    if multiple < 1:
        raise ValueError(f"multiple must be at least 1, got {multiple}")
    is_tensor = isinstance(data, torch.Tensor)
    if is_tensor:
        if data.ndim < 2:
            raise InputShapeError(f"need at least 2 dims (H, W), got shape {list(data.shape)}")
        h, w = int(data.shape[-2]), int(data.shape[-1])
        hax, wax = data.ndim - 2, data.ndim - 1
    else:
        data = np.asarray(data)
        if data.ndim < 2:
            raise InputShapeError(f"need at least 2 dims (H, W), got shape {list(data.shape)}")
        h, w = int(data.shape[0]), int(data.shape[1])
        hax, wax = 0, 1
    if h == 0 or w == 0:
        raise InputShapeError(f"cannot pad an empty image ({h}x{w})")
    th = math.ceil(h / multiple) * multiple
    tw = math.ceil(w / multiple) * multiple
    if (th, tw) == (h, w):
        return data, (h, w)
    if mode in ("constant", "zeros", "zero"):
        if is_tensor:
            return F.pad(data, (0, tw - w, 0, th - h)), (h, w)
        widths = [(0, 0)] * data.ndim
        widths[0], widths[1] = (0, th - h), (0, tw - w)
        return np.pad(data, widths), (h, w)
    hi, wi = _pad_indices(h, th, mode), _pad_indices(w, tw, mode)
    if is_tensor:
        dev = data.device
        out = data.index_select(hax, torch.from_numpy(hi).to(dev))
        out = out.index_select(wax, torch.from_numpy(wi).to(dev))
        return out, (h, w)
    return data[hi][:, wi], (h, w)


def _norm_values(normalization: Mapping[str, Any] | None) -> tuple[float, np.ndarray, np.ndarray, float]:
    norm = dict(DEFAULT_NORMALIZATION)
    if normalization:
        norm.update(normalization)
    if str(norm.get("channel_order", "RGB")).upper() != "RGB":
        raise WeightsError(
            f"unsupported channel order {norm['channel_order']!r} in the weights' normalisation; "
            "only RGB is supported"
        )
    mean = np.asarray(norm["mean"], dtype=np.float32).reshape(3)
    std = np.asarray(norm["std"], dtype=np.float32).reshape(3)
    if np.any(std == 0):
        raise WeightsError("the weights' normalisation has a zero standard deviation")
    return float(norm["input_range"]), mean, std, float(norm["trimap_divisor"])


def normalize_input(
    image: np.ndarray,
    trimap: np.ndarray,
    normalization: Mapping[str, Any] | None = None,
) -> torch.Tensor:
    """Build the network input (1, 4, H, W) float32 from an image and a trimap.

    image: float32 (H, W, 3) RGB in [0, 1]; trimap: uint8 (H, W) 0/128/255.
    RGB is scaled to ``input_range`` (255), minus ``mean``, divided by ``std``;
    the trimap is divided by ``trimap_divisor`` (255). ``normalization`` comes
    from the weights' metadata (:data:`DEFAULT_NORMALIZATION` when None).
    """
    image = np.asarray(image)
    trimap = np.asarray(trimap)
    if trimap.ndim == 3 and trimap.shape[2] == 1:
        trimap = trimap[:, :, 0]
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputShapeError(f"image must be (H, W, 3) RGB, got shape {list(image.shape)}")
    if trimap.ndim != 2:
        raise TrimapError(f"trimap must be (H, W), got shape {list(trimap.shape)}")
    if image.shape[:2] != trimap.shape:
        raise TrimapError(
            f"trimap is {trimap.shape[1]}x{trimap.shape[0]} but the image is "
            f"{image.shape[1]}x{image.shape[0]} (width x height)"
        )
    scale, mean, std, tdiv = _norm_values(normalization)
    if np.issubdtype(image.dtype, np.integer):
        # Tolerate 8/16-bit arrays straight from a decoder: bring them to [0, 1].
        image = image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    rgb = (image.astype(np.float32) * np.float32(scale) - mean) / std
    tri = trimap.astype(np.float32) / np.float32(tdiv)
    x = np.concatenate([rgb, tri[:, :, None]], axis=2).transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(x))[None]


def predict_alpha(
    model: DIMNet,
    image: np.ndarray,
    trimap: np.ndarray,
    normalization: Mapping[str, Any] | None = None,
    *,
    force_known: bool = True,
) -> np.ndarray:
    """Whole-image inference: normalise, reflect-pad to 32, predict, crop back.

    Runs on the model's device in ``torch.inference_mode()``. Returns float32
    (H, W) in [0, 1]; with ``force_known`` the trimap's known pixels are set to
    0/1. No tiling or device policy here: that is the engine's job.
    """
    x = normalize_input(image, trimap, normalization)
    h, w = x.shape[-2:]
    x, _ = pad_to_multiple(x)
    param = next(model.parameters())
    with torch.inference_mode():
        out = model(x.to(device=param.device, dtype=param.dtype))["alpha"]
    alpha = out[0, 0, :h, :w].float().cpu().numpy().clip(0.0, 1.0).astype(np.float32)
    if force_known:
        tri = np.asarray(trimap)
        if tri.ndim == 3:
            tri = tri[:, :, 0]
        alpha[tri == 0] = 0.0
        alpha[tri == 255] = 1.0
    return alpha


# --------------------------------------------------------------------------
# Checkpoint key remapping (pure functions on state dicts; file reading and
# provenance live in importers.py)
# --------------------------------------------------------------------------

_MM_ENCODER = re.compile(r"^backbone\.encoder\.layer([1-5])\.(\d+)\.(weight|bias)$")
_MM_CONV6 = re.compile(r"^backbone\.encoder\.conv6\.(weight|bias)$")
_MM_DECODER = re.compile(r"^backbone\.decoder\.(deconv6_1|deconv[1-5]_1|deconv1)\.(weight|bias)$")
_MM_REFINER = re.compile(r"^refiner\.refine_(conv1|conv2|conv3|pred)\.(weight|bias)$")
# Keys that carry no weights we need (mmagic 1.x preprocessor buffers).
_MM_IGNORED = re.compile(r"^(data_preprocessor|loss_\w+)\.")


def _strip_module_prefix(key: str) -> str:
    # DataParallel / DistributedDataParallel checkpoints prefix every key.
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def remap_openmmlab_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenMMLab (mmediting/mmagic) DIM keys -> DIMNet keys.

    Accepts ``module.`` prefixes and mmcv ConvModule's extra ``.conv.`` level.
    Raises WeightsError naming the first key it does not understand.
    """
    out: dict[str, torch.Tensor] = {}
    for raw_key, value in state_dict.items():
        key = _strip_module_prefix(raw_key)
        # mmcv ConvModule wraps the conv: deconv5_1.conv.weight -> deconv5_1.weight
        key = re.sub(r"\.conv\.(weight|bias)$", r".\1", key)
        if _MM_IGNORED.match(key):
            continue
        if m := _MM_ENCODER.match(key):
            block, idx, kind = int(m.group(1)), int(m.group(2)), m.group(3)
            names = [n for n, _, _ in VGG16_BLOCKS[block - 1]]
            if idx % 2 or idx // 2 >= len(names):
                raise WeightsError(
                    f"unexpected key {raw_key!r}: only the plain VGG-16 encoder "
                    "(no batch norm) is supported"
                )
            out[f"encoder.{names[idx // 2]}.{kind}"] = value
        elif m := _MM_CONV6.match(key):
            out[f"encoder.conv6.{m.group(1)}"] = value
        elif m := _MM_DECODER.match(key):
            out[f"decoder.{m.group(1)}.{m.group(2)}"] = value
        elif m := _MM_REFINER.match(key):
            out[f"refine.{m.group(1)}.{m.group(2)}"] = value
        else:
            raise WeightsError(
                f"unexpected key {raw_key!r} in the OpenMMLab checkpoint: this is not the "
                "plain DIM (VGG-16 encoder, PlainDecoder, PlainRefiner) layout"
            )
    return out


def config_from_state_dict(state_dict: Mapping[str, Any]) -> DIMConfig:
    """Infer DIMConfig from DIMNet keys (conv6 kernel, refine.* keys, conv1_1's width).

    Values are tensors or their shapes (a safetensors header gives shapes).
    """
    def shape(key: str) -> list[int] | None:
        value = state_dict.get(key)
        if value is None:
            return None
        return [int(n) for n in (value.shape if hasattr(value, "shape") else value)]

    w = shape("encoder.conv6.weight")
    conv6 = "7x7" if w is not None and w[-2:] == [7, 7] else "1x1"
    refine = any(k.startswith("refine.") for k in state_dict)
    first = shape("encoder.conv1_1.weight")
    width = 1.0 if not first or first[0] == 64 else first[0] / 64
    try:
        return DIMConfig(conv6=conv6, refine=refine, width=width)
    except WeightsError:  # a conv1_1 of a size no width gives: let the shape check name it
        return DIMConfig(conv6=conv6, refine=refine)


# torchvision's vgg16().features indices of the 13 convolutions.
TORCHVISION_VGG16_FEATURES: tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def expand_first_conv(weight: torch.Tensor) -> torch.Tensor:
    """[64, 3, k, k] RGB conv -> [64, 4, k, k] with zero weights for the trimap channel."""
    zeros = torch.zeros_like(weight[:, :1])
    return torch.cat([weight, zeros], dim=1)


def fc6_torchvision_to_conv(weight: torch.Tensor, kernel: int = 7) -> torch.Tensor:
    """torchvision fc6 [out, C*k*k] (flatten order C, H, W) -> conv [out, C, k, k]."""
    out_f, in_f = weight.shape
    c = in_f // (kernel * kernel)
    if c * kernel * kernel != in_f:
        raise WeightsError(f"fc6 has {in_f} inputs, not a multiple of {kernel}x{kernel}")
    return weight.reshape(out_f, c, kernel, kernel)


def hwio_to_oihw(weight: np.ndarray | torch.Tensor) -> torch.Tensor:
    """TensorFlow conv kernel (H, W, in, out) -> PyTorch (out, in, H, W)."""
    t = torch.as_tensor(np.asarray(weight))
    if t.ndim != 4:
        raise WeightsError(f"expected a 4-D HWIO kernel, got shape {list(t.shape)}")
    return t.permute(3, 2, 0, 1).contiguous()


def fc6_tf_to_conv(weight: np.ndarray | torch.Tensor, channels: int = 512, kernel: int = 7) -> torch.Tensor:
    """TensorFlow fc6 [H*W*C, out] (flatten order H, W, C) -> conv [out, C, H, W]."""
    t = torch.as_tensor(np.asarray(weight))
    in_f, out_f = t.shape
    if in_f != kernel * kernel * channels:
        raise WeightsError(
            f"fc6_W has {in_f} inputs; a {kernel}x{kernel}x{channels} map has "
            f"{kernel * kernel * channels}"
        )
    return t.reshape(kernel, kernel, channels, out_f).permute(3, 2, 0, 1).contiguous()


def remap_torchvision_vgg16(
    state_dict: Mapping[str, torch.Tensor], config: DIMConfig
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """torchvision VGG-16 -> DIMNet encoder tensors (conv6 too for the 7x7 option).

    Returns (tensors, names initialised). Everything else keeps a fresh init.
    """
    sd = {_strip_module_prefix(k): v for k, v in state_dict.items()}
    out: dict[str, torch.Tensor] = {}
    for name, idx in zip(VGG16_CONV_NAMES, TORCHVISION_VGG16_FEATURES):
        for kind in ("weight", "bias"):
            key = f"features.{idx}.{kind}"
            if key not in sd:
                raise WeightsError(f"the torchvision VGG-16 checkpoint has no {key!r}")
            out[f"encoder.{name}.{kind}"] = sd[key]
    out["encoder.conv1_1.weight"] = expand_first_conv(out["encoder.conv1_1.weight"])
    if config.conv6 == "7x7":
        if "classifier.0.weight" not in sd:
            raise WeightsError(
                "the 7x7 conv6 option needs fc6 ('classifier.0.weight'), which this "
                "VGG-16 checkpoint lacks; use --conv6 1x1"
            )
        out["encoder.conv6.weight"] = fc6_torchvision_to_conv(sd["classifier.0.weight"])
        out["encoder.conv6.bias"] = sd["classifier.0.bias"]
    return out, sorted(out)


def remap_vgg16_npz(
    arrays: Mapping[str, np.ndarray], config: DIMConfig
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The seed's vgg16_weights.npz (TensorFlow HWIO) -> DIMNet encoder tensors."""
    out: dict[str, torch.Tensor] = {}
    for name in VGG16_CONV_NAMES:
        for suffix, kind in (("W", "weight"), ("b", "bias")):
            key = f"{name}_{suffix}"
            if key not in arrays:
                raise WeightsError(f"the VGG-16 npz has no {key!r}")
        out[f"encoder.{name}.weight"] = hwio_to_oihw(arrays[f"{name}_W"])
        out[f"encoder.{name}.bias"] = torch.as_tensor(np.asarray(arrays[f"{name}_b"])).clone()
    out["encoder.conv1_1.weight"] = expand_first_conv(out["encoder.conv1_1.weight"])
    if config.conv6 == "7x7":
        if "fc6_W" not in arrays or "fc6_b" not in arrays:
            raise WeightsError("the 7x7 conv6 option needs fc6_W and fc6_b, which this npz lacks")
        out["encoder.conv6.weight"] = fc6_tf_to_conv(arrays["fc6_W"])
        out["encoder.conv6.bias"] = torch.as_tensor(np.asarray(arrays["fc6_b"])).clone()
    return out, sorted(out)


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------


def check_state_dict(
    model: nn.Module, tensors: Mapping[str, Any], source: str | None = None
) -> None:
    """Raise WeightsError naming the FIRST missing key, shape mismatch or unexpected key.

    ``tensors`` maps names to tensors or to shapes (anything with ``.shape``, or
    a sequence of ints). ``source`` (e.g. the file name) prefixes the message.
    """
    pre = f"{source}: " if source else ""
    expected = model.state_dict()
    for key, ref in expected.items():
        if key not in tensors:
            raise WeightsError(
                f"{pre}{key} is missing from the file (the model expects shape {list(ref.shape)})"
            )
        got = tensors[key]
        shape = list(got.shape) if hasattr(got, "shape") else list(got)
        if shape != list(ref.shape):
            raise WeightsError(
                f"{pre}{key} has shape {shape} in the file, the model expects {list(ref.shape)}"
            )
    for key in tensors:
        if key not in expected:
            raise WeightsError(f"{pre}{key} in the file is not part of the model ({model_desc(model)})")


def model_desc(model: nn.Module) -> str:
    cfg = getattr(model, "config", None)
    return cfg.describe() if isinstance(cfg, DIMConfig) else type(model).__name__


def build_dim(
    config: DIMConfig | None = None,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    *,
    device: str | torch.device = "cpu",
) -> DIMNet:
    """Build a DIMNet; with ``state_dict``, every key and shape is checked first.

    With weights given the model is created on the meta device and the tensors
    assigned, so no time is spent on an initialisation that would be thrown
    away. The model is returned in eval mode.
    """
    config = config or DIMConfig()
    if state_dict is None:
        model = DIMNet(config)
    else:
        with torch.device("meta"):
            model = DIMNet(config)
        check_state_dict(model, state_dict)
        tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in state_dict.items()}
        model.load_state_dict(tensors, strict=True, assign=True)
    return model.to(device).eval()
