"""CLIP's image tower as ONNX: the fp32 export and its int8 quantisation, each written atomically.

Two choices here decide how fast ONNX Runtime runs the tower on a CPU (``benchmarks/bench_clip_engines.py``
measures them; ViT-B-32 at batch 32 on 2 cores, ms an image):

* **Attention is exported as the plain product it is.** ``torch.nn.MultiheadAttention`` traces through its
  general fallback, which swaps batch and sequence axes and back around every projection (eight
  transposes a layer). For self-attention without a mask, which is what open_clip's image towers compute,
  :class:`_SelfAttention` computes the same thing from the same weights with three: 97 → 49 transposes in
  ViT-B-32, 19.2 → 17.9 ms an image at int8. Any other call (a mask, cross-attention) goes to the
  original module unchanged, and the fidelity check measures every export against torch anyway.
* **int8 quantises the matrix products only.** ONNX Runtime's integer convolution (``ConvInteger``) has
  no fast kernel: the patch-embedding convolution took 22 % of an int8 image's time, about four times
  its fp32 convolution. Leaving it fp32 took the image from 23.6 to 18.0 ms at the same fidelity.

torch, onnx and onnxruntime are imported inside functions only, like everywhere in scoring.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import atomic_path
from ..errors import ClipEngineError, first_line

if TYPE_CHECKING:
    from .clip import ClipScorer

OPSET = 17
QUANTISED_OPS = ("MatMul",)
"""What int8 quantises: the transformer's matrix products, not the patch convolution (see above)."""


def tower_input(scorer: ClipScorer) -> tuple[int, ...]:
    """The image tower's input shape for one image, (3, S, S), as the model's own preprocess makes it."""
    return tuple(scorer.preprocess_images(np.zeros((1, 8, 8, 3), dtype=np.uint8)).shape[1:])


def export_image_tower(scorer: ClipScorer, path: Path) -> None:
    """Write the scorer's image tower (fp32, any batch size) to ``path`` as ONNX, atomically.

    The TorchScript exporter (``dynamo=False``) needs nothing beyond onnx; it must trace with autograd
    on, or torch takes its fused attention path, which has no ONNX form.
    """
    import torch

    example = scorer.preprocess_images(np.zeros((2, *tower_input(scorer)[1:], 3), dtype=np.uint8))
    try:
        with (
            atomic_path(path) as temporary,
            torch.enable_grad(),
            _quiet(),
            _plain_self_attention(scorer.model.visual),
        ):
            torch.onnx.export(
                _image_tower(scorer.model),
                (example,),
                str(temporary),
                opset_version=OPSET,
                dynamo=False,
                input_names=["pixels"],
                output_names=["features"],
                dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
            )
    except Exception as error:  # the exporter raises many types; each means "no ONNX engine for this"
        raise ClipEngineError(
            f"could not export {scorer.spec.describe()}'s image tower to ONNX ({first_line(error)})"
        ) from error


def quantize_image_tower(fp32: Path, path: Path) -> None:
    """Quantise an exported tower's matrix products to int8 (dynamic quantisation), atomically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with atomic_path(path) as temporary, _quiet():
            quantize_dynamic(
                fp32, temporary, weight_type=QuantType.QInt8, op_types_to_quantize=list(QUANTISED_OPS)
            )
    except Exception as error:
        raise ClipEngineError(f"could not quantise {fp32} to int8 ({first_line(error)})") from error


def _image_tower(model: Any) -> Any:
    """``model.encode_image`` as a module of its own, so that the export holds the image tower only."""
    import torch

    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = model

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return self.clip.encode_image(pixels)

    return ImageTower().eval()


def _self_attention_type() -> type:
    """:class:`_SelfAttention`, built on first use so that importing this module needs no torch."""
    import torch
    import torch.nn.functional as functional

    class SelfAttention(torch.nn.Module):
        """A batch-first ``MultiheadAttention``'s self-attention, written as the products it computes.

        Same weights (the wrapped module's), same maths; only the traced graph differs. Calls it does
        not cover go to the wrapped module.
        """

        def __init__(self, attention: torch.nn.MultiheadAttention) -> None:
            super().__init__()
            self.attention = attention

        def forward(
            self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, **options: Any
        ) -> tuple[torch.Tensor, None]:
            mha = self.attention
            if not (key is query and value is query and options.get("attn_mask") is None):
                return mha(query, key, value, **options)
            qkv = functional.linear(query, mha.in_proj_weight, mha.in_proj_bias)
            q, k, v = qkv.unflatten(-1, (3, mha.num_heads, mha.head_dim)).permute(2, 0, 3, 1, 4).unbind(0)
            weights = torch.softmax((q * mha.head_dim**-0.5) @ k.transpose(-2, -1), dim=-1)
            mixed = (weights @ v).transpose(1, 2).flatten(-2)
            return functional.linear(mixed, mha.out_proj.weight, mha.out_proj.bias), None

    return SelfAttention


def _covered(attention: Any) -> bool:
    """Whether :class:`_SelfAttention` computes what this ``MultiheadAttention`` computes."""
    return (
        attention.batch_first
        and attention._qkv_same_embed_dim
        and attention.in_proj_bias is not None
        and attention.bias_k is None
        and not attention.add_zero_attn
    )


@contextlib.contextmanager
def _plain_self_attention(tower: Any) -> Iterator[None]:
    """Swap the tower's covered attention modules for :class:`_SelfAttention` while exporting.

    The scorer's model is shared (torch encodes with it), so the swap is undone whatever happens.
    """
    import torch

    wrapper = _self_attention_type()
    swapped = [  # all found before any is swapped: a wrapper holds the module it wraps
        (module, name, child)
        for module in tower.modules()
        for name, child in module.named_children()
        if isinstance(child, torch.nn.MultiheadAttention) and _covered(child)
    ]
    for module, name, child in swapped:
        setattr(module, name, wrapper(child))
    try:
        yield
    finally:
        for module, name, child in swapped:
            setattr(module, name, child)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's and quantiser's advice (warnings, root-logger lines) is for their developers."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
