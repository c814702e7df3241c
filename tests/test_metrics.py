"""Pose metrics against independent references: scipy Procrustes, brute force, hand-computed cases."""

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.spatial import procrustes as scipy_procrustes
from scipy.spatial.transform import Rotation

from elepose.metrics import (
    PROTOCOLS,
    auc,
    cps,
    evaluate_poses,
    mpjpe,
    n_mpjpe,
    n_pck,
    optimal_scale,
    pa_mpjpe,
    per_pose_errors,
    procrustes_align,
    procrustes_transform,
    roc_auc,
)


def random_poses(n: int, seed: int) -> np.ndarray:
    """``(n, 17, 3)`` non-planar random poses in metres, spread ~0.3 m."""
    return np.random.default_rng(seed).normal(scale=0.3, size=(n, 17, 3))


def test_similarity_transformed_copy_has_zero_pa_mpjpe():
    gt = random_poses(8, 0)
    rng = np.random.default_rng(1)
    rot = Rotation.random(8, random_state=2).as_matrix()
    scale = rng.uniform(0.3, 3.0, size=8)
    shift = rng.normal(size=(8, 1, 3))
    pred = scale[:, None, None] * np.einsum("nik,njk->nji", rot, gt) + shift
    for protocol in PROTOCOLS:
        np.testing.assert_allclose(pa_mpjpe(pred, gt, protocol), 0.0, atol=1e-8)
    # The recovered transform is the inverse of the applied one.
    r, s, _ = procrustes_transform(pred, gt)
    np.testing.assert_allclose(r, rot.transpose(0, 2, 1), atol=1e-10)
    np.testing.assert_allclose(s, 1.0 / scale, rtol=1e-10)


def test_procrustes_residual_matches_scipy_procrustes():
    gt = random_poses(6, 3)
    pred = random_poses(6, 4)  # unrelated poses: some optima are reflections
    aligned = procrustes_align(pred, gt, allow_reflection=True)
    for i in range(6):
        _, _, disparity = scipy_procrustes(gt[i], pred[i])
        centred_gt = gt[i] - gt[i].mean(axis=0)
        ours = ((aligned[i] - gt[i]) ** 2).sum() / (centred_gt**2).sum()
        assert ours == pytest.approx(disparity, rel=1e-9)


def test_proper_procrustes_rotation_matches_orthogonal_procrustes_when_det_positive():
    gt = random_poses(5, 5)
    rot = Rotation.random(5, random_state=6).as_matrix()
    pred = np.einsum("nik,njk->nji", rot, gt) + np.random.default_rng(7).normal(scale=0.05, size=gt.shape)
    r, _, _ = procrustes_transform(pred, gt)
    for i in range(5):
        x, y = pred[i] - pred[i].mean(0), gt[i] - gt[i].mean(0)
        r_rows, _ = orthogonal_procrustes(x, y)  # x @ r_rows ~ y
        assert np.linalg.det(r_rows) > 0  # the case is constructed so no reflection is wanted
        np.testing.assert_allclose(r[i], r_rows.T, atol=1e-10)


def test_mirrored_pose_is_penalised_by_standard_but_not_elepose_code():
    gt = random_poses(4, 8)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])  # x -> -x, no left/right swap
    assert (pa_mpjpe(mirrored, gt, "standard") > 10.0).all()
    np.testing.assert_allclose(pa_mpjpe(mirrored, gt, "elepose-code"), 0.0, atol=1e-8)


def test_standard_procrustes_rotation_is_proper_even_for_mirror_images():
    gt = random_poses(10, 9)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    for pred in (mirrored, random_poses(10, 10)):
        r, _, _ = procrustes_transform(pred, gt)
        np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-10)
    r_free, _, _ = procrustes_transform(mirrored, gt, allow_reflection=True)
    np.testing.assert_allclose(np.linalg.det(r_free), -1.0, atol=1e-10)


def test_standard_scale_minimises_squared_error_over_a_scale_grid():
    gt = random_poses(3, 11)
    pred = 1.7 * gt + np.random.default_rng(12).normal(scale=0.1, size=gt.shape)
    p, g = pred - pred[:, :1], gt - gt[:, :1]
    grid = np.linspace(0.2, 1.5, 13001)  # step 1e-4
    sse = ((grid[:, None, None, None] * p[None] - g[None]) ** 2).sum(axis=(2, 3))  # (grid, N)
    np.testing.assert_allclose(optimal_scale(pred, gt), grid[sse.argmin(axis=0)], atol=1e-4)


def test_elepose_code_scale_is_ratio_of_frobenius_norms():
    gt = random_poses(3, 13)
    pred = random_poses(3, 14)
    p, g = pred - pred[:, :1], gt - gt[:, :1]
    expected = np.sqrt((g**2).sum(axis=(1, 2)) / (p**2).sum(axis=(1, 2)))
    np.testing.assert_allclose(optimal_scale(pred, gt, "elepose-code"), expected, rtol=1e-12)


def test_scaled_copy_has_zero_n_mpjpe_under_both_protocols():
    gt = random_poses(4, 15)
    for protocol in PROTOCOLS:
        np.testing.assert_allclose(n_mpjpe(0.4 * gt, gt, protocol), 0.0, atol=1e-9)


def test_mpjpe_hand_case_three_four_five():
    gt = random_poses(2, 16)
    pred = gt.copy()
    pred[:, 1:] += np.array([0.003, 0.004, 0.0])  # every joint but the pelvis off by 5 mm
    np.testing.assert_allclose(mpjpe(pred, gt), 16 * 5.0 / 17, rtol=1e-9)
    # Same case in millimetre input: unit_to_mm=1.
    np.testing.assert_allclose(mpjpe(pred * 1000, gt * 1000, unit_to_mm=1.0), 16 * 5.0 / 17, rtol=1e-9)


def test_mpjpe_ignores_a_global_translation():
    gt = random_poses(2, 17)
    np.testing.assert_allclose(mpjpe(gt + np.array([3.0, -4.0, 5.0]), gt), 0.0, atol=1e-9)


def pck_case() -> tuple[np.ndarray, np.ndarray]:
    """Prediction in the z = 0 plane, gt off along z by 0, 52 x4, 101 x4, 149 x4, 200 x4 mm.

    The errors are orthogonal to the prediction, so the standard N-MPJPE scale is exactly 1.
    """
    pred = np.zeros((1, 17, 3))
    pred[0, 1:, :2] = np.random.default_rng(18).normal(scale=0.3, size=(16, 2))
    gt = pred.copy()
    gt[0, 1:, 2] = np.repeat([0.052, -0.101, 0.149, -0.200], 4)
    return pred, gt


def test_n_pck_hand_case():
    pred, gt = pck_case()
    assert optimal_scale(pred, gt)[0] == pytest.approx(1.0, abs=1e-12)
    assert n_pck(pred, gt) == pytest.approx(100.0 * 13 / 17)
    assert n_pck(pred, gt, threshold_mm=100.0) == pytest.approx(100.0 * 5 / 17)


def test_auc_hand_case():
    pred, gt = pck_case()
    # Thresholds 0, 5, ..., 150: the pelvis (0 mm) counts at all 31, 52 mm at the 20 from 55,
    # 101 mm at the 10 from 105, 149 mm at 150 only, 200 mm never.
    expected = 100.0 * (31 + 4 * 20 + 4 * 10 + 4 * 1) / (31 * 17)
    assert auc(pred, gt) == pytest.approx(expected)


def test_perfect_prediction_auc_differs_by_strict_threshold_under_elepose_code():
    gt = random_poses(3, 19)
    assert auc(gt, gt) == pytest.approx(100.0)
    assert auc(gt, gt, "elepose-code") == pytest.approx(100.0 * 30 / 31)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cps_of_perfect_prediction_is_300(protocol):
    gt = random_poses(5, 20)
    assert cps(gt.copy(), gt, protocol) == pytest.approx(300.0)


def test_cps_one_joint_off_by_100mm_without_alignment_is_200():
    gt = random_poses(3, 21)
    pred = gt.copy()
    pred[:, 5] += np.array([0.0, 0.06, 0.08])  # 100 mm
    assert cps(pred, gt, "elepose-code") == pytest.approx(200.0)


def test_cps_standard_joint_left_at_100mm_by_procrustes_is_200():
    # Move joint k by e = -J/(J-1) * c_k (c_k: its offset from the centroid). Then Y^T X stays
    # symmetric positive definite and the optimal scale is 1, so Procrustes is the identity
    # after removing the translation e/J: joint k ends |c_k| away, the others |c_k|/(J-1).
    gt = random_poses(1, 22)
    k, n_joints = 10, 17
    c_k = gt[0, k] - gt[0].mean(axis=0)
    gt = gt * (0.1 / np.linalg.norm(c_k))  # |c_k| = 100 mm
    pred = gt.copy()
    pred[0, k] -= n_joints / (n_joints - 1) * c_k * (0.1 / np.linalg.norm(c_k))
    r, s, _ = procrustes_transform(pred, gt)
    np.testing.assert_allclose(r[0], np.eye(3), atol=1e-10)
    assert cps(pred, gt) == pytest.approx(200.0)
    assert pa_mpjpe(pred, gt)[0] == pytest.approx((100.0 + 16 * 100.0 / 16) / 17)


def test_cps_hand_case_over_poses():
    gt = random_poses(3, 23)
    pred = gt.copy()
    pred[1, 3, 0] += 0.1  # worst joint 100 mm -> 200
    pred[2, 4, 1] += 0.35  # worst joint 350 mm -> 0 (never correct within 300 mm)
    assert cps(pred, gt, "elepose-code") == pytest.approx((300.0 + 200.0 + 0.0) / 3)


def test_evaluate_poses_returns_all_metrics_as_floats_and_per_pose_arrays():
    gt = random_poses(6, 24)
    pred = gt + np.random.default_rng(25).normal(scale=0.02, size=gt.shape)
    for protocol in PROTOCOLS:
        result = evaluate_poses(pred, gt, protocol)
        assert set(result) == {"mpjpe", "n_mpjpe", "pa_mpjpe", "n_pck", "auc", "cps"}
        assert all(type(v) is float for v in result.values())
        per_pose = per_pose_errors(pred, gt, protocol)
        expected_shapes = {k: (6,) for k in ("mpjpe", "n_mpjpe", "pa_mpjpe")}
        assert {k: v.shape for k, v in per_pose.items()} == expected_shapes
        assert result["pa_mpjpe"] == pytest.approx(per_pose["pa_mpjpe"].mean())
        assert result["pa_mpjpe"] <= result["n_mpjpe"] + 1e-9


def test_roc_auc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(26)
    scores = rng.integers(0, 6, size=60).astype(float)  # many ties
    labels = rng.random(60) < 0.4
    pos, neg = scores[labels], scores[~labels]
    diff = pos[:, None] - neg[None, :]
    expected = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert roc_auc(scores, labels) == pytest.approx(expected, rel=1e-12)


def test_roc_auc_of_random_scores_is_one_half():
    rng = np.random.default_rng(27)
    assert roc_auc(rng.random(20000), rng.random(20000) < 0.5) == pytest.approx(0.5, abs=0.02)


def test_roc_auc_of_separating_scores_is_one():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True])) == 1.0


def test_roc_auc_rejects_a_single_class():
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(np.arange(4.0), np.ones(4, dtype=bool))


@pytest.mark.parametrize("fn", [n_mpjpe, pa_mpjpe, cps, per_pose_errors, evaluate_poses])
def test_unknown_protocol_raises_naming_valid_ones(fn):
    gt = random_poses(2, 28)
    with pytest.raises(ValueError, match="standard, elepose-code"):
        fn(gt, gt, "paper")


def test_optimal_scale_rejects_unknown_protocol():
    gt = random_poses(2, 29)
    with pytest.raises(ValueError, match="elepose-code"):
        optimal_scale(gt, gt, protocol="paper")


def test_shape_mismatch_raises_with_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 17, 3\).*\(2, 16, 3\)"):
        mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 16, 3)))


@pytest.mark.parametrize("shape", [(17, 3), (2, 17, 2), (0, 17, 3)])
def test_bad_pose_shapes_raise(shape):
    with pytest.raises(ValueError):
        evaluate_poses(np.zeros(shape), np.zeros(shape))


def test_non_finite_input_raises():
    gt = random_poses(2, 30)
    pred = gt.copy()
    pred[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="pred contains NaN"):
        mpjpe(pred, gt)


def test_elevation_agreement_against_scipy_and_by_hand():
    from scipy.stats import pearsonr

    from elepose.evaluate.evaluation import elevation_agreement

    true_deg = np.array([5.0, 10.0, 12.0, 20.0])
    predicted_deg = np.array([9.0, 11.0, 11.0, 13.0])
    agreement = elevation_agreement(np.radians(predicted_deg), true_deg)
    assert agreement["correlation"] == pytest.approx(pearsonr(predicted_deg, true_deg)[0])
    assert agreement["mae_deg"] == pytest.approx((4 + 1 + 1 + 7) / 4)
    assert agreement["predicted_std_deg"] == pytest.approx(np.sqrt((4 + 0 + 0 + 4) / 4))  # about 11: +-2, 0, 0
    assert np.isnan(elevation_agreement(np.radians(np.full(4, 11.0)), true_deg)["correlation"])  # a constant
