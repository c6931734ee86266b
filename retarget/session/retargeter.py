"""Perception + generator for still images: identity photo and driver face -> retargeted image.

This is the glue the CLI (and later the video engine and the app) use: it finds the face,
aligns it, embeds the identity once, and turns a driver face into the expression vector the
loaded Expression Adapter speaks (FLAME-55 through SMIRK, or MediaPipe blendshapes).
"""

from __future__ import annotations

import numpy as np

from retarget.weights.assets import SMIRK_HELP, ModelFiles
from retarget.config.models import ModelOptions
from retarget.errors import BadInputError, MissingModelFile, MissingWeightsError, NoFaceError
from retarget.face.align import align_ffhq, transform_points
from retarget.face.identity import ArcFaceEncoder, IdentityEmbedder
from retarget.face.paste import FacePlacement
from retarget.face.landmarker import FaceLandmarker, FaceObservation, landmarker_for
from retarget.pipeline import IdentityContext, RetargetPipeline
from retarget.config.generation import GenerationSettings

REFERENCE_SIZE = 512


class Retargeter:
    def __init__(self, files: ModelFiles, options: ModelOptions | None = None, *, use_reference: bool = True,
                 expression_source: str = "smirk"):
        """options: which adapter, landmarker, SMIRK and bridge files, where and in what precision (ModelOptions;
        its speed knobs are applied by load_retargeter). use_reference: attach the Reference Adapter (the
        generation settings' choice). expression_source: "bridge" drives a FLAME-55 adapter through the
        expression bridge, and SMIRK is then loaded only when something asks for it (load_smirk)."""
        from retarget.pipeline import pick_device, pick_dtype

        self.options = options = options if options is not None else ModelOptions()
        self.files = files
        device = pick_device(options.device)
        self.pipeline = RetargetPipeline.from_files(
            files, device, pick_dtype(options.dtype, device), exp_adapter=options.exp_adapter, ref_lora=options.ref_lora,
            use_ref_lora=use_reference)
        self.landmarker_path = landmarker_for(options.landmarker, files)
        self.landmarker = FaceLandmarker(self.landmarker_path, mode="image")
        try:
            self._attach_the_rest(files, options, expression_source)
        except BaseException:  # the landmarker's graph is closed now, never left to the garbage collector
            self.landmarker.close()
            raise

    def _attach_the_rest(self, files: ModelFiles, options: ModelOptions, expression_source: str) -> None:
        """After the landmarker: the identity embedder, and for a FLAME-55 adapter its bridge and SMIRK."""
        self.identity_embedder = IdentityEmbedder(ArcFaceEncoder(files.arcface), self.landmarker,
                                                  detector_path=files.detector, warn_without_detector=not files.is_test_model)
        self.smirk = None
        self.smirk_path = None
        self.bridge = None  # the ExpressionBridge of a FLAME-55 adapter (None: none fitted yet)
        self.adapter_path = options.exp_adapter or files.exp_adapter
        self.expression_source = expression_source
        self._identity_pending_flame = None  # (context, image, landmarks) while SMIRK is not loaded
        self.identity_flame: np.ndarray | None = None  # the latest identity's FLAME values (relative mode)
        self.identity_embedding: np.ndarray | None = None  # the latest identity's ArcFace vector
        self.identity_box: tuple | None = None  # where its face is in the photo (x0, y0, x1, y1)
        self.flame_history = None
        if self.pipeline.expression_kind == "flame55":
            from retarget.expression.flame import FlameHistory

            self.flame_history = FlameHistory()  # shared by this Retargeter's analyzers, for "Set neutral"
            from retarget.expression.bridge import load_bridge_for

            self.bridge = load_bridge_for(self.adapter_path, options.bridge) if self.adapter_path is not None else None
            self.smirk_path = options.smirk or files.smirk
            if expression_source != "bridge":
                self.load_smirk()
        elif options.bridge is not None:
            raise BadInputError(f"--bridge {options.bridge}: an expression bridge maps blendshapes to FLAME-55, and the loaded "
                                f"Expression Adapter takes {self.pipeline.expression_kind} (blendshapes directly); drop --bridge")

    def load_smirk(self):
        """SMIRK, loaded on first use (at once unless the models were loaded to drive through the bridge)."""
        if self.smirk is None:
            from retarget.face.smirk import SmirkExtractor

            if self.smirk_path is None:
                raise MissingWeightsError(f"the Expression Adapter takes FLAME-55 values, which need the SMIRK encoder: {SMIRK_HELP}")
            self.smirk = SmirkExtractor(self.smirk_path, device=str(self.pipeline.device))
            pending, self._identity_pending_flame = self._identity_pending_flame, None
            if pending is not None:  # the latest identity's own FLAME values, for relative SMIRK driving
                context, image, landmarks = pending
                context.flame = self.identity_flame = self.smirk.encode(image, landmarks)
        return self.smirk

    def close(self) -> None:
        self.landmarker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def observe(self, image: np.ndarray, source: str, face: int | None = None) -> FaceObservation:
        """The largest face; face N: the Nth from the left (from 1), or a one-line error listing the faces there are."""
        if face is not None:
            from retarget.face.selection import check_face_number

            faces = self.faces(image)
            check_face_number(face, [f.box for f in faces], source)
            return faces[face - 1]
        observation = self.landmarker.detect(image)
        if observation is None:
            raise NoFaceError(f"no face found in {source}")
        return observation

    def faces(self, image: np.ndarray) -> list[FaceObservation]:
        """Every face MediaPipe finds in a still (up to its num_faces), numbered left to right (index 0 = face 1)."""
        from retarget.face.selection import numbered

        return numbered(self.landmarker.detect_all(image))

    def identity_from_image(self, image: np.ndarray, source: str = "the identity photo", face: int | None = None) -> IdentityContext:
        """Align to the FFHQ template, embed the aligned face (as the Reference Adapter expects), run the reference pass.

        face: which face, numbered from 1 left to right (retarget.face.selection); None: the largest.
        """
        observation = self.observe(image, source, face)
        aligned, matrix = align_ffhq(image, observation.landmarks, size=REFERENCE_SIZE)
        # A chosen face need not be the largest in its aligned crop (a bigger neighbour may show): find it where it went.
        near = None if face is None else _box_of(transform_points(observation.landmarks[:, :2], matrix))
        aligned_observation = self.landmarker.detect(aligned) if near is None else _nearest_face(self.landmarker.detect_all(aligned), near)
        if aligned_observation is not None:
            embedding = self.identity_embedder.embed_with_landmarks(aligned, aligned_observation.landmarks, near=near)
        else:  # alignment cropped too tightly for a second detection; the original photo still has the face
            embedding = self.identity_embedder.embed_with_landmarks(
                image, observation.landmarks, near=None if face is None else observation.box)
        self.identity_embedding, self.identity_box = embedding, observation.box  # the latest identity's (checks, display)
        context = self.pipeline.prepare_identity(embedding, aligned)
        context.blendshapes = observation.blendshapes
        context.placement = FacePlacement(image, matrix, REFERENCE_SIZE, aligned=aligned)  # the exact inverse, for paste-back
        if self.smirk is not None:
            context.flame = self.smirk.encode(image, observation.landmarks)
            self.identity_flame = context.flame
        elif self.pipeline.expression_kind == "flame55":  # SMIRK not loaded (bridge driving): encoded if it ever is
            self.identity_flame = None
            self._identity_pending_flame = (context, image, observation.landmarks)
        return context

    def control_support(self) -> dict[str, str | None]:
        """Which expression controls apply to the loaded adapter: name -> None, or the reason it does not apply."""
        return self.control_support_for(self.expression_source)

    def control_support_for(self, expression_source: str) -> dict[str, str | None]:
        """control_support when driving with this expression source: through a fitted bridge, every gain applies."""
        from retarget.expression.flame import control_support

        bridged = self.bridge is not None and expression_source == "bridge"
        return control_support(self.pipeline.expression_kind, bridge=bridged)

    def bridge_mode(self, mapping=None) -> bool:
        """Whether image drivers reach this adapter through the bridge with these mapping settings (never SMIRK)."""
        source = mapping.expression_source if mapping is not None else self.expression_source
        return self.pipeline.expression_kind == "flame55" and source == "bridge"

    def driver_analyzer(self, mapping=None, identity_neutral: np.ndarray | None = None,
                        identity_flame: np.ndarray | None = None, face: int | None = None):
        """A fresh per-stream analyzer speaking this generator's expression format.

        face: drive with face N (from 1, left to right), tracked across frames; None: the largest face.

        identity_neutral: the identity photo's blendshapes (IdentityContext.blendshapes), for relative mode;
        identity_flame: its FLAME values (IdentityContext.flame; default: the latest identity's), FLAME-55 only.
        """
        from retarget.engine.driving import DriverAnalyzer

        if (identity_flame is None and self.identity_flame is None and self._identity_pending_flame is not None
                and not self.bridge_mode(mapping) and mapping is not None and mapping.relative):
            self.load_smirk()  # relative SMIRK driving needs the identity's FLAME values
        return DriverAnalyzer(
            self.pipeline.expression_kind,
            self.landmarker_path,
            mapping,
            identity_neutral=identity_neutral,
            smirk_path=self.smirk_path,
            device=str(self.pipeline.device),
            identity_flame=identity_flame if identity_flame is not None else self.identity_flame,
            flame_history=self.flame_history,
            smirk=self.smirk,
            face=face,
            bridge=self.bridge,
            smirk_loader=self.load_smirk,
        )

    def expression_from_observation(self, image: np.ndarray, observation: FaceObservation) -> np.ndarray:
        """The raw vector this adapter takes (no controls applied): SMIRK's FLAME-55 or the blendshapes."""
        kind = self.pipeline.expression_kind
        if kind == "flame55":
            return self.load_smirk().encode(image, observation.landmarks)
        if kind == "blendshapes51":
            return observation.blendshapes[1:]
        return observation.blendshapes

    def driver_neutral(self, image: np.ndarray, source: str, mirror: bool = False, face: int | None = None) -> np.ndarray:
        """A driver image's raw vector for DriverAnalyzer.set_neutral_from: FLAME (mirrored first if asked) or blendshapes.

        face: face N of this image, from 1 left to right (--driver-face); None: the largest.
        """
        observation = self.observe(image, source, face)
        if self.pipeline.expression_kind == "flame55" and not self.bridge_mode():
            from retarget.engine.driving import driver_flame

            return driver_flame(self.load_smirk(), image, observation.landmarks, mirror)
        return observation.blendshapes

    def expression_from_image(self, image: np.ndarray, source: str = "the driver", mapping=None,
                              identity_neutral: np.ndarray | None = None, neutral: np.ndarray | None = None,
                              face: int | None = None, blendshapes: bool = False) -> np.ndarray:
        """One still driver -> the vector fed to the adapter, through the same controls as a video's frames.

        neutral: the driver's raw neutral (relative mode); a single image has no first second to take it from.
        blendshapes: return the 52 mapped blendshapes instead (what a bridge-mode analyzer sends to the bridge).
        """
        if mapping is not None and mapping.relative and neutral is None:
            raise BadInputError("--relative needs the driver's neutral face, which a single image does not have; "
                                "drop --relative, or drive with a video (its first second is the neutral)")
        from retarget.media.sources import Frame

        if face is not None:
            self.observe(image, source, face)  # a one-line error listing the faces when there is no face N
        with self.driver_analyzer(mapping, identity_neutral=identity_neutral, face=face) as analyzer:
            if neutral is not None:
                analyzer.set_neutral_from(neutral)
            driven = analyzer(Frame(0, 0.0, image))
        if not driven.face_found:
            raise NoFaceError(f"no face found in {source}")
        return driven.blendshapes if blendshapes else driven.expression

    def render(self, context: IdentityContext, expressions, settings: GenerationSettings, progress: bool = False,
               frame_indices=None) -> np.ndarray:
        return self.pipeline.generate(context, expressions, settings, frame_indices=frame_indices, progress=progress)


def load_retargeter(options: ModelOptions | None = None, *, use_reference: bool = True, expression_source: str = "smirk",
                    local_files_only: bool | None = None, progress=None):
    """A Retargeter from ModelOptions (models spec, files, device, dtype, speed knobs), sped up as they ask; returns it
    and its ModelFiles. A missing file raises MissingModelFile naming its kind (models, hub, landmarker, smirk), so a
    UI can offer the fix for exactly that file."""
    from retarget.weights.assets import resolve_models

    options = options if options is not None else ModelOptions()
    try:
        files = resolve_models(options.models, local_files_only=local_files_only, progress=progress or (lambda line: None))
    except MissingWeightsError as err:
        raise MissingModelFile("hub" if options.models == "hub" else "models", err) from None
    try:
        # The generator first, then the landmarker (README order), then SMIRK: the first missing file is named.
        retargeter = Retargeter(files, options, use_reference=use_reference, expression_source=expression_source)
    except MissingWeightsError as err:
        text = str(err)
        kind = "landmarker" if "face landmarker" in text else "smirk" if "SMIRK" in text else "models"
        raise MissingModelFile(kind, err) from None
    try:
        speed_up(retargeter.pipeline, options)
    except BaseException:
        retargeter.close()
        raise
    return retargeter, files


def speed_up(pipe: RetargetPipeline, options: ModelOptions) -> None:
    """The speed knobs of ModelOptions, applied to a loaded generator (a new one is one more line here)."""
    if options.attention != "auto":  # hooks on the UNet, in place before torch.compile traces it
        pipe.use_attention(options.attention)
    if options.channels_last:
        pipe.enable_channels_last()
    if options.compile:
        pipe.enable_compile()
    if options.tiny_vae:
        pipe.use_tiny_vae(options.tiny_vae)
    if options.lcm_lora:
        pipe.load_lcm_lora(options.lcm_lora)


def _box_of(points: np.ndarray) -> tuple[float, float, float, float]:
    return float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()), float(points[:, 1].max())


def _nearest_face(faces: list[FaceObservation], box) -> FaceObservation | None:
    from retarget.face.selection import nearest

    index = nearest([f.box for f in faces], box, max_distance=None)
    return None if index is None else faces[index]
