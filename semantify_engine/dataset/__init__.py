"""Datasets: deterministic sampling, the chunked resumable store, and the render → CLIP → score builder."""
