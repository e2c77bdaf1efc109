"""Matting engines behind one interface (see ``base.Engine``).

Engines are registered by name with a factory that imports lazily, so
choosing a classical engine never pays for importing torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import EngineError
from .base import CancelFn, Engine, ProgressFn, check_cancel, scaled_progress


@dataclass(frozen=True)
class EngineInfo:
    name: str
    target: str  # "module:attribute" of the factory, imported on first use
    description: str
    needs_weights: bool = False


_REGISTRY: dict[str, EngineInfo] = {}
# Factories already imported (or registered as callables), by engine name.
_FACTORIES: dict[str, Callable[..., Engine]] = {}


def register_engine(
    name: str, target: str | Callable[..., Engine], description: str, needs_weights: bool = False
) -> None:
    """Register an engine factory by "module:attribute" path or callable."""
    if callable(target):
        _FACTORIES[name] = target
        target = f"{target.__module__}:{target.__qualname__}"
    _REGISTRY[name] = EngineInfo(name, target, description, needs_weights)


def engine_names() -> list[str]:
    return list(_REGISTRY)


def engine_info(name: str) -> EngineInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise EngineError(
            f"unknown engine '{name}'; choose one of: {', '.join(engine_names())}"
        ) from None


def create_engine(name: str, **options: Any) -> Engine:
    """Create an engine by name; options go to its constructor (e.g. weights, device)."""
    info = engine_info(name)
    factory = _FACTORIES.get(name)
    if factory is None:
        module_name, attr = info.target.split(":")
        factory = getattr(importlib.import_module(module_name), attr)
        _FACTORIES[name] = factory
    return factory(**options)


register_engine(
    "closed-form", "dim_studio.engines.classical:ClosedFormEngine",
    "Closed-form matting (Levin et al. 2008), via PyMatting; no weights needed",
)
register_engine(
    "lkm", "dim_studio.engines.classical:LKMEngine",
    "Large-kernel matting (He et al. 2010), via PyMatting; no weights needed",
)
register_engine(
    "knn", "dim_studio.engines.classical:KNNEngine",
    "KNN matting (Chen et al. 2013), via PyMatting; no weights needed",
)
register_engine(
    "ifm", "dim_studio.engines.ifm:IFMEngine",
    "Information-flow matting (Aksoy et al. 2017), on PyMatting and SciPy; no weights needed",
)
register_engine(
    "dim", "dim_studio.engines.dim:DIMEngine",
    "Deep Image Matting network (Xu et al. 2017); needs a weights file",
    needs_weights=True,
)

__all__ = [
    "CancelFn", "Engine", "EngineInfo", "ProgressFn", "check_cancel", "create_engine",
    "engine_info", "engine_names", "register_engine", "scaled_progress",
]
