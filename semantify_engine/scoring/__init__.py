"""Scoring renders against words with CLIP (step 3 of the Semantify pipeline).

:mod:`.clip` holds image / text encoding and the cosine and logit scores; :mod:`.clip_spec` says which
CLIP to use, and :mod:`.clip_loading` loads it (weights resolved the normal open_clip way through
:mod:`.clip_cache`, with a clear error from :mod:`.clip_network` when none can be had). This package
imports nothing heavy at import time: torch and open_clip are imported only when a model is first loaded,
so the Blender add-on can import the engine while it registers without pulling in torch.
"""
