"""The mapper: slider values (descriptor scores) → morphable-model coefficients.

:mod:`.mapper` holds the numpy side that every Blender can run: the :class:`Mapper` (a small MLP evaluated
with three matrix products, well under a millisecond per slider move), its file format (``.npz`` without
pickle plus a JSON header) and the check that a mapper belongs to a model. Training (:mod:`.train`) and
adding a word (:mod:`.add_word`) need torch, and CLIP for words; they are imported only when asked for, so
importing this package never imports torch.
"""

from .mapper import (
    DESCRIPTOR_KINDS,
    Descriptor,
    Mapper,
    MapperError,
    check_model,
    load_mapper,
    model_identity,
    read_mapper_header,
    save_mapper,
)

__all__ = [
    "DESCRIPTOR_KINDS",
    "Descriptor",
    "Mapper",
    "MapperError",
    "check_model",
    "load_mapper",
    "model_identity",
    "read_mapper_header",
    "save_mapper",
]
