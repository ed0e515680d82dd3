"""Scoring renders against words with CLIP (step 3 of the Semantify pipeline).

:mod:`.clip` holds the model loading (weights resolved the normal open_clip way, with a clear error when
none can be had), image / text encoding and the cosine and logit scores. This package imports nothing
heavy at import time: torch and open_clip are imported only when a model is first loaded, so the Blender
add-on can import the engine while it registers without pulling in torch.
"""
