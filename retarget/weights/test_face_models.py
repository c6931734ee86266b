"""Random face models in the published file formats, for tests and `random:tiny`: SCRFD and ArcFace ONNX nets
with the antelopev2 interfaces, and a SMIRK_em1.pt look-alike. Production face/ modules only read such files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from retarget.face.identity import ARCFACE_INPUT_SIZE, EMBEDDING_DIM
from retarget.face.smirk import SMIRK_PREFIX, SmirkExpressionEncoder


def write_random_scrfd_onnx(path, seed: int = 0) -> Path:
    """A small random net with SCRFD's interface, as insightface's SCRFD class reads it; for tests.

    input.1 [1, 3, H, W]; 9 outputs: scores (N_s, 1), then box distances (N_s, 4), then keypoint
    offsets (N_s, 10) for strides 8, 16, 32, with two anchors per location (N_s = H/s * W/s * 2).
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    strides, anchors = (8, 16, 32), 2
    initializers, nodes, outputs = [], [], []
    heads = {"score": 1, "bbox": 4, "kps": 10}
    results = {name: [] for name in heads}
    for stride in strides:
        for name, width in heads.items():
            # Scores spread widely (a few pass the threshold); boxes stay in sigmoid's unsaturated range so sizes differ.
            spread = 8.0 if name == "score" else 2.0
            weight = rng.normal(0, spread / np.sqrt(3 * stride * stride), (anchors * width, 3, stride, stride))
            # Zero-mean kernels: flat areas (like SCRFD's own black letterbox padding) never look like a face.
            weight = (weight - weight.mean(axis=(1, 2, 3), keepdims=True)).astype(np.float32)
            # A low score bias leaves a handful of detections above the threshold, as on a real photo.
            bias = rng.normal(-8.0 if name == "score" else 0.0, 0.5, anchors * width).astype(np.float32)
            prefix = f"{name}_{stride}"
            initializers += [numpy_helper.from_array(weight, f"{prefix}_w"), numpy_helper.from_array(bias, f"{prefix}_b"),
                             numpy_helper.from_array(np.array([-1, width], np.int64), f"{prefix}_shape")]
            nodes += [
                helper.make_node("Conv", ["input.1", f"{prefix}_w", f"{prefix}_b"], [f"{prefix}_conv"],
                                 kernel_shape=[stride, stride], strides=[stride, stride]),
                # (1, anchors*width, h, w) -> (h*w*anchors, width): location-major, anchor-minor, as SCRFD decodes.
                helper.make_node("Transpose", [f"{prefix}_conv"], [f"{prefix}_t"], perm=[0, 2, 3, 1]),
                helper.make_node("Reshape", [f"{prefix}_t", f"{prefix}_shape"], [f"{prefix}_flat"]),
            ]
            # Scores are probabilities; box distances positive (up to two strides); keypoint offsets free.
            if name == "score":
                nodes.append(helper.make_node("Sigmoid", [f"{prefix}_flat"], [f"{prefix}_out"]))
            elif name == "bbox":
                initializers.append(numpy_helper.from_array(np.array(2.0, np.float32), f"{prefix}_two"))
                nodes += [helper.make_node("Sigmoid", [f"{prefix}_flat"], [f"{prefix}_sig"]),
                          helper.make_node("Mul", [f"{prefix}_sig", f"{prefix}_two"], [f"{prefix}_out"])]
            else:
                nodes.append(helper.make_node("Identity", [f"{prefix}_flat"], [f"{prefix}_out"]))
            results[name].append(helper.make_tensor_value_info(f"{prefix}_out", TensorProto.FLOAT, [f"n{stride}", width]))
    for name in heads:  # insightface reads all scores, then all boxes, then all keypoints
        outputs += results[name]
    graph = helper.make_graph(
        nodes, "random_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "H", "W"])],
        outputs, initializer=initializers,
    )
    return save_test_onnx(graph, path)


def write_random_arcface_onnx(path, seed: int = 0) -> Path:
    """A tiny random net with arcface.onnx's interface (input.1: [N,3,112,112] -> [N,512]); for tests."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    channels, patch = 4, 16  # 16x16 patches keep spatial layout, so different faces give different vectors
    cells = channels * (ARCFACE_INPUT_SIZE // patch) ** 2
    conv_w = rng.normal(0, 1.0 / np.sqrt(3 * patch * patch), (channels, 3, patch, patch)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, channels).astype(np.float32)
    gemm_w = rng.normal(0, 1.0 / np.sqrt(cells), (cells, EMBEDDING_DIM)).astype(np.float32)
    gemm_b = rng.normal(0, 0.01, EMBEDDING_DIM).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input.1", "conv_w", "conv_b"], ["conv"], name="Conv_0",
                         kernel_shape=[patch, patch], strides=[patch, patch]),
        helper.make_node("Relu", ["conv"], ["relu"], name="Relu_1"),
        helper.make_node("Flatten", ["relu"], ["flat"], name="Flatten_2", axis=1),
        helper.make_node("Gemm", ["flat", "gemm_w", "gemm_b"], ["embedding"], name="Gemm_3"),
    ]
    graph = helper.make_graph(
        nodes,
        "random_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, ARCFACE_INPUT_SIZE, ARCFACE_INPUT_SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", EMBEDDING_DIM])],
        initializer=[numpy_helper.from_array(conv_w, "conv_w"), numpy_helper.from_array(conv_b, "conv_b"),
                     numpy_helper.from_array(gemm_w, "gemm_w"), numpy_helper.from_array(gemm_b, "gemm_b")],
    )
    return save_test_onnx(graph, path)


def save_test_onnx(graph, path) -> Path:
    """A test ONNX graph as a checked model file, in an opset and IR version every supported onnxruntime runs."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="retarget-testmodels")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_random_smirk_checkpoint(path, seed: int = 0) -> Path:
    """A SMIRK_em1.pt look-alike: random encoder weights under SMIRK_PREFIX plus unrelated keys; for tests."""
    torch.manual_seed(seed)
    model = SmirkExpressionEncoder()
    state = {SMIRK_PREFIX + key: value.detach().clone() for key, value in model.state_dict().items()}
    # The real file also carries the pose/shape encoders and the generator; loaders must ignore them.
    state["smirk_encoder.pose_encoder.pose_cam_layers.0.bias"] = torch.zeros(6)
    state["smirk_generator.x"] = torch.zeros(1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path
