"""Face alignment from MediaPipe landmarks: ArcFace's 112x112 template and the FFHQ crop.

OpenCV is imported where it is used: building random test models (`retarget bench gpu`) needs
none of it.
"""

from __future__ import annotations

import numpy as np

# insightface's destination points for 112x112 ArcFace crops, in its 5-keypoint order.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],  # eye on the image's left (the subject's right eye)
        [73.5318, 51.5014],  # eye on the image's right
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # mouth corner on the image's left
        [70.7299, 92.2041],  # mouth corner on the image's right
    ],
    dtype=np.float32,
)

# MediaPipe FaceMesh indices (478-point model). "Right"/"left" here are the subject's, so for an
# upright face the subject's right side is the image's left side.
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)
RIGHT_EYE_CONTOUR = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE_CONTOUR = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
NOSE_TIP = 1
RIGHT_MOUTH_CORNER = 61
LEFT_MOUTH_CORNER = 291


def _xy(landmarks: np.ndarray) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 2 or landmarks.shape[0] < 468 or landmarks.shape[1] < 2:
        raise ValueError(f"expected MediaPipe landmarks of shape (478, 2|3), got {landmarks.shape}")
    return landmarks[:, :2]


def eye_centres(landmarks: np.ndarray, use_iris: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(image-left eye, image-right eye) centres: iris mean when present, else eye-contour mean."""
    xy = _xy(landmarks)
    if use_iris and xy.shape[0] >= 478:
        return xy[list(RIGHT_IRIS)].mean(0), xy[list(LEFT_IRIS)].mean(0)
    return xy[list(RIGHT_EYE_CONTOUR)].mean(0), xy[list(LEFT_EYE_CONTOUR)].mean(0)


def five_points_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """insightface-style 5 keypoints (left eye, right eye, nose, left mouth, right mouth as seen in the image)."""
    xy = _xy(landmarks)
    # SCRFD's eye keypoints are pupil centres, so the iris centre is the closer match.
    left_eye, right_eye = eye_centres(landmarks, use_iris=True)
    return np.stack(
        [left_eye, right_eye, xy[NOSE_TIP], xy[RIGHT_MOUTH_CORNER], xy[LEFT_MOUTH_CORNER]]
    ).astype(np.float32)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (..., 2+) points; extra columns (z) pass through scaled by the matrix's scale."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    out = points.copy()
    out[..., :2] = points[..., :2] @ matrix[:, :2].T + matrix[:, 2]
    if points.shape[-1] > 2:
        out[..., 2:] *= np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    return out.astype(np.float32)


def arcface_matrix(five_points: np.ndarray, size: int = 112) -> np.ndarray:
    """Least-squares similarity from the 5 points onto insightface's template (scaled like norm_crop)."""
    import cv2

    if size % 112 == 0:
        template = ARCFACE_TEMPLATE * (size / 112.0)
    else:  # insightface's rule for 128-based sizes
        ratio = size / 128.0
        template = ARCFACE_TEMPLATE * ratio + np.array([8.0 * ratio, 0.0], dtype=np.float32)
    src = np.asarray(five_points, dtype=np.float32).reshape(5, 2)
    # A threshold far beyond any residual keeps all 5 points as inliers, so the refined result
    # is the plain least-squares similarity that insightface's estimate_norm computes.
    matrix, _ = cv2.estimateAffinePartial2D(src, template.astype(np.float32), method=cv2.RANSAC,
                                            ransacReprojThreshold=1e6, refineIters=50)
    if matrix is None:
        raise ValueError("cannot estimate an alignment from degenerate keypoints")
    return matrix


def align_arcface(image_rgb: np.ndarray, five_points: np.ndarray, size: int = 112) -> np.ndarray:
    """The size x size ArcFace crop (black border, like insightface's norm_crop)."""
    import cv2

    matrix = arcface_matrix(five_points, size)
    return cv2.warpAffine(np.ascontiguousarray(image_rgb), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """FFHQ's oriented crop square (4x2: top-left, bottom-left, bottom-right, top-right) in image pixels."""
    xy = _xy(landmarks)
    # The FFHQ recipe used dlib's eye-contour means, so use the contours here rather than the irises.
    eye_left, eye_right = eye_centres(landmarks, use_iris=False)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (xy[RIGHT_MOUTH_CORNER] + xy[LEFT_MOUTH_CORNER]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg

    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    centre = eye_avg + eye_to_mouth * 0.1
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])


def align_ffhq(image_rgb: np.ndarray, landmarks: np.ndarray, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """FFHQ-aligned size x size crop (reflected border) and the 2x3 matrix from input to aligned pixels."""
    import cv2

    quad = ffhq_quad(landmarks).astype(np.float32)
    corners = np.array([[0, 0], [0, size], [size, size]], dtype=np.float32)
    matrix = cv2.getAffineTransform(quad[:3], corners)
    # Downscaling by a large factor in one bilinear step aliases; pre-shrink like FFHQ's script does.
    image = np.ascontiguousarray(image_rgb)
    scale = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    shrink = int(np.floor(1.0 / scale / 2.0)) if scale < 0.5 else 1
    if shrink > 1:
        small = cv2.resize(image, (max(1, image.shape[1] // shrink), max(1, image.shape[0] // shrink)),
                           interpolation=cv2.INTER_AREA)
        factors = np.array([image.shape[1] / small.shape[1], image.shape[0] / small.shape[0]])
        warp = matrix.copy()
        # Compose with the map from small-image pixels back to full-size pixel centres.
        warp[:, :2] = matrix[:, :2] * factors
        warp[:, 2] = matrix[:, 2] + matrix[:, :2] @ ((factors - 1.0) / 2.0)
        aligned = cv2.warpAffine(small, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    else:
        aligned = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return aligned, matrix
