"""Super-resolution networks, looked up by name in :mod:`mrisr.models.registry`.

Models are imported lazily by the registry (explicit module paths, no scanning), so a broken
optional model can never break ``import mrisr`` or the other models.
"""

from mrisr.models.registry import REGISTRY, ModelSpec, build_model, count_parameters, get_spec

__all__ = ["REGISTRY", "ModelSpec", "build_model", "count_parameters", "get_spec"]
