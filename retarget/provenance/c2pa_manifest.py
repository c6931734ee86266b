"""C2PA manifests (c2pa-python): a signed "created by a trained model" claim in PNG/JPEG/WebP stills and MP4 files.

Signing needs a private key and its certificate chain. The user may configure their own (--c2pa-key,
--c2pa-cert: e.g. one issued by a CA on the C2PA trust list); by default a key and a certificate chain
are generated on first use in ~/.cache/retarget/c2pa/ (a local CA that signs a local signer). That
default is SELF-SIGNED: readers check the manifest is intact and matches the file ("Valid"), but it
proves nothing about who made the file, and C2PA tools list the signer as untrusted.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from pathlib import Path

from retarget import __version__
from retarget.errors import is_write_failure
from retarget.provenance.metadata import AI_SOURCE_TYPE, TOOL

MIME_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
              ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime"}
SELF_SIGNED_ORG = "retarget local self-signed key (not a trusted identity)"
_lock = threading.Lock()  # one signer built at a time; the first build writes the default key
_warned: set[str] = set()


def available() -> bool:
    try:
        import c2pa  # noqa: F401
    except Exception:  # ImportError, or a native library that does not load on this platform
        return False
    return True


def default_dir() -> Path:
    """~/.cache/retarget/c2pa (retarget.cache.user_cache_dir's rule, not imported: cache -> outputs -> here)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "retarget" / "c2pa"


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr)


def ensure_default_key(folder: Path | None = None) -> tuple[Path, Path]:
    """(key.pem, chain.pem) of the local self-signed signer, generated on first use (EC P-256, ten years)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(folder or default_dir())
    key_path, chain_path = folder / "key.pem", folder / "chain.pem"
    if key_path.is_file() and chain_path.is_file():
        return key_path, chain_path
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, SELF_SIGNED_ORG)])

    def usage(sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False, data_encipherment=False,
                             key_agreement=False, key_cert_sign=not sign, crl_sign=not sign, encipher_only=False, decipher_only=False)

    def cert(subject, issuer, public, signing_key, ca: bool):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
                   .add_extension(usage(not ca), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))
        if not ca:  # C2PA wants a signer certificate with an end-entity usage, issued by a CA
            builder = (builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                       .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False))
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert(name("retarget local CA"), name("retarget local CA"), ca_key.public_key(), ca_key, ca=True)
    leaf = cert(name("retarget local signer"), ca.subject, key.public_key(), ca_key, ca=False)
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + ca.public_bytes(pem)
    secret = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp_key, tmp_chain = folder / ".key.pem.partial", folder / ".chain.pem.partial"
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a private key: the owner only
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    tmp_chain.write_bytes(chain)
    os.replace(tmp_chain, chain_path)
    os.replace(tmp_key, key_path)
    (folder / "README.txt").write_text(
        "A SELF-SIGNED key that retarget generated to sign the C2PA manifests of its outputs.\n"
        "It shows that a file is unchanged since retarget wrote it; it proves nothing about who made it.\n"
        "Use --c2pa-key/--c2pa-cert with a certificate from a trusted CA for that.\n", encoding="utf-8")
    return key_path, chain_path


@functools.lru_cache(maxsize=4)
def _signer(key_path: str, chain_path: str):
    import c2pa

    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256 if _is_ec(key_path) else c2pa.C2paSigningAlg.PS256,
                               Path(chain_path).read_bytes(), Path(key_path).read_bytes(), None)
    return c2pa.Signer.from_info(info)


def _is_ec(key_path: str) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return isinstance(load_pem_private_key(Path(key_path).read_bytes(), password=None), ec.EllipticCurvePrivateKey)


def manifest_definition(title: str) -> dict:
    agent = {"name": TOOL, "version": __version__}
    return {"claim_generator_info": [agent], "title": title,
            "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": AI_SOURCE_TYPE, "softwareAgent": agent,
                 "description": f"AI-generated by {TOOL} {__version__} (facial expression retargeting)"}]}}]}


def embed(path, title: str | None = None, key=None, chain=None, suffix: str | None = None) -> bool:
    """Sign `path` in place (through a temp file beside it): True when it now holds our manifest.
    suffix: the format's suffix when `path` is a temp name that lacks it (".png").

    A missing library or a failure is one warning line (the watermark and metadata are still there); a write
    failure (a full disk) raises OSError, as any other write of the output would."""
    path = Path(path)
    suffix = (suffix or path.suffix).lower()
    mime = MIME_TYPES.get(suffix)
    if mime is None:
        return False
    if not available():
        _warn_once("c2pa-python is not installed: outputs carry the watermark and metadata but no C2PA manifest")
        return False
    import c2pa

    signed = path.with_name(f".{path.name}.c2pa{suffix}")
    try:
        with _lock:
            if key is None:
                key, chain = ensure_default_key()
            signer = _signer(str(key), str(chain))
        builder = c2pa.Builder(json.dumps(manifest_definition(title or path.name)))
        with open(path, "rb") as source, open(signed, "w+b") as dest:
            builder.sign(signer, mime, source, dest)
        os.replace(signed, path)
        return True
    except Exception as err:  # c2pa.C2paError, a bad key file...: keep the output, say why it has no manifest
        signed.unlink(missing_ok=True)
        if is_write_failure(err):
            raise  # a full disk is not a signing problem: the output is not done
        _warn_once(f"{path.name}: no C2PA manifest was added ({' '.join(str(err).split())[:200]})")
        return False


def read(path) -> dict | None:
    """What the file's C2PA manifest says (None when it has none, or c2pa-python is missing):
    {"validation": "Valid"/"Trusted"/"Invalid", "generator": "retarget 0.1.0", "ai_generated": bool,
     "self_signed": bool, "issuer": "..."}."""
    if not available():
        return None
    import c2pa

    try:
        reader = c2pa.Reader.try_create(str(path))
    except Exception as err:
        return {"validation": "unreadable", "error": " ".join(str(err).split())[:200], "ai_generated": False}
    if reader is None:
        return None
    with reader:
        manifest = reader.get_active_manifest() or {}
        state = reader.get_validation_state() or "?"
    generators = manifest.get("claim_generator_info") or [{}]
    text = json.dumps(manifest.get("assertions", []))
    issuer = (manifest.get("signature_info") or {}).get("issuer", "")
    return {"validation": state, "generator": f"{generators[0].get('name', '?')} {generators[0].get('version', '')}".strip(),
            "ai_generated": AI_SOURCE_TYPE in text, "issuer": issuer, "self_signed": issuer == SELF_SIGNED_ORG}
