"""Evaluating mappers: coverage and overlap (paper §5.1), expressiveness, metric fidelity, semantics."""
