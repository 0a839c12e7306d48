"""Server-side work of the app: compute a run and pack it compactly for the browser.

No Dash here (so the benchmark and unit tests need none). A request's result goes to
the browser's ``dcc.Store``; the server keeps no per-tab state. It only memoises pure
functions of a config (the landscape of a data/model/grid, the summary of a pinned
run), which give every tab the same numbers for the same settings.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

import numpy as np

from sgdscape.core.curvature import curvature
from sgdscape.core.landscape import Landscape, landscape
from sgdscape.core.problems import Dataset
from sgdscape.errors import SgdscapeError
from sgdscape.records.chain_presets import simulate_chains
from sgdscape.records.run import RunConfig, RunResult, config_trajectory, make_data
from sgdscape.views.fan import MAX_SPOKES, check_fan_run, fan_label, fan_scales, magnified, run_fan
from sgdscape.views.step_source import from_run

from . import figures
from .state import (
    FAN_BATCHES,
    MAX_FAN_POINTS,
    AppState,
    ChainsAppState,
    check_frame_cells,
    parse_query,
    run_key,
)

QUANT_LEVELS = 255  # minibatch landscapes travel as uint8 codes of their log


# ------------------------------------------------------------------ computing runs


@functools.lru_cache(maxsize=8)
def _data_and_landscape(
    problem: str, samples: int, noise: float, seed: int, model: str, grid: int, init_extra: tuple
) -> tuple[Dataset, Landscape]:
    """Data and per-sample landscape for these settings (memoised: a pure function of them)."""
    config = RunConfig(
        problem=problem,
        samples=samples,
        noise_std=noise,
        seed=seed,
        model=model,
        grid=grid,
        init=(0.0, 0.0, *init_extra),
    )
    data = make_data(config)
    surface = landscape(
        config.model_spec,
        data,
        config.grid_spec,
        loss=config.loss_name,
        plane=config.plane(),
        per_sample=True,
        memory_budget=config.memory_budget,
        device="cpu",
    )
    return data, surface


@functools.lru_cache(maxsize=8)
def _encoded_samples(*key: Any) -> tuple[str, list, list]:
    """The per-sample landscapes of ``key`` (see :func:`_data_and_landscape`), encoded once."""
    sample_loss = _data_and_landscape(*key)[1].sample_loss
    assert sample_loss is not None
    return encode_frames(sample_loss)


def landscape_key(config: RunConfig) -> tuple:
    """What the data and landscape of ``config`` depend on."""
    return (
        config.problem,
        config.samples,
        config.noise_std,
        config.seed,
        config.model,
        config.grid,
        tuple(config.init[2:]) if config.init else (),
    )


def compute_result(state: AppState, *, use_cache: bool = True) -> RunResult:
    """The :class:`RunResult` of ``state`` (as :func:`sgdscape.run` computes it).

    Raises :class:`SgdscapeError` for settings the app or :class:`RunConfig` refuse.
    """
    config = state.to_config()
    key = landscape_key(config)
    builder = _data_and_landscape if use_cache else _data_and_landscape.__wrapped__
    data, surface = builder(*key)
    trajectory = config_trajectory(config, data)
    return RunResult(config, data, surface, trajectory)


# ------------------------------------------------------------------ packing


def as_list(values: Any, digits: int = 6) -> list:
    """A JSON-ready nested list, rounded, with NaN and inf as ``None``."""
    array = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(array)
    rounded = np.round(np.where(finite, array, 0.0), digits)
    if finite.all():
        return rounded.tolist()
    out = rounded.astype(object)
    out[~finite] = None
    return out.tolist()


def quantise_log(values: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """uint8 codes of ``log(values)`` per frame, ``values: (F, G2, G1)``.

    Returns ``(codes, lo, hi)``: frame ``f`` decodes as ``lo[f] + code * (hi[f] - lo[f]) / 255``.
    Zeros are clipped to the frame's smallest positive value (as :func:`sgdscape.views.step_figure.safe_log`).
    """
    # float32 is ample for 8-bit codes and halves the memory traffic
    flat = np.asarray(values, dtype=np.float32).reshape(values.shape[0], -1)
    positive = np.where((flat > 0) & np.isfinite(flat), flat, np.inf)
    smallest = positive.min(1)
    floor = np.maximum(np.where(np.isfinite(smallest), smallest, 1.0), 1e-30).astype(np.float32)
    logs = np.log(np.clip(np.nan_to_num(flat, nan=0.0, posinf=1e30), floor[:, None], None))
    lo, hi = logs.min(1).astype(np.float64), logs.max(1).astype(np.float64)
    span = np.where(hi > lo, hi - lo, 1.0)
    codes = np.rint((logs - lo[:, None]) / span[:, None] * QUANT_LEVELS).astype(np.uint8)
    return codes.tobytes(), lo, hi


def encode_frames(frames: np.ndarray) -> tuple[str, list, list]:
    """``(base64 codes, lo, hi)`` of :func:`quantise_log`, JSON-ready."""
    codes, lo, hi = quantise_log(frames)
    return base64.b64encode(codes).decode("ascii"), as_list(lo), as_list(hi)


def minibatch_frames(result: RunResult) -> tuple[np.ndarray, list[list[int]]]:
    """The landscapes the browser needs for every step's minibatch, as few as possible.

    Returns ``(frames (F, G2, G1), step_frames)``: the minibatch landscape of step ``t``
    is the mean of ``frames[step_frames[t]]`` (in loss, not log, units). Either every
    distinct minibatch is a frame (one per step), or, when that is more frames or more
    work than the samples themselves, the per-sample landscapes are the frames and the
    browser averages them.
    """
    trajectory = result.trajectory
    samples = result.landscape.sample_loss
    assert samples is not None
    batches = [tuple(sorted(trajectory.batch(t).tolist())) for t in range(trajectory.n_steps)]
    distinct = list(dict.fromkeys(batches))
    batch_size = max(len(b) for b in batches)
    n = samples.shape[0]
    if len(distinct) < n and len(distinct) * batch_size <= 2 * n:
        index = {batch: i for i, batch in enumerate(distinct)}
        frames = np.stack([samples[list(batch)].mean(axis=0) for batch in distinct])
        return frames, [[index[b]] for b in batches]
    return samples, [list(b) for b in batches]


def run_payload(result: RunResult, state: AppState, *, use_cache: bool = True) -> dict[str, Any]:
    """Everything the page needs to show ``result`` at any step with no server round trip."""
    # a run that diverges holds huge values before its NaNs: norms may overflow to inf
    with np.errstate(over="ignore", invalid="ignore"):
        return _run_payload(result, state, use_cache=use_cache)


def _run_payload(result: RunResult, state: AppState, *, use_cache: bool) -> dict[str, Any]:
    frames, step_frames = minibatch_frames(result)
    check_frame_cells(frames.shape[0], state.grid)
    if use_cache and frames is result.landscape.sample_loss:
        codes, lo, hi = _encoded_samples(*landscape_key(result.config))
    else:
        codes, lo, hi = encode_frames(frames)
    trajectory = result.trajectory
    path = result.path()
    source = from_run(result)
    scale = source.arrow_scale
    # the arrows as every surface draws them (sgdscape.views.style.arrow_rule): tips and labels
    minibatch, full = source.arrows(names=("−minibatch gradient", "−full gradient"))
    assert full is not None  # the app's runs record the full gradient
    assert trajectory.final_risk is not None  # and the risk
    diverged = int(trajectory.diverged_step)
    summary = (
        f"{result.n_steps} steps, final risk {float(trajectory.final_risk):.4g}"
        if diverged < 0
        else f"diverged at step {diverged} (inf or NaN): recorded up to there"
    )
    return {
        "key": run_key(state),
        "n_steps": result.n_steps,
        "labels": list(result.landscape.labels),
        "w1": as_list(result.landscape.w1),
        "w2": as_list(result.landscape.w2),
        "path": as_list(path),
        "arrow": as_list(minibatch.tip),
        "full_arrow": as_list(full.tip),
        "arrow_label": list(minibatch.labels),
        "full_arrow_label": list(full.labels),
        "arrow_scale": scale,
        "batch_loss": as_list(trajectory.batch_loss),
        "risk": as_list(trajectory.risk),
        "noise_norm": as_list(trajectory.noise_norm),
        "cosine": as_list(trajectory.cosine),
        "batches": [[int(i) for i in trajectory.batch(t)[:6]] for t in range(result.n_steps)],
        "batch_sizes": [len(trajectory.batch(t)) for t in range(result.n_steps)],
        "frames": {
            "codes": codes,
            "lo": lo,
            "hi": hi,
            "levels": QUANT_LEVELS,
            "shape": [int(frames.shape[1]), int(frames.shape[2])],
        },
        "step_frames": step_frames,
        "diverged_step": diverged,
        "summary": summary,
        "samples": len(result.data),
    }


@functools.lru_cache(maxsize=32)
def pin_summary(key: str) -> dict[str, Any]:
    """Path and curves of a pinned run (memoised: a pure function of its settings)."""
    state, _ = parse_query(key, allow_pins=False)
    result = compute_result(state)
    trajectory = result.trajectory
    with np.errstate(over="ignore", invalid="ignore"):
        noise_norm = as_list(trajectory.noise_norm)
    return {
        "key": key,
        "label": state.label(),
        "path": as_list(result.path()),
        "risk": as_list(trajectory.risk),
        "noise_norm": noise_norm,
        "n_steps": result.n_steps,
    }


def page_payload(state: AppState, *, use_cache: bool = True) -> dict[str, Any]:
    """The run of ``state``, its pinned runs and the base figures, ready for ``dcc.Store``.

    Raises :class:`SgdscapeError` (to be shown on the page) for refused settings.
    """
    result = compute_result(state, use_cache=use_cache)
    payload = run_payload(result, state, use_cache=use_cache)
    pins = []
    for key in state.pins:
        try:
            pins.append(pin_summary(key) if use_cache else pin_summary.__wrapped__(key))
        except SgdscapeError:
            continue
    payload["pins"] = pins
    payload["label"] = state.label()
    payload["figures"] = figures.base_figures(result, payload, pins)
    if state.sharpness:  # the sharpness panel: exact Hessians of the risk and each minibatch
        record = curvature(result)
        payload["sharpness"] = as_list(record.lambda_max)
        payload["figures"]["sharpness"] = figures.sharpness_figure(record)
    if state.fan:  # the fan of next steps on the left panel, or why this run has none
        try:
            fan = fan_payload(result)
        except SgdscapeError as error:
            payload["fan_error"] = f"no fan of next steps: {error}"
        else:
            payload["fan"] = fan
            payload["fan_first"] = len(payload["figures"]["batch"]["data"])
            payload["figures"]["batch"]["data"] += fan.pop("traces")
    payload["step"] = min(max(state.step, 0), result.n_steps - 1)
    return payload


# ------------------------------------------------------------------ the fan of next steps


def fan_batches(result: RunResult) -> int | None:
    """How many minibatches each step's fan samples: ``None`` (one point per sample) for
    batch 1, else :data:`FAN_BATCHES`, fewer for long runs (at least 32)."""
    if int(result.config.batch_size) == 1:
        return None
    return max(32, min(FAN_BATCHES, MAX_FAN_POINTS // max(result.n_steps, 1)))


def fan_payload(result: RunResult) -> dict[str, Any]:
    """Every step's fan of next steps (:func:`sgdscape.views.fan.run_fan`) magnified as the
    left panel's arrows are (:func:`sgdscape.views.fan.fan_scales`), as the widget draws it.

    Returns ``points`` ``(T, 2, N)`` (x and y lists per step), ``mean`` and ``full`` ``(T, 2)``,
    ``label`` and ``scale`` ``(T,)``, ``max_spokes`` and the base ``traces`` of step 0
    (:func:`sgdscape.surfaces.app.figures.fan_figure_traces`). Raises :class:`SgdscapeError`
    when the run has no fan (:func:`~sgdscape.views.fan.check_fan_run`) or when the fans
    would exceed :data:`MAX_FAN_POINTS` points.
    """
    check_fan_run(result)
    n_batches = fan_batches(result)
    size = len(result.data) if n_batches is None else n_batches
    total = size * result.n_steps
    if total > MAX_FAN_POINTS:
        raise SgdscapeError(
            f"this run's fans would have {total:,} points ({result.n_steps} steps x {size}), "
            f"above the app's cap of {MAX_FAN_POINTS:,}; lower the samples or the epochs."
        )
    scales = fan_scales(from_run(result))
    points, means, fulls, labels = [], [], [], []
    traces: list[dict[str, Any]] = []
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(result.n_steps):
            fan = run_fan(result, step, n_batches=n_batches)
            scale = float(scales[step])
            shown = magnified(fan, scale)
            points.append([as_list(shown.next[:, 0]), as_list(shown.next[:, 1])])
            means.append(as_list(shown.mean[:2]))
            fulls.append(as_list(shown.full_step[:2]))
            labels.append(fan_label(fan, scale))
            if step == 0:
                traces = figures.fan_figure_traces(fan, scale)
    return {
        "points": points,
        "mean": means,
        "full": fulls,
        "label": labels,
        "scale": as_list(scales),
        "max_spokes": MAX_SPOKES,
        "traces": traces,
    }


# ------------------------------------------------------------------ the chains view


@functools.lru_cache(maxsize=8)
def chains_payload(state: ChainsAppState) -> dict[str, Any]:
    """The chains view of ``state`` (memoised: a pure function of it), ready for ``dcc.Store``.

    Runs the chains as ``sgdscape chains`` does (:func:`sgdscape.records.chain_presets.simulate_chains`)
    and draws them with the offline page's figure
    (:func:`sgdscape.views.chains_plotly.chains_player`); see
    :func:`sgdscape.surfaces.app.figures.chains_figure` for what the payload holds.
    Raises :class:`SgdscapeError` for settings the app refuses.
    """
    run = simulate_chains(state.to_setup())
    payload = figures.chains_figure(run.chains, run.landscape, run.data)
    chains = run.chains
    final = chains.final.astype(np.float64)
    diverged = int((~np.isfinite(final).all(axis=1)).sum())
    payload["summary"] = (
        f"{chains.n_chains} chains x {state.steps} steps of {chains.config.optimizer} on "
        f"{chains.config.model} (lr {state.lr:g}, batch {state.batch}, {state.sampling}, "
        f"seed {state.seed})" + (f" · {diverged} diverged" if diverged else "")
    )
    return payload
