"""The mapper: slider values (descriptor scores) → morphable-model coefficients.

:mod:`.mapper` holds the numpy side that every Blender can run: the :class:`Mapper` (a small MLP evaluated
with three matrix products, well under a millisecond per slider move), its file format (``.npz`` without
pickle plus a JSON header) and the check that a mapper belongs to a model. Training needs torch, and CLIP
for words: its hyper-parameters (:mod:`.settings`), the loop on arrays (:mod:`.train`, with the
:mod:`.consistency` term and the plausibility :mod:`.guard`), a dataset's columns (:mod:`.columns`, new
words scored by :mod:`.word_scores`), the run from a dataset folder (:mod:`.from_dataset`, ending with the
:mod:`.reach` cut), what a mapper records of its data (:mod:`.provenance`) and adding a word
(:mod:`.add_word`). They are imported only when asked for, so importing this package never imports torch.
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
