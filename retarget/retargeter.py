"""Perception + generator for still images: identity photo and driver face -> retargeted image.

This is the glue the CLI (and later the video engine and the app) use: it finds the face,
aligns it, embeds the identity once, and turns a driver face into the expression vector the
loaded Expression Adapter speaks (FLAME-55 through SMIRK, or MediaPipe blendshapes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from retarget.assets import SMIRK_HELP, ModelFiles
from retarget.errors import MissingWeightsError, NoFaceError
from retarget.face.align import align_ffhq
from retarget.face.identity import ArcFaceEncoder, IdentityEmbedder
from retarget.face.landmarker import FaceLandmarker, FaceObservation, landmarker_for
from retarget.pipeline import IdentityContext, RetargetPipeline
from retarget.settings import GenerationSettings

REFERENCE_SIZE = 512


class Retargeter:
    def __init__(
        self,
        files: ModelFiles,
        device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        exp_adapter: Path | None = None,
        ref_lora: Path | None = None,
        use_reference: bool = True,
        landmarker_path: Path | None = None,
        smirk_path: Path | None = None,
    ):
        self.files = files
        self.pipeline = RetargetPipeline.from_files(
            files, device, dtype, exp_adapter=exp_adapter, ref_lora=ref_lora, use_ref_lora=use_reference
        )
        self.landmarker_path = landmarker_for(landmarker_path, files)
        self.landmarker = FaceLandmarker(self.landmarker_path, mode="image")
        self.identity_embedder = IdentityEmbedder(ArcFaceEncoder(files.arcface), self.landmarker)
        self.smirk = None
        self.smirk_path = None
        if self.pipeline.expression_kind == "flame55":
            from retarget.face.smirk import SmirkExtractor

            path = smirk_path or files.smirk
            if path is None:
                raise MissingWeightsError(f"the Expression Adapter takes FLAME-55 values, which need the SMIRK encoder: {SMIRK_HELP}")
            self.smirk_path = path
            self.smirk = SmirkExtractor(path, device=str(self.pipeline.device))

    def close(self) -> None:
        self.landmarker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def observe(self, image: np.ndarray, source: str) -> FaceObservation:
        observation = self.landmarker.detect(image)
        if observation is None:
            raise NoFaceError(f"no face found in {source}")
        return observation

    def identity_from_image(self, image: np.ndarray, source: str = "the identity photo") -> IdentityContext:
        """Align to the FFHQ template, embed the aligned face (as the Reference Adapter expects), run the reference pass."""
        observation = self.observe(image, source)
        aligned, _ = align_ffhq(image, observation.landmarks, size=REFERENCE_SIZE)
        aligned_observation = self.landmarker.detect(aligned)
        if aligned_observation is not None:
            embedding = self.identity_embedder.embed_with_landmarks(aligned, aligned_observation.landmarks)
        else:  # alignment cropped too tightly for a second detection; the original photo still has the face
            embedding = self.identity_embedder.embed_with_landmarks(image, observation.landmarks)
        context = self.pipeline.prepare_identity(embedding, aligned)
        context.blendshapes = observation.blendshapes
        return context

    def driver_analyzer(self, mapping=None, identity_neutral: np.ndarray | None = None):
        """A fresh per-stream analyzer speaking this generator's expression format.

        identity_neutral: the identity photo's blendshapes (IdentityContext.blendshapes), for relative mode.
        """
        from retarget.driving import DriverAnalyzer

        return DriverAnalyzer(
            self.pipeline.expression_kind,
            self.landmarker_path,
            mapping,
            identity_neutral=identity_neutral,
            smirk_path=self.smirk_path,
            device=str(self.pipeline.device),
        )

    def expression_from_observation(self, image: np.ndarray, observation: FaceObservation) -> np.ndarray:
        kind = self.pipeline.expression_kind
        if kind == "flame55":
            return self.smirk.encode(image, observation.landmarks)
        if kind == "blendshapes51":
            return observation.blendshapes[1:]
        return observation.blendshapes

    def expression_from_image(self, image: np.ndarray, source: str = "the driver") -> np.ndarray:
        return self.expression_from_observation(image, self.observe(image, source))

    def render(self, context: IdentityContext, expressions, settings: GenerationSettings, progress: bool = False) -> np.ndarray:
        return self.pipeline.generate(context, expressions, settings, progress=progress)
