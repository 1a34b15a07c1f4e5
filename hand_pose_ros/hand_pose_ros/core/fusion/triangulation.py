"""
Triangulation of a hand's keypoints from several views, robust to a wrong view.

The recipe anipose, Pose2Sim and EasyMocap share: a confidence-weighted DLT on undistorted
normalized coordinates (distortion enters once, in core/metric/camera.py), then a few
Gauss-Newton steps on the weighted reprojection error (the DLT minimizes an algebraic error
that weights far cameras less than they deserve). A view whose hand does not agree with the
others (a wrong hand, a hand read mirrored or occluded) is dropped: every subset of views is
tried, largest first, and the first size at which some subset reprojects within the gate in
all its views wins (at least 2 views are always kept). Errors are relative to each view's
hand size in pixels, so one gate fits near and far, small and large hands. Finally, single
keypoints far off in one view (a finger the model guessed behind the palm) are dropped from
that view where two or more views remain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np


@dataclass
class TriangulationOptions:
    """Gates of the robust triangulation, as fractions of each view's hand size."""

    view_gate: float = 0.25  # a view whose median keypoint error exceeds this is dropped
    keypoint_gate: float = 0.5  # one keypoint's error above this drops it from that view
    refine_steps: int = 3  # Gauss-Newton steps after the DLT
    max_subset_views: int = 8  # exhaustive subset search up to this many views, then greedy
    # Weigh each view by focal / hand size px (residuals in hand sizes, see _solve); False
    # weighs residuals in pixels.
    size_weighting: bool = True


@dataclass
class Triangulated:
    """A hand's triangulated keypoints and which view contributed what."""

    points: np.ndarray  # (K, 3) world metres (NaN where fewer than 2 views remained)
    used: np.ndarray  # (V, K) bool: view v contributed keypoint k
    kept: np.ndarray  # (V,) bool: view kept by the subset search
    errors_px: np.ndarray  # (V,) RMS reprojection error per view, pixels (all K, every view)
    relative: np.ndarray  # (V,) median keypoint error / hand size per view
    keypoint_errors_px: np.ndarray  # (V, K) per view and keypoint, pixels


def dlt(poses: np.ndarray, normalized: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """
    Weighted DLT of K points seen in V views.

    poses (V, 3, 4) [R | t] world -> camera; normalized (V, K, 2) undistorted x/z, y/z;
    weights (V, K) >= 0 (0: not seen). Returns (K, 3); NaN where fewer than 2 views weigh.
    """
    poses = np.asarray(poses, dtype=np.float64)
    x = np.asarray(normalized, dtype=np.float64)
    w = np.nan_to_num(np.asarray(weights, dtype=np.float64))
    w = np.where(np.all(np.isfinite(x), axis=-1), w, 0.0)
    x = np.nan_to_num(x)
    rows_u = x[..., 0, None] * poses[:, None, 2, :] - poses[:, None, 0, :]  # (V, K, 4)
    rows_v = x[..., 1, None] * poses[:, None, 2, :] - poses[:, None, 1, :]
    a = np.concatenate([rows_u * w[..., None], rows_v * w[..., None]], axis=0)  # (2V, K, 4)
    a = a.transpose(1, 0, 2)  # (K, 2V, 4)
    # Rows are normalized so that the weight, not the row's algebraic size, sets its say.
    norms = np.linalg.norm(a, axis=-1, keepdims=True)
    a = a / np.maximum(norms, 1e-12) * (norms > 0)
    _, _, vt = np.linalg.svd(a)
    h = vt[:, -1, :]
    with np.errstate(divide='ignore', invalid='ignore'):
        points = h[:, :3] / h[:, 3:4]
    points[np.sum(w > 0, axis=0) < 2] = np.nan
    return points


def project_normalized(poses: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V, K, 2) normalized projections of (K, 3) world points, and (V, K) depths."""
    cam = np.einsum('vij,kj->vki', poses[:, :, :3], points) + poses[:, None, :, 3]
    z = cam[..., 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        return cam[..., :2] / z[..., None], z


def refine(poses: np.ndarray, normalized: np.ndarray, weights: np.ndarray,
           focals: np.ndarray, points: np.ndarray, steps: int) -> np.ndarray:
    """Gauss-Newton on the weighted reprojection error in pixels, every point at once."""
    poses = np.asarray(poses, dtype=np.float64)
    x = np.nan_to_num(np.asarray(normalized, dtype=np.float64))
    w = np.nan_to_num(np.asarray(weights, dtype=np.float64)) * np.asarray(focals)[:, None] ** 2
    rot = poses[:, :, :3]
    pts = np.array(points, dtype=np.float64)
    ok = np.all(np.isfinite(pts), axis=1)
    for _ in range(steps):
        if not np.any(ok):
            break
        proj, z = project_normalized(poses, np.where(ok[:, None], pts, 0.0))
        good = (z > 1e-6) & (w > 0)
        wz = np.where(good, w, 0.0)
        zs = np.where(good, z, 1.0)
        r = np.where(good[..., None], proj - x, 0.0)  # (V, K, 2)
        # d(proj)/dX = (R[0:2] - proj * R[2]) / z
        jac = (rot[:, None, :2, :] - proj[..., None] * rot[:, None, 2:3, :]) / zs[..., None, None]
        jac = np.where(good[..., None, None], jac, 0.0)  # (V, K, 2, 3)
        jtj = np.einsum('vk,vkai,vkaj->kij', wz, jac, jac)
        jtr = np.einsum('vk,vkai,vka->ki', wz, jac, r)
        jtj += np.eye(3) * 1e-9 * np.trace(jtj, axis1=1, axis2=2)[:, None, None]
        solvable = ok & (np.sum(good, axis=0) >= 2)
        step = np.zeros_like(pts)
        step[solvable] = np.linalg.solve(jtj[solvable], -jtr[solvable][..., None])[..., 0]
        pts = np.where(solvable[:, None], pts + step, pts)
    return pts


def reprojection_px(poses: np.ndarray, normalized: np.ndarray, focals: np.ndarray,
                    points: np.ndarray) -> np.ndarray:
    """(V, K) reprojection distances in (undistorted) pixels; NaN where not computable."""
    proj, z = project_normalized(poses, points)
    err = np.linalg.norm(proj - normalized, axis=-1) * np.asarray(focals)[:, None]
    return np.where(z > 1e-6, err, np.nan)


def _solve(poses: np.ndarray, x: np.ndarray, w: np.ndarray, focals: np.ndarray,
           sizes: np.ndarray, steps: int, size_weighting: bool = True) -> np.ndarray:
    """
    DLT then refinement, each view's residuals in its own hand sizes.

    A landmark model's pixel error grows with the hand's size in the image, so a view's
    angular error is about (error per hand size) x (hand size px / focal): weighing each
    view by focal / hand size px is the maximum-likelihood weighting under that model
    (a near camera with a big hand is no more precise in angle than a far one).
    """
    gain = focals / np.maximum(sizes, 1.0) if size_weighting else focals
    gain = gain / np.mean(gain)
    return refine(poses, x, w * gain[:, None], gain, dlt(poses, x, w * gain[:, None]), steps)


def _relative(err: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    med = np.median(np.where(np.isfinite(err), err, np.inf), axis=1)
    return np.where(np.isfinite(med), med / np.maximum(sizes, 1.0), np.inf)


def _subset_search(poses: np.ndarray, x: np.ndarray, w: np.ndarray, focals: np.ndarray,
                   sizes: np.ndarray, options: TriangulationOptions) -> np.ndarray:
    """(V,) bool: the views kept, largest agreeing subset first (see the module doc)."""
    n = len(poses)
    everyone = np.ones(n, dtype=bool)
    if n <= 2:
        return everyone

    def score(subset: tuple[int, ...]) -> tuple[bool, float]:
        idx = list(subset)
        pts = _solve(poses[idx], x[idx], w[idx], focals[idx], sizes[idx], 1,
                     options.size_weighting)
        rel = _relative(reprojection_px(poses[idx], x[idx], focals[idx], pts), sizes[idx])
        return bool(np.all(rel <= options.view_gate)), float(np.max(rel))

    if n > options.max_subset_views:  # greedy: drop the worst view while the gate fails
        kept = list(range(n))
        while len(kept) > 2:
            passed, _ = score(tuple(kept))
            if passed:
                break
            kept = min((tuple(s) for s in combinations(kept, len(kept) - 1)),
                       key=lambda s: score(s)[1])
            kept = list(kept)
        mask = np.zeros(n, dtype=bool)
        mask[kept] = True
        return mask
    best: tuple[float, tuple[int, ...]] | None = None
    for size in range(n, 1, -1):
        for subset in combinations(range(n), size):
            passed, worst = score(subset)
            if passed and (best is None or worst < best[0]):
                best = (worst, subset)
        if best is not None:
            break
    if best is None:  # no pair agrees within the gate: keep the pair that agrees best
        best = min(((score(s)[1], s) for s in combinations(range(n), 2)), key=lambda b: b[0])
    mask = np.zeros(n, dtype=bool)
    mask[list(best[1])] = True
    return mask


def triangulate(poses: np.ndarray, normalized: np.ndarray, weights: np.ndarray,
                focals: Sequence[float], hand_sizes: Sequence[float],
                options: TriangulationOptions | None = None) -> Triangulated:
    """
    Robust triangulation of one hand (K keypoints) seen in V >= 2 views.

    hand_sizes (V,): each view's hand size in pixels, the unit of the gates.
    """
    options = options or TriangulationOptions()
    poses = np.asarray(poses, dtype=np.float64)
    x = np.asarray(normalized, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    focals = np.asarray(focals, dtype=np.float64)
    sizes = np.asarray(hand_sizes, dtype=np.float64)
    if len(poses) < 2:
        raise ValueError('triangulation needs at least 2 views')
    kept = _subset_search(poses, x, w, focals, sizes, options)
    wk = np.where(kept[:, None], w, 0.0)
    points = _solve(poses, x, wk, focals, sizes, options.refine_steps, options.size_weighting)
    err = reprojection_px(poses, x, focals, points)
    # Per keypoint: drop a view's observation far off the others, where 2 views remain.
    gate = options.keypoint_gate * np.maximum(sizes, 1.0)[:, None]
    bad = (wk > 0) & ~(err <= gate)
    if np.any(bad):
        trial = np.where(bad, 0.0, wk)
        enough = np.sum(trial > 0, axis=0) >= 2
        trial = np.where(enough[None, :], trial, wk)
        if not np.array_equal(trial, wk):
            wk = trial
            points = _solve(poses, x, wk, focals, sizes, options.refine_steps,
                            options.size_weighting)
            err = reprojection_px(poses, x, focals, points)
    with np.errstate(all='ignore'):
        rms = np.sqrt(np.nanmean(err ** 2, axis=1))
    return Triangulated(points=points, used=wk > 0, kept=kept, errors_px=rms,
                        relative=_relative(err, sizes), keypoint_errors_px=err)
