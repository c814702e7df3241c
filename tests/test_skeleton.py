"""The 17-joint skeleton and the detector-format conversions, checked by hand."""

import numpy as np
import pytest

from elepose import skeleton as sk


def test_bones_follow_parents_and_form_a_tree():
    assert len(sk.BONES) == 16
    assert sk.BONES[0] == (0, 1) and sk.BONES[-1] == (15, 16)
    assert sk.PARENTS[0] == -1 and all(0 <= p < j for j, p in enumerate(sk.PARENTS) if j)


def test_left_right_sets_match_names():
    assert all(sk.JOINT_NAMES[j].startswith("left_") for j in sk.LEFT_JOINTS)
    assert all(sk.JOINT_NAMES[j].startswith("right_") for j in sk.RIGHT_JOINTS)


def test_bone_ratios_of_scaled_copies_are_scale_free():
    gen = np.random.default_rng(0)
    pose = gen.normal(size=(1, 17, 3))
    poses = np.concatenate([pose * s for s in (0.5, 1.0, 3.0)])
    lengths = sk.bone_lengths(pose)[0]
    np.testing.assert_allclose(sk.bone_ratios(poses), lengths / lengths.mean())


def test_coco17_conversion_by_hand():
    coco = np.zeros((17, 2))
    coco[:, 0] = np.arange(17)  # x = COCO index
    h36m = sk.coco17_to_h36m(coco)[:, 0]
    assert h36m[0] == pytest.approx(11.5)  # mid hips
    assert h36m[8] == pytest.approx(5.5)  # mid shoulders
    assert h36m[7] == pytest.approx(8.5)  # mid pelvis-thorax
    assert h36m[10] == pytest.approx(1.5)  # mid eyes
    assert list(h36m[[1, 2, 3, 4, 5, 6, 9, 11, 12, 13, 14, 15, 16]]) == [12, 14, 16, 11, 13, 15, 0, 5, 7, 9, 6, 8, 10]


def test_openpose_conversions_by_hand():
    body25 = np.zeros((25, 1))
    body25[:, 0] = np.arange(25)
    out = sk.openpose_body25_to_h36m(body25)[:, 0]
    assert out[0] == 8 and out[8] == 1 and out[7] == 4.5 and out[10] == 15.5
    assert list(out[[1, 4, 11, 14]]) == [9, 12, 5, 2]
    coco18 = np.zeros((18, 1))
    coco18[:, 0] = np.arange(18)
    out18 = sk.openpose_coco18_to_h36m(coco18)[:, 0]
    assert out18[0] == 9.5 and out18[8] == 1 and out18[1] == 8 and out18[4] == 11


@pytest.mark.parametrize(
    "fn,n", [(sk.coco17_to_h36m, 16), (sk.openpose_body25_to_h36m, 17), (sk.openpose_coco18_to_h36m, 17)]
)
def test_wrong_joint_count_is_refused(fn, n):
    with pytest.raises(ValueError, match="joints"):
        fn(np.zeros((n, 2)))
