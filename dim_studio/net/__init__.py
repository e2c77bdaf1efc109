"""The DIM network, its weights format, importers and downloads.

Names are imported lazily (PEP 562) so that importing ``dim_studio.net``
for the CLI's argument parser does not pull in torch.

For the inference engine:

    from dim_studio.net import find_weights, load_weights, normalize_input, pad_to_multiple
    model, info = load_weights(find_weights(), device="cuda")
    x = normalize_input(image, trimap, info.normalization)        # (1, 4, H, W)
    x, (h, w) = pad_to_multiple(x)                                # reflect to x32
    with torch.inference_mode():
        alpha = model(x.to("cuda"))["alpha"][0, 0, :h, :w]
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # model.py
    "DEFAULT_NORMALIZATION": "model",
    "DIMConfig": "model",
    "DIMNet": "model",
    "InputShapeError": "model",
    "SIZE_MULTIPLE": "model",
    "build_dim": "model",
    "count_parameters": "model",
    "normalize_input": "model",
    "pad_to_multiple": "model",
    "predict_alpha": "model",
    "random_dim": "model",
    # weights.py
    "HOW_TO_GET_WEIGHTS": "weights",
    "WeightsInfo": "weights",
    "WeightsWriteError": "weights",
    "check_weights": "weights",
    "printable": "weights",
    "find_weights": "weights",
    "how_to_get_weights": "weights",
    "load_weights": "weights",
    "model_dir": "weights",
    "read_weights_info": "weights",
    "save_weights": "weights",
    "user_data_dir": "weights",
    "weights_search_locations": "weights",
    # importers.py
    "import_weights": "importers",
    "load_torch_checkpoint": "importers",
    "UnsafeCheckpointError": "importers",
    "CheckpointTooLargeError": "importers",
    # download.py
    "download_checkpoint": "download",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
