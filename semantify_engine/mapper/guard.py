"""The plausibility guard: keeps every slider position inside the model's plausible region.

A mapper for a model with a source bank must map every slider vector of its box, corners included, to a
body of the source population (:mod:`..models.plausibility`). Nine sliders that overlap (weight and waist,
height and proportions) make most of that box requests no body meets; trained for accuracy alone, the
bundled body's mapper put 54 % of random slider settings and 90 % of the box corners outside the region.
A penalty on implausible answers in the same training cost accuracy everywhere (the height slider went from
3 to 13–30 mm off): pulling the corners in bent the whole network.

So the accurate network is trained first, as it is, and frozen; then a small network of its own, the guard,
is trained to be **added** to its output:

- a penalty on every answer whose plausibility score passes the population's :data:`TRAINING_REGION`
  percentile, at slider vectors drawn where implausible answers live (the box's corners, faces and edges,
  each slider's ends: :func:`_probes`) and at the data and sweep rows below;
- a hold term (:data:`HOLD_WEIGHT`) that keeps the guard's output at 0 on the training rows and on one-slider
  sweeps from the defaults, where the accurate network's answers are what the sliders mean.

The penalty weighs :data:`PENALTY_WEIGHT` / :data:`HOLD_WEIGHT` times more: where a request and plausibility
conflict, plausibility wins and the slider stops short (the mapper's figures say where: the achieved range).
The guard's last layer starts at zero, so it starts as "no correction". Both networks have the same depth and
are merged into one block-diagonal MLP (:func:`merge`): the mapper file and the slider path do not change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch

    from ..models.plausibility import Plausibility

TRAINING_REGION = 60.0
"""Percentile of the source population past which the penalty acts. Every slider position must map inside
the 99 % region, but the neighbour distance calls some bodies typical that anny itself cannot make: on the
bundled body's measurement mapper, corners that pair a small waist with large hips (a pinched hourglass)
scored p90–p97 while anny, fitted to them, missed by 3.5–3.8 mm, three times a realistic adult's 1.25 mm
(``tools/validate_plausibility.py``). Trained with a penalty past 97 / 90 / 80 / 60, the worst box corner
left anny 3.76 / 3.50 / 3.14 / 2.85 mm off and the worst slider end 2.54 / 2.53 / 2.50 / 2.39 mm, while the
height slider's mean error went 4.7 / 5.0 / 5.8 / 6.1 mm and the girths' stayed at 1.5–3.9 mm: 60 keeps
the sliders' meaning and the bodies human. It does not hold a mapper's answers at the population's 60th
percentile: answers are averages of bodies, mostly more typical than any one of them."""
PENALTY_WEIGHT = 50.0
"""Weight of the squared excess plausibility score (std units)."""
HOLD_WEIGHT = 20.0
"""Weight of the guard's squared output (normalised coefficient units) where it should do nothing."""
GUARD_WIDTH = 128
"""Units per hidden layer of the guard (the mapper's own has 800 and 500)."""
GUARD_STEPS = 3000
"""Adam steps of the guard, whatever the data's size (20 epochs of 6000 samples): on a few hundred samples,
epochs would give the hold term too few steps to keep the sweeps exact."""
GUARD_LR = 1e-3
GUARD_BATCH = 32
ANCHORS = 32
"""Fresh slider vectors per step for the penalty, and as many one-slider sweeps for the hold term."""


class Units(Protocol):
    input_mean: np.ndarray
    input_std: np.ndarray
    output_mean: np.ndarray
    output_std: np.ndarray


def fit_guard(
    network: torch.nn.Module,
    inputs: np.ndarray,
    box: np.ndarray,
    units: Units,
    plausibility: Plausibility,
    bounds: tuple[np.ndarray, np.ndarray] | None,
    seed: int,
) -> tuple[torch.nn.Sequential, dict[str, Any]]:
    """Train the guard for the frozen ``network`` (normalised inputs → normalised coefficients).

    ``inputs`` are the normalised training rows, ``box`` (d, 3) the normalised slider low / high / default,
    ``bounds`` the model's hard coefficient bounds in real units (clamped as in use). Returns the guard and
    its figures (settings, final penalty and hold losses). Runs under the caller's seeded torch state.
    """
    import torch

    width, outputs = inputs.shape[1], len(units.output_mean)
    depth = sum(isinstance(layer, torch.nn.Linear) for layer in network)
    layers: list[torch.nn.Module] = []
    size = width
    for _ in range(depth - 1):
        layers += [torch.nn.Linear(size, GUARD_WIDTH), torch.nn.ReLU()]
        size = GUARD_WIDTH
    last = torch.nn.Linear(size, outputs)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    guard = torch.nn.Sequential(*layers, last)
    limit = plausibility.limit(TRAINING_REGION, components=outputs)
    mean = torch.from_numpy(np.asarray(units.output_mean, np.float32))
    std = torch.from_numpy(np.asarray(units.output_std, np.float32))
    low_bound = high_bound = None
    if bounds is not None:
        low_bound, high_bound = (torch.from_numpy(np.asarray(b, np.float32)) for b in bounds)
    low, high, default = (torch.from_numpy(np.ascontiguousarray(box[:, k], np.float32)) for k in range(3))
    rows = torch.from_numpy(np.ascontiguousarray(inputs, np.float32))
    generator = torch.Generator().manual_seed(seed + 2)
    optimiser = torch.optim.Adam(guard.parameters(), lr=GUARD_LR)
    network.eval()

    def excess(answers: torch.Tensor) -> torch.Tensor:
        real = answers * std + mean
        if low_bound is not None and high_bound is not None:
            real = torch.clamp(real, low_bound, high_bound)
        return torch.relu(plausibility.torch_score(real) - limit)

    penalty_total = hold_total = 0.0
    last_steps = max(1, GUARD_STEPS // 20)  # the losses reported: the mean over the last 5 % of steps
    order, start = torch.randperm(len(rows), generator=generator), 0
    for step in range(GUARD_STEPS):
        if start >= len(rows):
            order, start = torch.randperm(len(rows), generator=generator), 0
        held = torch.cat([rows[order[start : start + GUARD_BATCH]], _sweeps(low, high, default, generator)])
        start += GUARD_BATCH
        everything = torch.cat([held, _probes(low, high, default, generator)])
        with torch.no_grad():
            base = network(everything)
        correction = guard(everything)
        penalty = torch.mean(excess(base + correction) ** 2)
        hold = torch.mean(correction[: len(held)] ** 2)
        loss = PENALTY_WEIGHT * penalty + HOLD_WEIGHT * hold
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if step >= GUARD_STEPS - last_steps:
            penalty_total += float(penalty.detach())
            hold_total += float(hold.detach())
    figures = {
        "region": TRAINING_REGION,
        "score_limit": limit,
        "hidden": [GUARD_WIDTH] * (depth - 1),
        "steps": GUARD_STEPS,
        "penalty_weight": PENALTY_WEIGHT,
        "hold_weight": HOLD_WEIGHT,
        "final_penalty": penalty_total / last_steps,
        "final_hold": hold_total / last_steps,
    }
    return guard.eval(), figures


def _probes(low: torch.Tensor, high: torch.Tensor, default: torch.Tensor, generator: torch.Generator) -> Any:
    """Slider vectors where implausible answers live: a quarter at corners of the box, a quarter with one
    slider at an end (the others at their defaults), half with each slider at an end or not at random (a
    third of them are) and anywhere in its range otherwise: the box's faces and edges, where sliders set
    against each other meet (a low weight with the largest hips)."""
    import torch

    count, width = ANCHORS, len(low)
    anywhere = low + torch.rand((count, width), generator=generator) * (high - low)
    corner = torch.where(torch.rand((count, width), generator=generator) < 0.5, high, low)
    mixed = torch.where(torch.rand((count, width), generator=generator) < 1 / 3, corner, anywhere)
    one_end = default.expand(count, width).clone()
    moved = torch.randint(width, (count,), generator=generator)
    one_end[torch.arange(count), moved] = corner[torch.arange(count), moved]
    kind = torch.arange(count)[:, None]
    return torch.where(kind < count // 4, corner, torch.where(kind < count // 2, one_end, mixed))


def _sweeps(low: torch.Tensor, high: torch.Tensor, default: torch.Tensor, generator: torch.Generator) -> Any:
    """One-slider sweeps: one slider anywhere in its range, the others at their defaults."""
    import torch

    count, width = ANCHORS, len(low)
    values = default.expand(count, width).clone()
    moved = torch.randint(width, (count,), generator=generator)
    position = torch.rand(count, generator=generator)
    values[torch.arange(count), moved] = low[moved] + position * (high[moved] - low[moved])
    return values


def merge(
    first: list[tuple[np.ndarray, np.ndarray]], second: list[tuple[np.ndarray, np.ndarray]]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One MLP computing ``first(x) + second(x)``: hidden layers side by side (block-diagonal weights), the
    outputs summed by the last layer. ReLU acts unit by unit, so the blocks never mix. Layers are ``(W, b)``
    with ``W`` (in, out), as the mapper stores them; both networks must have the same depth."""
    if len(first) != len(second):
        raise ValueError(f"cannot merge networks of depth {len(first)} and {len(second)}")
    merged = []
    last = len(first) - 1
    for index, ((w1, b1), (w2, b2)) in enumerate(zip(first, second, strict=True)):
        if index == 0:
            weight = np.concatenate([w1, w2], axis=1)
        else:
            weight = np.zeros(
                (w1.shape[0] + w2.shape[0], w1.shape[1] + (0 if index == last else w2.shape[1]))
            )
            weight[: w1.shape[0], : w1.shape[1]] = w1
            if index == last:
                weight[w1.shape[0] :, :] = w2
            else:
                weight[w1.shape[0] :, w1.shape[1] :] = w2
        if index == last and len(first) == 1:
            weight = w1 + w2  # no hidden layer: two linear maps add up
        bias = b1 + b2 if index == last else np.concatenate([b1, b2])
        merged.append((weight.astype(np.float32), bias.astype(np.float32)))
    return merged
