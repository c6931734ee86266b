"""ArcFace identity vectors: the random test net's interface, ONNX quirks, real photos."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.errors import BadInputError, MissingWeightsError
from retarget.face.identity import ArcFaceEncoder, IdentityEmbedder
from retarget.weights.test_face_models import write_random_arcface_onnx
from tests.conftest import needs_shared
from tests.face.conftest import IDENTITY_PHOTOS, observe


def test_random_arcface_interface(tmp_path, arcface):
    import onnx

    path = write_random_arcface_onnx(tmp_path / "a.onnx")
    assert path.stat().st_size < 1_000_000
    graph = onnx.load(str(path)).graph
    assert graph.input[0].name == "input.1"
    assert (arcface.input_mean, arcface.input_std) == (127.5, 127.5)  # no Sub/Mul at the start of the graph
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    batch = arcface.embed_aligned(faces)
    assert batch.shape == (3, 512) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    singles = np.concatenate([arcface.embed_aligned(face) for face in faces])
    assert np.allclose(batch, singles, atol=1e-5)
    assert np.allclose(arcface.embed_aligned(list(faces)), batch, atol=1e-6)


def test_arcface_fixed_batch_and_mxnet_normalisation(tmp_path):
    """Models with a fixed batch of 1, and MXNet exports that normalise inside the graph."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(write_random_arcface_onnx(tmp_path / "a.onnx")))
    graph = model.graph
    graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    graph.output[0].type.tensor_type.shape.dim[0].dim_value = 1
    graph.initializer.extend([numpy_helper.from_array(np.array(127.5, np.float32), "mean"),
                              numpy_helper.from_array(np.array(1 / 127.5, np.float32), "scale")])
    graph.node[0].input[0] = "scaled"
    prefix = [helper.make_node("Sub", ["input.1", "mean"], ["centred"], name="_minusscalar0"),
              helper.make_node("Mul", ["centred", "scale"], ["scaled"], name="_mulscalar0")]
    nodes = prefix + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(tmp_path / "mx.onnx"))
    mx = ArcFaceEncoder(tmp_path / "mx.onnx")
    plain = ArcFaceEncoder(tmp_path / "a.onnx")
    assert (mx.input_mean, mx.input_std) == (0.0, 1.0) and mx.fixed_batch == 1
    faces = np.random.default_rng(1).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    # Same weights, normalisation moved into the graph: identical embeddings.
    assert np.allclose(mx.embed_aligned(faces), plain.embed_aligned(faces), atol=1e-4)


def test_arcface_unreadable(tmp_path):
    with pytest.raises(MissingWeightsError):
        ArcFaceEncoder(tmp_path / "absent.onnx")
    junk = tmp_path / "arcface.onnx"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises((BadInputError, MissingWeightsError)) as err:
        ArcFaceEncoder(junk)
    assert "arcface.onnx" in str(err.value) and "\n" not in str(err.value)


@needs_shared
def test_identity_embeddings(face_landmarker, media, arcface):
    embedder = IdentityEmbedder(arcface, face_landmarker, use_insightface=False)
    vectors = {}
    for name in IDENTITY_PHOTOS:
        vector = embedder.embed(media(name), source=name)
        assert vector.shape == (512,) and abs(np.linalg.norm(vector) - 1) < 1e-5
        vectors[name] = vector
    again = embedder.embed(media("identity_freeman.jpg"))
    assert np.allclose(again, vectors["identity_freeman.jpg"], atol=1e-6)
    names = list(vectors)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not np.allclose(vectors[a], vectors[b], atol=1e-3), (a, b)
    observation = observe(face_landmarker, media("identity_jackie_wide.png"))
    direct = embedder.embed_with_landmarks(media("identity_jackie_wide.png"), observation.landmarks)
    assert np.allclose(direct, vectors["identity_jackie_wide.png"], atol=1e-6)
