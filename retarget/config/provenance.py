"""Provenance marking of every output (retarget.provenance): on by default, never off by default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from retarget.config.knobs import knob, validate_knobs


@dataclass
class ProvenanceOptions:
    """The invisible watermark, the AI-generated metadata and the C2PA manifest of every picture and video written."""

    SECTION: ClassVar[str] = "provenance"
    TITLE: ClassVar[str] = "Provenance"

    mark: bool = knob(True, flag="--no-provenance", group="provenance",
                      help="RESEARCH USE ONLY, where the law allows: write outputs without the invisible watermark, the "
                           "AI-generated metadata and the C2PA manifest (EU AI Act Art. 50(2) requires them for published "
                           "synthetic images and video)",
                      label="Mark outputs as AI-generated",
                      tooltip="Invisible watermark + 'AI-generated' metadata + C2PA manifest in every output "
                              "(EU AI Act Art. 50(2)); turn off only for research where the law allows")
    c2pa_key: Path | None = knob(None, flag="--c2pa-key", group="provenance", metavar="KEY.pem", reads=True,
                                 help="private key (PEM) that signs the C2PA manifests (default: a self-signed key "
                                      "generated in ~/.cache/retarget/c2pa/, which proves nothing about who made the file)")
    c2pa_cert: Path | None = knob(None, flag="--c2pa-cert", group="provenance", metavar="CHAIN.pem", reads=True,
                                  help="the certificate chain (PEM, signer first) of --c2pa-key")

    def validate(self) -> None:
        validate_knobs(self)
        from retarget.errors import BadInputError

        if (self.c2pa_key is None) != (self.c2pa_cert is None):
            raise BadInputError("--c2pa-key and --c2pa-cert go together: give both (or neither, for the local self-signed key)")
        for path in (self.c2pa_key, self.c2pa_cert):
            if path is not None and not Path(path).is_file():
                raise BadInputError(f"{path}: no such file (a PEM file for C2PA signing)")
