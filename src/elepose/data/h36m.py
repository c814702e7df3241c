"""Human3.6M in VideoPose3D's preprocessed format -> the common cache format (SPEC section 8).

VideoPose3D (Pavllo et al., CVPR 2019) ships Human3.6M as three ``.npz`` files, each holding
pickled Python dicts (facts from VideoPose3D ``data/prepare_data_h36m.py`` and
``common/h36m_dataset.py``):

- ``data_3d_h36m.npz``: ``positions_3d`` -> ``{subject: {action: (F, 32, 3) float32}}``, world
  coordinates in metres, Z up, 50 fps.
- ``data_2d_h36m_gt.npz`` (ground truth) and e.g. ``data_2d_h36m_cpn_ft_h36m_dbb.npz`` (CPN
  detections): ``positions_2d`` -> ``{subject: {action: [4 arrays (F, 17, 2)]}}`` pixels, one
  array per camera in the order of :data:`H36M_INTRINSICS`; ``metadata`` -> ``{'num_joints': 17,
  'keypoints_symmetry': [left, right], 'layout_name': 'h36m'}`` (the ground-truth file written
  by VideoPose3D's script has no ``layout_name``).

The 3D file keeps all 32 mocap joints; :data:`H36M_KEPT_JOINTS` selects the 17 of the 2D files,
whose order is ours (:mod:`elepose.skeleton`). World -> camera uses the public camera
parameters carried over below. The ground-truth 2D of VideoPose3D is projected *with* lens
distortion; the cache stores the pinhole intrinsics ``K`` only, so re-projecting the cache's 3D
with ``K`` lands within a few pixels of its 2D (more near the image border).

Security: these files are pickles inside a zip. ``np.load(..., allow_pickle=True)`` would run
whatever code a crafted file names, so :func:`read_videopose3d_npz` unpickles with
:class:`elepose.data.safe_pickle.RestrictedUnpickler`, which admits only numpy's array, dtype
and scalar constructors and inert builtins; any other global is refused with a ``ValueError``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from elepose.data.cache import PoseSplit
from elepose.data.safe_pickle import RestrictedUnpickler
from elepose.skeleton import LEFT_JOINTS, NUM_JOINTS, RIGHT_JOINTS

__all__ = [
    "H36M_KEPT_JOINTS",
    "H36M_INTRINSICS",
    "H36M_EXTRINSICS",
    "H36M_TRAIN_SUBJECTS",
    "H36M_TEST_SUBJECTS",
    "H36M_TEST_STRIDE",
    "read_videopose3d_npz",
    "h36m_cameras",
    "load_videopose3d_h36m",
]

H36M_KEPT_JOINTS: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
"""The 17 of the 32 Human3.6M mocap joints that VideoPose3D keeps (``remove_joints`` drops
4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31; ``common/h36m_dataset.py``)."""

H36M_TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
H36M_TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")
H36M_TEST_STRIDE = 64
"""Test frames are 0, 64, 128, ... of every sequence (the usual ElePose/Martinez protocol)."""

# Camera parameters of Human3.6M, carried over verbatim from VideoPose3D
# `common/h36m_dataset.py` (`h36m_cameras_intrinsic_params`). Centre and focal length in pixels;
# distortion coefficients are those of the dataset's own calibration (unused by the pinhole K).
H36M_INTRINSICS: tuple[dict[str, Any], ...] = (
    {
        "id": "54138969",
        "center": (512.54150390625, 515.4514770507812),
        "focal_length": (1145.0494384765625, 1143.7811279296875),
        "radial_distortion": (-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
        "tangential_distortion": (-0.0009756988729350269, -0.00142447161488235),
        "res_w": 1000,
        "res_h": 1002,
        "azimuth": 70,
    },
    {
        "id": "55011271",
        "center": (508.8486328125, 508.0649108886719),
        "focal_length": (1149.6756591796875, 1147.5916748046875),
        "radial_distortion": (-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
        "tangential_distortion": (-0.0016190266469493508, -0.0027408944442868233),
        "res_w": 1000,
        "res_h": 1000,
        "azimuth": -70,
    },
    {
        "id": "58860488",
        "center": (519.8158569335938, 501.40264892578125),
        "focal_length": (1149.1407470703125, 1148.7989501953125),
        "radial_distortion": (-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
        "tangential_distortion": (0.0014843869721516967, -0.0007599993259645998),
        "res_w": 1000,
        "res_h": 1000,
        "azimuth": 110,
    },
    {
        "id": "60457274",
        "center": (514.9682006835938, 501.88201904296875),
        "focal_length": (1145.5113525390625, 1144.77392578125),
        "radial_distortion": (-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
        "tangential_distortion": (-0.0005872055771760643, -0.0018133620033040643),
        "res_w": 1000,
        "res_h": 1002,
        "azimuth": -110,
    },
)

# Per-subject extrinsics, carried over verbatim from VideoPose3D `common/h36m_dataset.py`
# (`h36m_cameras_extrinsic_params`): orientation quaternion (w, x, y, z) of the camera in the
# world, translation = camera centre in world millimetres. VideoPose3D's `world_to_camera`
# computes X_cam = rotate(inverse(q), X_world - translation / 1000).
H36M_EXTRINSICS: dict[str, tuple[dict[str, tuple[float, ...]], ...]] = {
    "S1": (
        {
            "orientation": (0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088),
            "translation": (1841.1070556640625, 4955.28466796875, 1563.4454345703125),
        },
        {
            "orientation": (0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205),
            "translation": (1761.278564453125, -5078.0068359375, 1606.2650146484375),
        },
        {
            "orientation": (0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696),
            "translation": (-1846.7777099609375, 5215.04638671875, 1491.972412109375),
        },
        {
            "orientation": (0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435),
            "translation": (-1794.7896728515625, -3722.698974609375, 1574.8927001953125),
        },
    ),
    "S5": (
        {
            "orientation": (0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332),
            "translation": (2097.3916015625, 4880.94482421875, 1605.732421875),
        },
        {
            "orientation": (0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915),
            "translation": (2031.7008056640625, -5167.93310546875, 1612.923095703125),
        },
        {
            "orientation": (0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576),
            "translation": (-1620.5948486328125, 5171.65869140625, 1496.43701171875),
        },
        {
            "orientation": (0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092),
            "translation": (-1637.1737060546875, -3867.3173828125, 1547.033203125),
        },
    ),
    "S6": (
        {
            "orientation": (0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938),
            "translation": (1935.4517822265625, 4950.24560546875, 1618.0838623046875),
        },
        {
            "orientation": (0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428),
            "translation": (1969.803955078125, -5128.73876953125, 1632.77880859375),
        },
        {
            "orientation": (0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334),
            "translation": (-1769.596435546875, 5185.361328125, 1476.993408203125),
        },
        {
            "orientation": (0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802),
            "translation": (-1721.668701171875, -3884.13134765625, 1540.4879150390625),
        },
    ),
    "S7": (
        {
            "orientation": (0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778),
            "translation": (1974.512939453125, 4926.3544921875, 1597.8326416015625),
        },
        {
            "orientation": (0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508),
            "translation": (1937.0584716796875, -5119.7900390625, 1631.5665283203125),
        },
        {
            "orientation": (0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278),
            "translation": (-1741.8111572265625, 5208.24951171875, 1464.8245849609375),
        },
        {
            "orientation": (0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523),
            "translation": (-1734.7105712890625, -3832.42138671875, 1548.5830078125),
        },
    ),
    "S8": (
        {
            "orientation": (0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773),
            "translation": (2150.65185546875, 4896.1611328125, 1611.9046630859375),
        },
        {
            "orientation": (0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615),
            "translation": (2219.965576171875, -5148.453125, 1613.0440673828125),
        },
        {
            "orientation": (0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755),
            "translation": (-1571.2215576171875, 5137.0185546875, 1498.1761474609375),
        },
        {
            "orientation": (0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708),
            "translation": (-1476.913330078125, -3896.7412109375, 1547.97216796875),
        },
    ),
    "S9": (
        {
            "orientation": (0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243),
            "translation": (2044.45849609375, 4935.1171875, 1481.2275390625),
        },
        {
            "orientation": (0.618784487247467, -0.7634735107421875, -0.14132238924503326, 0.11933968216180801),
            "translation": (1990.959716796875, -5123.810546875, 1568.8048095703125),
        },
        {
            "orientation": (0.13357827067375183, -0.1367100477218628, 0.7689454555511475, -0.6100738644599915),
            "translation": (-1670.9921875, 5211.98583984375, 1528.387939453125),
        },
        {
            "orientation": (0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822),
            "translation": (-1696.04345703125, -3827.099853515625, 1591.4127197265625),
        },
    ),
    "S11": (
        {
            "orientation": (0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467),
            "translation": (2098.440185546875, 4926.5546875, 1500.278564453125),
        },
        {
            "orientation": (0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085),
            "translation": (2083.182373046875, -4912.1728515625, 1561.07861328125),
        },
        {
            "orientation": (0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407),
            "translation": (-1609.8153076171875, 5177.3359375, 1537.896728515625),
        },
        {
            "orientation": (0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809),
            "translation": (-1590.738037109375, -3854.1689453125, 1578.017578125),
        },
    ),
}

_NUM_CAMERAS = 4
_NUM_MOCAP_JOINTS = 32


# --- reading VideoPose3D's pickled .npz without running code ---------------------------------


def read_videopose3d_npz(path: str | Path, key: str) -> Any:
    """The pickled object stored under ``key`` in the ``.npz`` at ``path`` (e.g. a dict).

    Equivalent to ``np.load(path, allow_pickle=True)[key].item()`` for VideoPose3D's files, but
    the pickle may name only numpy's array constructors: a crafted file cannot run code.
    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming ``path`` and
    ``key`` for anything else (not an npz, no such key, not a pickled object, forbidden global).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
            if f"{key}.npy" not in members:
                found = sorted(m.removesuffix(".npy") for m in members)
                raise ValueError(f"{path}: missing key {key!r} (the file holds {found})")
            with archive.open(f"{key}.npy") as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"{path}: key {key!r} uses unsupported .npy format {version}")
                if dtype != np.dtype(object) or shape != ():
                    raise ValueError(
                        f"{path}: key {key!r} should hold a pickled dict (0-d object array), "
                        f"got an array of dtype {dtype} and shape {shape}"
                    )
                try:
                    array = RestrictedUnpickler(f, encoding="latin1").load()
                except Exception as err:  # a corrupt or hostile pickle can fail in many ways
                    raise ValueError(f"{path}: key {key!r} cannot be read safely ({err})") from err
    except zipfile.BadZipFile as err:
        raise ValueError(f"{path}: not an .npz (zip) archive ({err})") from err
    if not isinstance(array, np.ndarray) or array.shape != ():
        raise ValueError(f"{path}: key {key!r} should hold a 0-d object array")
    return array.item()


# --- cameras ---------------------------------------------------------------------------------


def _quaternion_matrix(q_wxyz: Sequence[float]) -> np.ndarray:
    """Rotation matrix ``(3, 3)`` of the unit quaternion ``(w, x, y, z)`` (active rotation)."""
    w, x, y, z = np.asarray(q_wxyz, dtype=np.float64) / np.linalg.norm(q_wxyz)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def h36m_cameras(subject: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four cameras of ``subject`` as ``K (4, 3, 3)`` px, ``R (4, 3, 3)``, ``t (4, 3)`` m, ``elevation (4,)`` deg.

    ``x_cam = R @ x_world + t`` (world: Human3.6M's, metres, Z up). With ``Q`` the rotation of
    the orientation quaternion and ``c`` the translation in metres, VideoPose3D's
    ``X_cam = Q^T (X_world - c)`` gives ``R = Q^T`` and ``t = -Q^T c``. Elevation is the angle of
    the optical axis (camera +z, i.e. ``R[2]`` in world coordinates) below the horizontal plane,
    looking down positive.
    """
    if subject not in H36M_EXTRINSICS:
        raise ValueError(f"Human3.6M has no camera extrinsics for subject {subject!r}; known: {list(H36M_EXTRINSICS)}")
    ks, rs, ts, elevations = [], [], [], []
    for intrinsics, extrinsics in zip(H36M_INTRINSICS, H36M_EXTRINSICS[subject], strict=True):
        (fx, fy), (cx, cy) = intrinsics["focal_length"], intrinsics["center"]
        ks.append(np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]))
        rotation = _quaternion_matrix(extrinsics["orientation"]).T
        centre = np.asarray(extrinsics["translation"], dtype=np.float64) / 1000.0
        rs.append(rotation)
        ts.append(-rotation @ centre)
        optical_axis_world = rotation[2]
        elevations.append(np.degrees(np.arcsin(np.clip(-optical_axis_world[2], -1.0, 1.0))))
    return np.stack(ks), np.stack(rs), np.stack(ts), np.array(elevations)


# --- validation of the loaded dicts ----------------------------------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a dict, got {type(value).__name__}")
    return value


def _subject_actions(data: Any, path: Path, key: str, subjects: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    data = _mapping(data, f"{path}: key {key!r}")
    missing = [s for s in subjects if s not in data]
    if missing:
        raise ValueError(f"{path}: key {key!r} lacks subjects {missing} (found {sorted(map(str, data))})")
    return {s: _mapping(data[s], f"{path}: key {key!r}, subject {s!r}") for s in subjects}


def _check_array(value: Any, where: str, joints: int, dims: int) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 3 or array.shape[1:] != (joints, dims) or array.shape[0] == 0:
        raise ValueError(f"{where}: expected an array of shape (F>0, {joints}, {dims}), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise ValueError(f"{where}: expected finite floating-point values (dtype {array.dtype})")
    return array


def _check_2d_metadata(path: Path) -> None:
    metadata = _mapping(read_videopose3d_npz(path, "metadata"), f"{path}: key 'metadata'")
    layout = metadata.get("layout_name", "h36m")
    num_joints = metadata.get("num_joints")
    if layout != "h36m" or num_joints != NUM_JOINTS:
        raise ValueError(
            f"{path}: key 'metadata' describes layout {layout!r} with {num_joints} joints; "
            f"expected Human3.6M's 17-joint layout ('h36m')"
        )
    symmetry = metadata.get("keypoints_symmetry")
    if symmetry is not None:
        left, right = ([int(j) for j in side] for side in symmetry)
        if (tuple(left), tuple(right)) != (LEFT_JOINTS, RIGHT_JOINTS):
            raise ValueError(
                f"{path}: key 'metadata' has keypoints_symmetry {[left, right]}, expected "
                f"{[list(LEFT_JOINTS), list(RIGHT_JOINTS)]} (VideoPose3D's H36M joint order)"
            )


def _load_2d(path: Path, subjects: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    _check_2d_metadata(path)
    return _subject_actions(read_videopose3d_npz(path, "positions_2d"), path, "positions_2d", subjects)


def _camera_arrays(per_camera: Any, where: str) -> list[np.ndarray]:
    is_list = isinstance(per_camera, (list, tuple, np.ndarray))
    if not is_list or len(per_camera) != _NUM_CAMERAS:
        got = len(per_camera) if is_list else type(per_camera).__name__
        raise ValueError(f"{where}: expected a list of {_NUM_CAMERAS} arrays (one per camera), got {got}")
    return [_check_array(a, f"{where}, camera {c}", NUM_JOINTS, 2) for c, a in enumerate(per_camera)]


# --- the loader ------------------------------------------------------------------------------


def _build_split(
    subjects: Sequence[str],
    stride: int,
    poses_3d_world: dict[str, Mapping[str, Any]],
    gt_2d: dict[str, Mapping[str, Any]],
    detected_2d: dict[str, Mapping[str, Any]],
    paths: tuple[Path, Path, Path],
) -> PoseSplit:
    path_3d, path_gt, path_det = paths
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("p2", "p2d", "p3", "view", "frame")}
    cams: dict[str, list[Any]] = {k: [] for k in ("K", "R", "t", "elev", "clip")}
    clip_names: list[str] = []
    for subject in subjects:
        K, R, t, elevation = h36m_cameras(subject)
        for action in sorted(poses_3d_world[subject], key=str):
            world = _check_array(
                poses_3d_world[subject][action],
                f"{path_3d}: key 'positions_3d', {subject}/{action}",
                _NUM_MOCAP_JOINTS,
                3,
            )[:, H36M_KEPT_JOINTS].astype(np.float64)
            for name, source, path in (("ground-truth", gt_2d, path_gt), ("detected", detected_2d, path_det)):
                if action not in source[subject]:
                    raise ValueError(f"{path}: key 'positions_2d' has no action {subject}/{action!r} ({name} 2D)")
            where = "key 'positions_2d', " + f"{subject}/{action}"
            gt = _camera_arrays(gt_2d[subject][action], f"{path_gt}: {where}")
            det = _camera_arrays(detected_2d[subject][action], f"{path_det}: {where}")
            clip = len(clip_names)
            clip_names.append(f"{subject}/{action}")
            for c in range(_NUM_CAMERAS):
                # VideoPose3D's 2D files can be a few frames longer or shorter than the mocap
                # (extra video frames); frame i is the same instant in all three, so keep the
                # common prefix.
                n = min(len(world), len(gt[c]), len(det[c]))
                frames = np.arange(0, n, stride)
                view = len(cams["K"])
                cams["K"].append(K[c])
                cams["R"].append(R[c])
                cams["t"].append(t[c])
                cams["elev"].append(elevation[c])
                cams["clip"].append(clip)
                parts["p3"].append(world[frames] @ R[c].T + t[c])
                parts["p2"].append(gt[c][frames])
                parts["p2d"].append(det[c][frames])
                parts["view"].append(np.full(len(frames), view))
                parts["frame"].append(frames)

    def cat(name: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.concatenate(parts[name]) if parts[name] else np.zeros((0, *shape))

    v = len(cams["K"])
    split = PoseSplit(
        poses_2d=cat("p2", (NUM_JOINTS, 2)).astype(np.float32),
        poses_2d_detected=cat("p2d", (NUM_JOINTS, 2)).astype(np.float32),
        poses_3d=cat("p3", (NUM_JOINTS, 3)).astype(np.float32),
        view=cat("view", ()).astype(np.int32),
        frame=cat("frame", ()).astype(np.int32),
        camera_K=np.array(cams["K"], dtype=np.float32).reshape(v, 3, 3),
        camera_R=np.array(cams["R"], dtype=np.float32).reshape(v, 3, 3),
        camera_t=np.array(cams["t"], dtype=np.float32).reshape(v, 3),
        camera_elevation=np.array(cams["elev"], dtype=np.float32).reshape(v),
        camera_clip=np.array(cams["clip"], dtype=np.int32).reshape(v),
        clip_names=np.array(clip_names, dtype=str),
        clip_source=np.array(["h36m"] * len(clip_names), dtype=str),
    )
    split.validate(f"Human3.6M from {path_3d}")
    return split


def load_videopose3d_h36m(
    path_3d: str | Path,
    path_2d_gt: str | Path,
    path_2d_detected: str | Path | None = None,
    train_stride: int = 1,
) -> dict[str, PoseSplit]:
    """Human3.6M from VideoPose3D's files -> ``{"train": PoseSplit, "test": PoseSplit}``.

    Train: S1, S5, S6, S7, S8, every ``train_stride``-th frame (default all, 50 fps). Test: S9,
    S11, frames 0, 64, 128, ... of each sequence. One camera view per (subject, action, camera),
    four consecutive views per clip in the camera order of :data:`H36M_INTRINSICS`; clips named
    ``"S9/Walking 1"`` (subjects in split order, actions sorted) with source ``"h36m"``. Every action of the 3D file is used
    and must be present in the 2D files; 2D-only actions (VideoPose3D drops S11 "Directions"
    from the 3D) are ignored. Where 2D and 3D lengths differ the shorter prefix is kept.

    Args:
        path_3d: ``data_3d_h36m.npz`` (``positions_3d``, 32 joints, world metres).
        path_2d_gt: ``data_2d_h36m_gt.npz`` (ground-truth 2D pixels) -> ``poses_2d``.
        path_2d_detected: e.g. ``data_2d_h36m_cpn_ft_h36m_dbb.npz`` -> ``poses_2d_detected``;
            ``None`` copies the ground truth.
        train_stride: keep every n-th training frame.

    Returns ``poses_3d (N, 17, 3)`` metres in the camera frame, ``poses_2d`` and
    ``poses_2d_detected (N, 17, 2)`` pixels, camera ``K``, ``R``, ``t`` (world -> camera, metres)
    and elevation (degrees, looking down positive). The pickled dicts are read with
    :func:`read_videopose3d_npz`, which refuses anything but numpy arrays (no code runs).
    """
    if int(train_stride) != train_stride or train_stride < 1:
        raise ValueError(f"train_stride must be a positive integer, got {train_stride!r}")
    path_3d, path_gt = Path(path_3d), Path(path_2d_gt)
    path_det = Path(path_2d_detected) if path_2d_detected is not None else path_gt
    subjects = H36M_TRAIN_SUBJECTS + H36M_TEST_SUBJECTS
    world = _subject_actions(read_videopose3d_npz(path_3d, "positions_3d"), path_3d, "positions_3d", subjects)
    gt = _load_2d(path_gt, subjects)
    detected = gt if path_2d_detected is None else _load_2d(path_det, subjects)
    paths = (path_3d, path_gt, path_det)
    return {
        "train": _build_split(H36M_TRAIN_SUBJECTS, int(train_stride), world, gt, detected, paths),
        "test": _build_split(H36M_TEST_SUBJECTS, H36M_TEST_STRIDE, world, gt, detected, paths),
    }
