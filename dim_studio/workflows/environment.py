"""What this machine offers the engines: devices and weights, probed once off the GUI thread."""

from __future__ import annotations

from dataclasses import dataclass

from .weights import WeightsStatus, weights_status


@dataclass(frozen=True)
class Environment:
    devices: list[tuple[str, str]]  # (value for --device, label), "auto" first
    weights: WeightsStatus

    @property
    def weights_path(self) -> str | None:
        return None if self.weights.path is None else str(self.weights.path)


def available_device_choices() -> list[tuple[str, str]]:
    """("auto", "Auto") then each torch device with its label; the CPU alone without torch."""
    devices: list[tuple[str, str]] = [("auto", "Auto")]
    try:
        from ..engines.device import available_devices, describe_device

        devices.extend((name, describe_device(name)) for name in available_devices())
    except Exception:  # noqa: BLE001 - no torch, or a broken driver: the CPU is always there
        devices.append(("cpu", "CPU"))
    return devices


def probe_environment(weights: str | None = None) -> Environment:
    """Find devices and weights. Imports torch, so call it off the GUI thread."""
    return Environment(available_device_choices(), weights_status(weights))


__all__ = ["Environment", "available_device_choices", "probe_environment"]
