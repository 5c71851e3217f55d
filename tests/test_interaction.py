"""Fields of hands and objects (``halohand.interaction``): closed forms, exact mesh distance,
gradients w.r.t. points, pose and keypoints, composition and plausibility metrics on scenes
with known penetration."""

from __future__ import annotations

import math

import halo_fakes
import numpy as np
import pytest
import torch
import trimesh

from halohand.core.errors import HalohandInputError
from halohand.core.rotations import axis_angle_to_matrix
from halohand.inference.halo import HALO
from halohand.interaction import (
    HandField,
    ObjectField,
    box_sdf,
    capsule_sdf,
    contact,
    contact_energy,
    grid_points,
    intersection,
    penetration_depth,
    penetration_energy,
    penetration_volume,
    plausibility_report,
    sphere_sdf,
    union,
)
from halohand.interaction import plausibility as plaus
from halohand.interaction.object_field import MeshDistance, closest_points

RNG = np.random.default_rng(3)


def _t(x: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=grad)


def _sphere_mesh(radius: float, center=(0.0, 0.0, 0.0), subdivisions: int = 5) -> trimesh.Trimesh:
    m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    m.apply_translation(center)
    return m


def _lens_volume(ra: float, rb: float, dist: float) -> float:
    """Volume (m^3) of the overlap of two balls (radii ``ra``, ``rb``, centres ``dist``
    apart), the closed form."""
    t = ra + rb - dist
    return math.pi * t**2 * (dist**2 + 2 * dist * (ra + rb) - 3 * (ra - rb) ** 2) / (12 * dist)


def _lens_depth_into_b(ra: float, rb: float, dist: float) -> tuple[float, float]:
    """Mean depth into ball b over the lens (integrated in shells about b's centre: the
    area of the sphere of radius s inside ball a is a cap) and the lens volume."""
    s = np.linspace(rb - (ra + rb - dist), rb, 200_001)
    cos0 = np.clip((s**2 + dist**2 - ra**2) / (2 * s * dist), -1.0, 1.0)
    area = 2 * math.pi * s**2 * (1.0 - cos0)
    vol = np.trapezoid(area, s)
    return float(np.trapezoid((rb - s) * area, s) / vol), float(vol)


# -- primitives ------------------------------------------------------------------------------


def test_primitives_closed_forms() -> None:
    p = _t([[0.05, 0, 0], [0, 0, 0], [0.0, 0.02, 0.0]])
    assert torch.allclose(sphere_sdf(p, (0.0, 0.0, 0.0), 0.03), _t([0.02, -0.03, -0.01]))
    h = (0.01, 0.02, 0.03)
    q = _t([[0.0, 0.0, 0.0], [0.005, 0.0, 0.0], [0.02, 0.0, 0.0], [0.02, 0.03, 0.0],
            [0.02, 0.03, 0.04]])  # fmt: skip
    want = [-0.01, -0.005, 0.01, 0.01 * math.sqrt(2), math.sqrt(0.01**2 + 0.01**2 + 0.01**2)]
    assert torch.allclose(box_sdf(q, h), _t(want))
    a, b = (0.0, 0.0, 0.0), (0.0, 0.0, 0.1)
    c = _t([[0.03, 0, 0.05], [0, 0, 0.13], [0, 0, -0.02], [0.0, 0.004, 0.02]])
    assert torch.allclose(capsule_sdf(c, a, b, 0.01), _t([0.02, 0.02, 0.01, -0.006]))
    with pytest.raises(HalohandInputError, match=r"\[\.\.\., 3\]"):
        sphere_sdf(torch.zeros(4, 2), (0, 0, 0), 1.0)


def test_primitives_gradients_by_finite_differences() -> None:
    pts = _t(RNG.uniform(-0.06, 0.06, (40, 3)), grad=True)
    center = _t([0.01, -0.005, 0.0], grad=True)
    radius = _t(0.03, grad=True)
    half = _t([0.02, 0.03, 0.015], grad=True)
    a, b = _t([0.0, 0.0, -0.03], grad=True), _t([0.01, 0.0, 0.04], grad=True)
    assert torch.autograd.gradcheck(lambda x, c, r: sphere_sdf(x, c, r), (pts, center, radius))
    assert torch.autograd.gradcheck(lambda x, h, c: box_sdf(x, h, c), (pts, half, center))
    assert torch.autograd.gradcheck(lambda x, a, b, r: capsule_sdf(x, a, b, r), (pts, a, b, radius))
    # Signed distances are 1-Lipschitz with unit gradient (away from the medial axis).
    for f in (lambda x: box_sdf(x, half), lambda x: capsule_sdf(x, a, b, radius)):
        (g,) = torch.autograd.grad(f(pts).sum(), pts)
        assert torch.allclose(g.norm(dim=-1), torch.ones(40, dtype=torch.float64))


# -- object field ------------------------------------------------------------------------------


def test_exact_object_field_matches_closed_forms() -> None:
    pts = RNG.uniform(-0.06, 0.06, (500, 3))
    box = ObjectField(trimesh.creation.box(extents=(0.04, 0.06, 0.08)))
    want = box_sdf(_t(pts), (0.02, 0.03, 0.04))
    assert torch.allclose(box(_t(pts)), want, atol=1e-12)
    ball = ObjectField(_sphere_mesh(0.03))
    # A subdivided icosahedron lies inside its sphere by at most r (1 - cos(edge / 2r)).
    err = (ball(_t(pts)) - sphere_sdf(_t(pts), (0, 0, 0), 0.03)).abs().max()
    assert float(err) < 6e-5
    # Gradients w.r.t. points are the closed form's unit normals.
    x = _t(pts, grad=True)
    (g,) = torch.autograd.grad(box(x).sum(), x)
    x2 = _t(pts, grad=True)
    (g2,) = torch.autograd.grad(box_sdf(x2, (0.02, 0.03, 0.04)).sum(), x2)
    assert torch.allclose(g, g2, atol=1e-9)


def test_cached_mesh_distance_matches_libigl(capsule_hand) -> None:
    """The tree-once distance gives libigl's values and pseudonormal signs, on a box (points
    nearest its edges and corners), a concave registry mesh (mug) and a HALO hand mesh."""
    from halohand.objects.registry import load_object

    mug = load_object("mug_0").mesh
    for mesh in (trimesh.creation.box(extents=(0.04, 0.06, 0.08)), mug, capsule_hand[2]):
        lo, hi = mesh.bounds
        pts = np.concatenate(
            [RNG.uniform(lo - 0.02, hi + 0.02, (3000, 3)), _near_surface(mesh, 3000, 0.002, 5)]
        )
        want = closest_points(pts, mesh.vertices, mesh.faces)[0]
        got, closest, normal = MeshDistance(mesh.vertices, mesh.faces).query(pts)
        assert np.allclose(np.abs(got), np.abs(want), atol=1e-12)
        far = np.abs(want) > 1e-9
        assert np.array_equal(np.sign(got[far]), np.sign(want[far]))
        assert np.allclose(np.linalg.norm(normal, axis=1), 1.0)


def test_object_field_pose_gradient_by_finite_differences() -> None:
    field = ObjectField(trimesh.creation.box(extents=(0.04, 0.06, 0.08)))
    pts = _t(RNG.uniform(-0.07, 0.07, (60, 3)))
    rvec = _t([0.3, -0.2, 0.5], grad=True)
    trans = _t([0.01, -0.02, 0.005], grad=True)
    weights = _t(RNG.normal(size=60))

    def energy(r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (field(pts, axis_angle_to_matrix(r), t) * weights).sum()

    gr, gt = torch.autograd.grad(energy(rvec, trans), (rvec, trans))
    eps = 1e-6
    for k in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[k] = eps
        with torch.no_grad():
            fd_r = (energy(rvec + e, trans) - energy(rvec - e, trans)) / (2 * eps)
            fd_t = (energy(rvec, trans + e) - energy(rvec, trans - e)) / (2 * eps)
        assert float(gr[k]) == pytest.approx(float(fd_r), rel=1e-4, abs=1e-6)
        assert float(gt[k]) == pytest.approx(float(fd_t), rel=1e-4, abs=1e-6)
    # The posed field is the closed form of the moved box.
    r = axis_angle_to_matrix(rvec.detach())
    local = (pts - trans.detach()) @ r
    assert torch.allclose(field(pts, r, trans.detach()), box_sdf(local, (0.02, 0.03, 0.04)))


def test_grid_object_field_near_exact() -> None:
    ball = _sphere_mesh(0.03, subdivisions=4)
    exact, grid = ObjectField(ball), ObjectField(ball, "grid", resolution=48, margin=0.02)
    dirs = RNG.normal(size=(300, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    pts = _t(dirs * RNG.uniform(0.025, 0.035, (300, 1)))  # within 5 mm of the surface
    err = (grid(pts) - exact(pts)).abs()
    step = 0.1 / 47  # lattice step of the 10 cm grid box
    assert float(err.max()) < 0.1 * step  # trilinear on a smooth surface: far below a step
    x = pts.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(grid(x).sum(), x)
    cos = (g / g.norm(dim=-1, keepdim=True) * _t(dirs)).sum(-1)
    assert float(cos.min()) > 0.99
    with pytest.raises(HalohandInputError, match="mode"):
        ObjectField(ball, "voxels")


# -- composition -----------------------------------------------------------------------------


def _two_balls(ra=0.03, rb=0.025, dist=0.045):
    ca = _t([0.0, 0.0, 0.0])
    cb = _t([dist, 0.0, 0.0], grad=True)
    return (lambda p: sphere_sdf(p, ca, ra)), (lambda p: sphere_sdf(p, cb, rb)), cb


def test_compose_known_penetration() -> None:
    ra, rb, dist = 0.03, 0.025, 0.045
    fa, fb, cb = _two_balls(ra, rb, dist)
    pts, cell = grid_points(_t([dist - rb, -rb, -rb]), _t([ra, rb, rb]), 64)
    vol = penetration_volume(fa, fb, pts, cell)
    assert float(vol) == pytest.approx(_lens_volume(ra, rb, dist), rel=0.02)
    soft = penetration_volume(fa, fb, pts, cell, softness=2e-4)
    assert float(soft.detach()) == pytest.approx(float(vol), rel=0.05)
    # Depth to leave the overlap: at most delta / 2 (delta = ra + rb - dist), mid-lens.
    depth = penetration_depth(pts, intersection(fa, fb)).detach()
    assert float(depth.max()) == pytest.approx((ra + rb - dist) / 2, rel=0.05)
    # The energy pushes b away from a along the line of centres; the soft volume too.
    (g,) = torch.autograd.grad(penetration_energy(fa, fb, pts, cell), cb)
    assert float(g[0]) < 0 and abs(float(g[1])) < 1e-3 * abs(float(g[0]))
    (gv,) = torch.autograd.grad(soft, cb)
    assert float(gv[0]) < 0
    # Apart, nothing.
    fc = lambda p: sphere_sdf(p, (0.1, 0.0, 0.0), rb)  # noqa: E731
    assert float(penetration_volume(fa, fc, pts, cell)) == 0.0
    assert float(penetration_energy(fa, fc, pts, cell)) == 0.0
    u = union(fa, fc)
    probe = _t([[0.1, 0.0, 0.0], [0.0, 0.0, 0.0], [0.05, 0.0, 0.0]])
    assert torch.allclose(u(probe), _t([-rb, -ra, 0.02]))


def test_contact_and_contact_energy() -> None:
    fa, _, _ = _two_balls()
    pts = _t([[0.031, 0, 0], [0.0, 0.0295, 0.0], [0.0, 0.0, 0.04], [0.0, 0.0, 0.0]], grad=True)
    mask, d = contact(pts, fa, threshold=0.002)
    assert mask.tolist() == [True, True, False, False]
    e = contact_energy(pts, fa, threshold=0.002)
    assert float(e.detach()) == pytest.approx(0.008**2)
    (g,) = torch.autograd.grad(e, pts)
    assert float(g[2, 2]) > 0 and float(g[:2].abs().max()) == 0.0  # only the far one pulled


# -- plausibility on meshes ------------------------------------------------------------------


def test_mesh_penetration_depth_and_volume_of_overlapping_spheres() -> None:
    from halohand.grasp.metrics import intersection_volume

    ra, rb, dist = 0.03, 0.025, 0.045
    a = _sphere_mesh(ra)
    b = _sphere_mesh(rb, (dist, 0.0, 0.0))
    mean, lens = _lens_depth_into_b(ra, rb, dist)
    assert lens == pytest.approx(_lens_volume(ra, rb, dist), rel=1e-6)  # the integral's check
    pd = plaus.penetration_depth(a, b)
    delta = ra + rb - dist
    assert pd["max"] == pytest.approx(delta, abs=delta / 32)  # one cell along the centres
    assert pd["mean"] == pytest.approx(mean, rel=0.05)
    # The lens is a grid of delta/32 x (2 rb / 32)^2 cells: its volume from the count.
    cell = delta * (2 * rb) ** 2 / 32**3
    assert pd["points"] * cell == pytest.approx(lens, rel=0.05)
    sym = plaus.penetration_depth(a, b, symmetric=True)
    assert sym["max"] >= pd["max"] and sym["points"] == pd["points"]
    vol = plaus.penetration_volume(a, b)
    assert vol == pytest.approx(lens * 1e6, rel=0.02)
    assert vol == intersection_volume(a.vertices, a.faces, b.vertices, b.faces)
    apart = _sphere_mesh(rb, (0.1, 0.0, 0.0))
    assert plaus.penetration_depth(a, apart) == {"mean": 0.0, "max": 0.0, "points": 0}
    assert plaus.penetration_volume(a, apart) == 0.0


def test_contact_self_intersection_and_surface_errors() -> None:
    a = _sphere_mesh(0.03)
    b = _sphere_mesh(0.02, (0.0501, 0.0, 0.0))  # 0.1 mm gap
    labels = np.zeros(len(a.vertices), dtype=np.int64)
    labels[a.vertices[:, 0] > 0.028] = 1  # index1 on the side facing b
    labels[a.vertices[:, 0] < -0.028] = 4  # middle1 far from it
    c = plaus.contact(a, b, threshold=0.002, part_labels=labels)
    assert c["parts"] == ["index1"] and c["finger_fraction"] == pytest.approx(0.2)
    assert c["min_distance"] == pytest.approx(1e-4, abs=5e-5)
    assert 0 < c["vertex_fraction"] < 0.05
    # Two overlapping spheres as one (self-intersecting) surface cover the lens twice.
    ball = _sphere_mesh(0.03, subdivisions=4)
    both = trimesh.util.concatenate([ball, _sphere_mesh(0.025, (0.045, 0.0, 0.0), 4)])
    si = plaus.self_intersection(both, num_points=300_000)
    assert si == pytest.approx(_lens_volume(0.03, 0.025, 0.045) * 1e6, rel=0.1)
    assert plaus.self_intersection(ball, num_points=50_000) == 0.0
    # Edge-length and normal errors against a mesh of the same topology.
    assert plaus.edge_length_error(a, a) == 0.0 and plaus.normal_error(a, a) == 0.0
    scaled = a.copy()
    scaled.vertices *= 1.1
    edges = a.edges_unique_length
    assert plaus.edge_length_error(scaled, a) == pytest.approx(0.1 * edges.mean(), rel=1e-9)
    cube = trimesh.creation.box(extents=(0.02, 0.02, 0.02))
    turned = cube.copy()
    turned.apply_transform(trimesh.transformations.rotation_matrix(0.2, [0, 0, 1]))
    # The 8 side triangles turn by 0.2 rad, the 4 of the top and bottom not at all.
    assert plaus.normal_error(turned, cube) == pytest.approx(math.degrees(0.2) * 8 / 12)
    with pytest.raises(HalohandInputError, match="same topology"):
        plaus.edge_length_error(a, cube)


def test_plausibility_report_gathers_every_metric() -> None:
    ha = _sphere_mesh(0.03)
    hb = _sphere_mesh(0.025, (0.045, 0.0, 0.0))
    obj = trimesh.creation.box(extents=(0.02, 0.02, 0.02))
    obj.apply_translation((0.0, 0.0, 0.035))
    rep = plausibility_report([ha, hb], [obj], gt_hands=[ha, None], self_intersection_points=20_000)
    assert len(rep["hands"]) == 2 and rep["hands"][0]["edge_error_mm"] == 0.0
    assert "edge_error_mm" not in rep["hands"][1]
    assert [(e["hand"], e["object"]) for e in rep["hand_object"]] == [(0, 0), (1, 0)]
    first = rep["hand_object"][0]
    assert first["mpd_mm"] == pytest.approx(5.0, abs=0.2)  # the box dips 5 mm into ball a
    assert first["volume_cm3"] > 0 and first["min_distance_mm"] < 0
    assert rep["hand_object"][1]["volume_cm3"] == 0.0
    (hh,) = rep["hand_hand"]
    assert hh["hands"] == [0, 1] and hh["volume_cm3"] == pytest.approx(
        _lens_volume(0.03, 0.025, 0.045) * 1e6, rel=0.02
    )


# -- hand field ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capsule_hand() -> tuple[HALO, np.ndarray, trimesh.Trimesh]:
    kp = halo_fakes.hand_keypoints("spread")
    model = HALO(halo_fakes.CapsuleNet(kp))
    return model, kp, model.reconstruct(kp, units="m", resolution=128, colors=False)


def _near_surface(mesh: trimesh.Trimesh, n: int, band: float, seed: int) -> np.ndarray:
    pts, face = trimesh.sample.sample_surface(mesh, n, seed=seed)
    off = np.random.default_rng(seed).uniform(-band, band, (n, 1))
    return pts + off * mesh.face_normals[face]


def test_hand_field_first_order_error_band(capsule_hand) -> None:
    model, kp, mesh = capsule_hand
    field = HandField(model, kp, method="first_order")
    x = _near_surface(mesh, 1500, 0.002, seed=1)
    true = closest_points(x, mesh.vertices, mesh.faces)[0]
    err = np.abs(field(_t(x)).numpy() - true)
    # The capsule net's logit is linear in the distance to its bones: the first-order
    # estimate is exact up to the extracted mesh's own error (lattice step ~1.3 mm).
    assert np.percentile(err, 95) < 2e-4 and err.mean() < 1e-4
    far = field(_t(kp[[0]] + np.array([[0.0, 0.0, 0.2]])))
    assert float(far) == pytest.approx(field.clamp)


def test_hand_field_keypoint_gradients_first_order(capsule_hand) -> None:
    """Translating every keypoint by t moves the field: d(x; kp + t) = d(x - t), so the sum
    of the keypoint gradients is minus the point gradient (exactly, for the first-order
    field, whose point gradient is the network's normal)."""
    model, kp, mesh = capsule_hand
    x = _t(_near_surface(mesh, 400, 0.002, seed=2), grad=True)
    k = _t(kp, grad=True)
    d = HandField(model, k, method="first_order")(x)
    w = _t(RNG.normal(size=len(x)))
    (d * w).sum().backward()
    assert torch.isfinite(k.grad).all() and float(k.grad.abs().sum()) > 0
    assert torch.allclose(k.grad.sum(0), -x.grad.sum(0), rtol=1e-4, atol=1e-6)


def test_hand_field_keypoint_gradients_mesh(capsule_hand) -> None:
    """Mesh method: values are the mesh's distance; under a translation t of the keypoints
    the surface at the closest point moves by t . n (n: the network's unit normal there),
    so the keypoint gradients of each point sum to a unit vector, close to minus the
    mesh's own point gradient (they differ by the mesh's faceting)."""
    model, kp, mesh = capsule_hand
    x_np = _near_surface(mesh, 10, 0.003, seed=4)
    k = _t(kp, grad=True)
    field = HandField(model, k, method="mesh", mesh=mesh)
    cos = []
    for i in range(len(x_np)):
        x = _t(x_np[i : i + 1], grad=True)
        d = field(x)
        assert float(d.detach()) == pytest.approx(
            float(closest_points(x_np[i : i + 1], mesh.vertices, mesh.faces)[0][0]), abs=1e-12
        )
        gk, gx = torch.autograd.grad(d.sum(), (k, x))
        total = gk.sum(0)
        assert float(total.norm()) == pytest.approx(1.0, abs=1e-6)
        cos.append(float(-(total * gx[0]).sum() / gx[0].norm()))
    assert np.median(cos) > 0.97 and min(cos) > 0.5


def test_hand_field_bad_input(capsule_hand) -> None:
    model, kp, _ = capsule_hand
    with pytest.raises(HalohandInputError, match="method"):
        HandField(model, kp, method="exact")
    with pytest.raises(HalohandInputError, match=r"\[21, 3\]"):
        HandField(model, kp[:20], method="first_order")


def test_scene_report_meshes_hands_and_places_objects(capsule_hand) -> None:
    from halohand.scene import Hand, Scene, SceneObject

    model, kp, _ = capsule_hand
    tip = kp[8] + 0.012 * (kp[8] - kp[7]) / np.linalg.norm(kp[8] - kp[7])
    pose = np.eye(4)
    pose[:3, 3] = tip  # a 1 cm ball whose centre lies 3 mm outside the tip's capsule
    scene = Scene(
        hands=(Hand.from_keypoints(kp, "right", units="m"),),
        objects=(SceneObject(_sphere_mesh(0.01, subdivisions=3), pose),),
    )
    rep = plaus.scene_report(model, scene, resolution=96, self_intersection_points=10_000)
    (entry,) = rep["hand_object"]
    assert "index3" in entry["contact_parts"] and entry["volume_cm3"] > 0
    assert entry["contact_finger_fraction"] == pytest.approx(0.2)
    assert np.allclose(rep["meshes"]["objects"][0].bounds.mean(0), tip, atol=1e-3)
    with pytest.raises(HalohandInputError, match="Scene"):
        plaus.scene_report(model, [kp])


@pytest.mark.parametrize("method", ["first_order", "mesh"])
def test_hand_field_shipped_model_many_points(method: str) -> None:
    """From 8192 points per hand the shipped model's gradient queries take the sparse
    path, whose graph serves one backward pass: the field's point gradient and the
    caller's keypoint gradient must come from separate queries."""
    kp = halo_fakes.hand_keypoints("fist")
    model = HALO.pretrained()
    k = _t(kp, grad=True)
    field = HandField(model, k, method=method, resolution=128)
    x = _t(halo_fakes.query_points(kp, 9000, seed=0), grad=True)
    d = field(x)
    d.sum().backward()
    assert torch.isfinite(k.grad).all() and float(k.grad.abs().sum()) > 0
    assert torch.isfinite(x.grad).all()
    # Both sides of the surface are present among the points.
    assert bool((d < 0).any()) and bool((d > 0).any())
