"""The image tower's ONNX export: attention written as plain products computes what torch's module does.

The export swaps open_clip's ``MultiheadAttention`` modules for :func:`tower_export._self_attention_type`
while it traces; these tests hold that swap to torch's own module, on random shapes and weights, and show
that the scorer's model is left exactly as it was.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semantify_engine.errors import ClipEngineError
from semantify_engine.scoring import tower_export
from semantify_engine.scoring.clip import get_scorer


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 3),
    tokens=st.integers(1, 9),
    heads=st.sampled_from([1, 2, 4]),
    head_width=st.sampled_from([4, 8]),
    seed=st.integers(0, 2**16),
)
def test_plain_self_attention_equals_torchs_module(batch, tokens, heads, head_width, seed) -> None:
    torch.manual_seed(seed)
    attention = torch.nn.MultiheadAttention(heads * head_width, heads, batch_first=True).eval()
    torch.nn.init.normal_(attention.in_proj_bias)  # torch starts biases at zero, which would hide them
    torch.nn.init.normal_(attention.out_proj.bias)
    plain = tower_export._self_attention_type()(attention)
    x = torch.randn(batch, tokens, heads * head_width)
    with torch.no_grad():
        expected, _ = attention(x, x, x, need_weights=False)
        got, weights = plain(x, x, x, need_weights=False)
    assert weights is None
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_calls_it_does_not_cover_go_to_torchs_module() -> None:
    torch.manual_seed(0)
    attention = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    plain = tower_export._self_attention_type()(attention)
    x, other = torch.randn(2, 5, 8), torch.randn(2, 3, 8)
    mask = torch.triu(torch.full((5, 5), float("-inf")), diagonal=1)
    with torch.no_grad():
        for args, options in (((x, other, other), {}), ((x, x, x), {"attn_mask": mask})):
            torch.testing.assert_close(plain(*args, **options)[0], attention(*args, **options)[0])
    cross = torch.nn.MultiheadAttention(8, 2, kdim=4, vdim=4, batch_first=True)
    assert not tower_export._covered(cross) and not tower_export._covered(torch.nn.MultiheadAttention(8, 2))


def test_the_export_leaves_the_scorers_model_as_it_was(tiny_spec, tmp_path) -> None:
    import onnx

    scorer = get_scorer(tiny_spec)
    before = [(name, type(module)) for name, module in scorer.model.named_modules()]
    tower_export.export_image_tower(scorer, tmp_path / "tower.onnx")
    assert [(name, type(module)) for name, module in scorer.model.named_modules()] == before
    blocks = sum(isinstance(m, torch.nn.MultiheadAttention) for m in scorer.model.visual.modules())
    transposes = [n for n in onnx.load(str(tmp_path / "tower.onnx")).graph.node if n.op_type == "Transpose"]
    assert blocks and len(transposes) <= 4 * blocks + 1, "attention traced through torch's fallback"

    def fail(*args: object, **options: object) -> None:
        raise RuntimeError("exporter failed\nwith a long story")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.onnx, "export", fail)
        with pytest.raises(ClipEngineError, match=r"\(exporter failed\)$"):
            tower_export.export_image_tower(scorer, tmp_path / "again.onnx")
    assert [(name, type(module)) for name, module in scorer.model.named_modules()] == before
    assert not list(tmp_path.glob("again*")), "nothing half-written"
