"""Choosing and describing the device the DIM network runs on.

``select_device(None)`` / ``select_device("auto")`` picks CUDA, then Apple
MPS, then the CPU; ``"cuda"``, ``"cuda:1"``, ``"mps"`` and ``"cpu"`` force one
and fail with an :class:`EngineError` that says what to do when it is not
there. ``describe_device`` gives the short text the GUI status bar and the
CLI show, e.g. "CUDA (NVIDIA H100 80GB HBM3)", "MPS (Apple GPU)",
"CPU (8 threads)".

torch is imported inside the functions, so importing this module is free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from ..errors import EngineError

if TYPE_CHECKING:  # pragma: no cover
    import torch

DeviceLike = Union[str, "torch.device", None]

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Device names usable on this machine, best first (for menus): e.g. ["cuda:0", "cpu"]."""
    import torch

    names: list[str] = []
    if _cuda_available():
        names.extend(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    if _mps_available():
        names.append("mps")
    names.append("cpu")
    return names


def _no_cuda_reason() -> str:
    import torch

    if torch.version.cuda is None:
        return (
            f"this PyTorch ({torch.__version__}) was built without CUDA; install a CUDA build "
            "of PyTorch to use an NVIDIA GPU"
        )
    return "no NVIDIA GPU or driver was found"


def select_device(requested: DeviceLike = None) -> "torch.device":
    """The torch device to run on.

    ``None``, ``""`` or ``"auto"``: CUDA if available, then MPS, then CPU.
    Otherwise the named device, which must exist here; an unknown name or a
    missing device raises :class:`EngineError` naming the choices.
    CUDA devices are returned with their index ("cuda:0"), so they compare
    and hash consistently (the model cache is keyed by them).
    """
    import torch

    if isinstance(requested, torch.device):
        text = str(requested)
    else:
        text = (requested or "auto").strip().lower()
    if text == "auto":
        if _cuda_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if text == "gpu":
        text = "cuda"
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise EngineError(
            f"unknown device {requested!r}: choose one of {', '.join(DEVICE_CHOICES)} "
            "(or cuda:N for a particular NVIDIA GPU)"
        ) from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "cuda":
        if not _cuda_available():
            raise EngineError(
                f"{text} requested but no CUDA GPU is available ({_no_cuda_reason()}); "
                "use --device cpu or --device auto"
            )
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= count:
            raise EngineError(
                f"{text} requested but this machine has {count} CUDA GPU(s) "
                f"(cuda:0 to cuda:{count - 1})"
            )
        return torch.device("cuda", index)
    if device.type == "mps":
        if not _mps_available():
            raise EngineError(
                "mps requested but Apple's Metal (MPS) backend is not available here (it needs "
                "an Apple-silicon or AMD GPU Mac with macOS 12.3+); use --device cpu or --device auto"
            )
        return torch.device("mps")
    raise EngineError(
        f"unsupported device {requested!r}: choose one of {', '.join(DEVICE_CHOICES)}"
    )


def device_kind_and_name(device: "torch.device") -> tuple[str, str]:
    """("CUDA", "NVIDIA H100 80GB HBM3"), ("MPS", "Apple GPU") or ("CPU", "8 threads")."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        try:
            index = device.index if device.index is not None else torch.cuda.current_device()
            name = torch.cuda.get_device_name(index)
        except Exception:  # a description must never fail
            name = "NVIDIA GPU"
        return "CUDA", name
    if device.type == "mps":
        return "MPS", "Apple GPU"
    if device.type == "cpu":
        return "CPU", f"{torch.get_num_threads()} threads"
    return device.type.upper(), str(device)


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX), so bf16 autocast is fast.

    Elsewhere PyTorch emulates bf16, which ran the DIM network about 10x
    slower than fp32 (model/README.md): "auto" precisions then mean fp32.
    Shared by the engine's preview precision and training's ``precision_for``.
    """
    import torch

    cpu = getattr(torch, "cpu", None)
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, check, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # noqa: BLE001 - a capability probe must never fail
            continue
    return False


def describe_device(device: "torch.device | str") -> str:
    """Short text for status bars: "CUDA (NVIDIA ...)", "MPS (Apple GPU)", "CPU (N threads)"."""
    kind, name = device_kind_and_name(device)
    return f"{kind} ({name})"


__all__ = [
    "DEVICE_CHOICES",
    "available_devices",
    "cpu_has_native_bf16",
    "describe_device",
    "device_kind_and_name",
    "select_device",
]
