"""Connected bodies of a closed triangle mesh: how many, how big, of which genus.

A hand is one body of genus 0. Marching cubes on a learned occupancy can close extra
surfaces where the field grazes the level (a bubble inside the hand, a speck beside it) and
tunnels where two fingers touch; :func:`body_stats` measures them
(``benchmarks/studies/topology.py``). Bubbles of one or two lattice points, the ones the
study found, no longer close (:func:`~halohand.inference.extract.mesh_from_grid`).
A closed mesh's Euler characteristic ``V - F / 2`` alone is ``2 x (bodies - total genus)``,
which cannot tell a body with one tunnel beside one bubble from a single sphere-like body:
the bodies are labelled here instead (20-45 ms for a hand at 256^3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class BodyStats:
    """The connected bodies of a closed mesh, largest first.

    Attributes:
        face_body: ``[F]`` int body index of every face (0 = largest by volume).
        volumes: ``[B]`` signed volume of every body (mesh units cubed; positive for
            outward faces, negative for a bubble: a surface facing into a hollow).
        genus: ``[B]`` genus of every body (tunnels; 0 for a sphere-like body).
    """

    face_body: np.ndarray
    volumes: np.ndarray
    genus: np.ndarray

    @property
    def count(self) -> int:
        return len(self.volumes)


def body_stats(mesh: trimesh.Trimesh) -> BodyStats:
    """Bodies of a closed mesh: faces joined through shared vertices.

    Args:
        mesh: a closed triangle mesh (``V`` vertices, ``F`` faces; vertices shared, as
            :func:`~halohand.inference.extract.mesh_from_grid` makes them).

    Returns:
        :class:`BodyStats`; an empty mesh has no bodies.
    """
    faces = np.asarray(mesh.faces, dtype=np.int64)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    if len(faces) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return BodyStats(empty, np.zeros(0), empty)
    n = len(vertices)
    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, vertex_body = connected_components(graph, directed=False)
    face_body = vertex_body[faces[:, 0]]
    # signed volume of every face's tetrahedron with the origin, summed per body
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    tet = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0
    count = int(face_body.max()) + 1
    volumes = np.bincount(face_body, weights=tet, minlength=count)
    face_count = np.bincount(face_body, minlength=count)
    used = np.zeros(n, dtype=bool)
    used[faces.ravel()] = True
    vertex_count = np.bincount(vertex_body[used], minlength=count)
    # closed surface: E = 3F / 2, so chi = V - F / 2 = 2 - 2 g per body
    euler = vertex_count - face_count // 2
    genus = (2 - euler) // 2
    order = np.argsort(-volumes, kind="stable")
    rank = np.empty(count, dtype=np.int64)
    rank[order] = np.arange(count)
    return BodyStats(rank[face_body], volumes[order], genus[order])
