"""Face alignment from MediaPipe landmarks: ArcFace's 112x112 template and the FFHQ crop."""

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


# The 68-point convention's six contour points of each eye, as MediaPipe FaceMesh indices (outer
# corner, two upper-lid points, inner corner, two lower-lid points; the usual EAR correspondence):
# 68-point 36-41 (image-left eye) -> 33, 160, 158, 133, 153, 144;
# 68-point 42-47 (image-right eye) -> 362, 385, 387, 263, 373, 380.
# The mouth corners 48 and 54 are MediaPipe's 61 and 291.
FFHQ_LEFT_EYE = (33, 160, 158, 133, 153, 144)
FFHQ_RIGHT_EYE = (362, 385, 387, 263, 373, 380)
FFHQ_MOUTH_CORNERS = (RIGHT_MOUTH_CORNER, LEFT_MOUTH_CORNER)
# The recipe warps at 4x the output resolution and then Lanczos-resamples down (1024 from 4096).
FFHQ_TRANSFORM_FACTOR = 4


def ffhq_anchors(landmarks: np.ndarray) -> np.ndarray:
    """(4, 2) FFHQ anchors from MediaPipe landmarks: image-left/right eye centres, image-left/right mouth corners."""
    xy = _xy(landmarks)
    return np.stack([
        xy[list(FFHQ_LEFT_EYE)].mean(0), xy[list(FFHQ_RIGHT_EYE)].mean(0),
        xy[FFHQ_MOUTH_CORNERS[0]], xy[FFHQ_MOUTH_CORNERS[1]],
    ])


def _checked_anchors(anchors) -> np.ndarray:
    anchors = np.asarray(anchors, dtype=np.float64)
    if anchors.shape != (4, 2):
        raise ValueError(f"FFHQ anchors must be a (4, 2) array [left eye, right eye, left mouth, right mouth], got {anchors.shape}")
    if not np.isfinite(anchors).all():
        raise ValueError("FFHQ anchors contain NaN or infinite values")
    if np.hypot(*(anchors[1] - anchors[0])) < 1e-6:
        raise ValueError("FFHQ anchors: the two eye centres coincide")
    return anchors


def ffhq_quad_from_anchors(anchors) -> np.ndarray:
    """FFHQ's oriented square (4x2: top-left, bottom-left, bottom-right, top-right corners) in image pixels."""
    eye_left, eye_right, mouth_left, mouth_right = _checked_anchors(anchors)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) * 0.5 - eye_avg
    # The square's x axis: eye-to-eye direction blended with the eye-to-mouth direction turned 90 degrees.
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    centre = eye_avg + eye_to_mouth * 0.1
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])


def ffhq_matrix(anchors, size: int = 512) -> np.ndarray:
    """2x3 affine from input pixels to ffhq_align's output pixels (both with pixel centres at whole numbers).

    The quad's corners land on the outer edges of the output, i.e. at -0.5 and size - 0.5.
    """
    import cv2

    quad = ffhq_quad_from_anchors(anchors).astype(np.float32)
    edges = np.array([[-0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]], dtype=np.float32)
    return cv2.getAffineTransform(quad[:3], edges).astype(np.float64)


def _pad_blended(image: np.ndarray, pad: tuple[int, int, int, int], qsize: float) -> np.ndarray:
    """Reflect-pad (left, top, right, bottom), then fade the padding into a blur and the median colour."""
    import cv2

    left, top, right, bottom = pad
    padded = np.pad(image.astype(np.float32), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    height, width = padded.shape[:2]
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    # 0 on the original picture's edge, rising to 1 at the padding's outer edge (negative inside).
    mask_x = 1.0 - np.minimum(xs / max(left, 1), (width - 1 - xs) / max(right, 1))
    mask_y = 1.0 - np.minimum(ys / max(top, 1), (height - 1 - ys) / max(bottom, 1))
    mask = np.maximum(mask_x, mask_y)[..., None]
    sigma = qsize * 0.02
    # A sampled Gaussian truncated at 4 sigma with mirrored edges (what scipy's gaussian_filter does), via OpenCV for speed.
    radius = int(4.0 * sigma + 0.5)
    blurred = cv2.GaussianBlur(padded, (2 * radius + 1, 2 * radius + 1), sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    padded += (blurred - padded) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    padded += (np.median(padded, axis=(0, 1)) - padded) * np.clip(mask, 0.0, 1.0)
    return np.clip(np.rint(padded), 0, 255).astype(np.uint8)


def ffhq_align(image_rgb: np.ndarray, anchors, size: int = 512) -> np.ndarray:
    """The FFHQ-aligned size x size uint8 crop for anchors [left eye, right eye, left mouth, right mouth] (pixels).

    Steps of the FFHQ recipe: integer pre-shrink with antialiasing when the face is much larger
    than the output; crop to the quad plus a border; reflect padding blended with a Gaussian blur
    and the median colour where the quad leaves the picture; the quad warped to 4x the output
    size; Lanczos down to size.
    """
    from PIL import Image

    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
    # Work in pixel-edge coordinates (a pixel's centre at +0.5), as the quad warp does.
    quad = ffhq_quad_from_anchors(anchors) + 0.5
    qsize = np.hypot(*(quad[3] - quad[0]))
    picture = Image.fromarray(image)

    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        small = (int(round(picture.width / shrink)), int(round(picture.height / shrink)))
        quad = quad * (np.array(small) / np.array(picture.size))
        qsize = qsize * small[0] / picture.width
        picture = picture.resize(small, Image.Resampling.LANCZOS)

    border = max(int(round(qsize * 0.1)), 3)
    low, high = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    crop = (max(low[0] - border, 0), max(low[1] - border, 0),
            min(high[0] + border, picture.width), min(high[1] + border, picture.height))
    if crop[2] - crop[0] < picture.width or crop[3] - crop[1] < picture.height:
        picture = picture.crop(crop)
        quad = quad - crop[:2]

    low, high = np.floor(quad.min(0)).astype(int), np.ceil(quad.max(0)).astype(int)
    pad = (max(-low[0] + border, 0), max(-low[1] + border, 0),
           max(high[0] - picture.width + border, 0), max(high[1] - picture.height + border, 0))
    if max(pad) > border - 4:
        pad = tuple(max(p, int(round(qsize * 0.3))) for p in pad)
        picture = Image.fromarray(_pad_blended(np.asarray(picture), pad, qsize))
        quad = quad + pad[:2]

    working = size * FFHQ_TRANSFORM_FACTOR
    picture = picture.transform((working, working), Image.Transform.QUAD, tuple(quad.flatten()), Image.Resampling.BILINEAR)
    picture = picture.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(picture)


def align_ffhq(image_rgb: np.ndarray, landmarks: np.ndarray, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """FFHQ-aligned size x size crop from MediaPipe landmarks, and the 2x3 matrix from input to aligned pixels."""
    anchors = ffhq_anchors(landmarks)
    return ffhq_align(image_rgb, anchors, size), ffhq_matrix(anchors, size)
