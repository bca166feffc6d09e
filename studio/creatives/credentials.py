"""Content credentials: sign a creative with a C2PA manifest, verify one, make development keys.

A signed creative carries its C2PA manifest inside the PNG (a ``caBX`` chunk), signed with
an ES256 certificate: who made it (claim generator ``creative-studio`` and its version), how
(``c2pa.created`` with the IPTC digital source type, then ``c2pa.edited``), from what (the
product photo as a ``componentOf`` ingredient named by its SHA-256, not embedded) and with
which settings (the ``com.creative-studio.render`` assertion: engine, model, prompt, seed).
Changing a pixel, or copying the manifest into another file, breaks the manifest's data
hash (``invalid``); re-encoding the pixels drops the manifest (``unsigned``) — the invisible
watermark is the signal that survives that.

The key and certificate come from a signing folder with a ``signing.yaml``: a key file, for
development (``studio keys init`` makes a CA and a leaf), or a command that signs with a
remote key (HSM, KMS): it reads the bytes to sign on stdin and writes their ES256 signature
(DER, or raw r||s) on stdout. Every signature the command returns is checked against the
certificate before it is embedded. Thumbnails stay off: they cost ~600 ms per image; without
them signing takes 4–11 ms and verifying 3–5 ms per 512-px PNG.

Why this module is long: signing, verifying and making keys share the certificate rules
(ES256 on P-256, digitalSignature, the EKU c2pa accepts) and their error messages; split,
each part would import the others' checks.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipelines.product import MAX_FILE_BYTES

from ..errors import StudioError
from ..files import atomic_files, check_folder_path, read_bytes, read_yaml

CLAIM_GENERATOR = "creative-studio"
_IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
#: The product photo composited into a generated scene: the studio's usual creative.
DIGITAL_SOURCE_TYPE = _IPTC + "compositeWithTrainedAlgorithmicMedia"
#: An image generated whole, nothing of the input kept.
GENERATED_SOURCE_TYPE = _IPTC + "trainedAlgorithmicMedia"
#: The custom assertion holding the render settings (engine, model, prompt, seed...).
RENDER_ASSERTION = "com.creative-studio.render"
SETTINGS_FILE = "signing.yaml"
#: What ``init_keys`` writes; a folder holding any of them is refused.
KEY_FOLDER_FILES = ("ca.pem", "ca.key", "leaf.key", "leaf-chain.pem", "README.txt",
                    SETTINGS_FILE)
#: The extended key usage a signing certificate must carry. Measured with c2pa-python
#: 0.38.1 (c2pa-rs 0.91.3) and its default settings: emailProtection is accepted;
#: documentSigning (1.3.6.1.5.5.7.3.36), the C2PA and Microsoft claim-signing EKUs alone
#: are refused ("certificate missing required EKU").
SIGNING_EKU = ExtendedKeyUsageOID.EMAIL_PROTECTION
#: Seconds a signer command may take for one signature.
COMMAND_TIMEOUT_S = 30
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIGN_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}
_README = """\
Development signing keys made by `studio keys init`.

development only: production uses a remote or subprocess signer (command:)

ca.pem          the development CA: give it to `studio verify --trust` to get "trusted"
ca.key          the CA's private key (mode 0600); only needed to issue another leaf
leaf-chain.pem  the signing certificate followed by the CA
leaf.key        the signing key (mode 0600)
signing.yaml    what `STUDIO_SIGNING=<this folder>` reads

For production, keep the key in an HSM or KMS and replace `key:` in signing.yaml by
`command: [my-signer, --arg]`: the command reads the bytes to sign on stdin and writes
their ES256 signature (DER or raw r||s) on stdout.
"""


class SigningError(StudioError):
    """A signing folder, key, certificate or signer command that cannot sign."""


@dataclass(frozen=True)
class Signing:
    """Where the signing key and certificate come from: a folder made by `studio keys init`
    (or the user's own), or a command for a remote signer.

    ``chain_pem`` is the signing certificate followed by its issuers; exactly one of
    ``key_pem`` (an unencrypted PKCS#8 PEM) and ``command`` is set."""

    folder: Path
    chain_pem: bytes
    key_pem: bytes | None = field(default=None, repr=False)
    command: tuple[str, ...] | None = None

    @classmethod
    def load(cls, folder) -> "Signing":
        """Read ``folder/signing.yaml`` — ``{certificate: leaf-chain.pem, key: leaf.key}`` or
        ``{certificate: ..., command: [my-signer, --arg]}``, paths relative to the folder —
        and check the certificate (ES256 on P-256, in date, digitalSignature, the EKU) and
        that the key matches it, so that a bad folder fails before anything is rendered."""
        folder = Path(folder)
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise SigningError(f"signing folder {str(folder)!r} {what} "
                               "(make one with `studio keys init DIR`)")
        try:
            config = read_yaml(folder / SETTINGS_FILE, "signing settings")
        except StudioError as exc:
            raise SigningError(str(exc)) from None
        where = str(folder / SETTINGS_FILE)
        if not isinstance(config, dict):
            raise SigningError(f"signing settings {where!r} must be a mapping")
        unknown = sorted(set(config) - {"certificate", "key", "command"})
        if unknown:
            raise SigningError(f"signing settings {where!r}: unknown key(s) {', '.join(unknown)}; "
                               "use certificate, and key or command")
        if "certificate" not in config:
            raise SigningError(f"signing settings {where!r} name no certificate")
        if ("key" in config) == ("command" in config):
            raise SigningError(f"signing settings {where!r} must name exactly one of key "
                               "(a PEM file) and command (a signer command)")
        chain_pem, leaf = _load_chain(_setting_path(folder, config, "certificate"))
        if "key" in config:
            key_path = _setting_path(folder, config, "key")
            return cls(folder, chain_pem, key_pem=_load_key(key_path, leaf))
        return cls(folder, chain_pem, command=_load_command(folder, config["command"], where))

    @classmethod
    def from_environment(cls) -> "Signing | None":
        """The signing folder named by ``STUDIO_SIGNING``; None when it is unset or empty."""
        folder = os.environ.get("STUDIO_SIGNING", "")
        return cls.load(folder) if folder else None

    def sign_png(self, png: bytes, *, title: str, source_type: str,
                 product_sha256: str | None, assertions: dict) -> bytes:
        """``png`` with a signed C2PA manifest embedded: ``title`` (the file name),
        ``source_type`` (an IPTC digital source type URL), the product as an ingredient
        named by ``product_sha256`` (None: no ingredient) and ``assertions`` (JSON values)
        as the ``com.creative-studio.render`` assertion."""
        if not png.startswith(_PNG_SIGNATURE):
            raise SigningError("sign_png needs PNG bytes")
        if not source_type.startswith(_IPTC):
            raise SigningError(f"source type {source_type!r} is not an IPTC digital source "
                               f"type (it starts with {_IPTC})")
        if product_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", product_sha256):
            raise SigningError(f"product sha256 {product_sha256!r} is not 64 hex digits")
        try:
            json.dumps(assertions, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise SigningError(f"render assertions are not JSON: {exc}") from None
        manifest = {
            "claim_generator_info": [{"name": CLAIM_GENERATOR, "version": _studio_version()}],
            "title": title,
            "format": "image/png",
            "assertions": [
                {"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": source_type},
                    {"action": "c2pa.edited",
                     "parameters": {"description": "background generated around the "
                                                   "product, whose pixels are kept"}}]}},
                {"label": RENDER_ASSERTION, "data": assertions},
            ],
            "ingredients": [] if product_sha256 is None else [{
                "title": "product", "format": "image/png", "relationship": "componentOf",
                "instance_id": f"sha256:{product_sha256}",
                "description": f"the product photo, sha256 {product_sha256}"}],
        }
        failures: list[str] = []
        out = io.BytesIO()
        try:
            with c2pa.Settings.from_dict(_SIGN_SETTINGS) as settings, \
                    c2pa.Context(settings=settings) as context, \
                    self._signer(failures) as signer, \
                    c2pa.Builder(manifest, context=context) as builder:
                builder.sign(signer, "image/png", io.BytesIO(png), out)
        except c2pa.C2paError as exc:
            raise SigningError(failures[0] if failures else
                               f"c2pa could not sign: {_first_line(exc)}") from None
        return out.getvalue()

    def describe(self) -> dict:
        """The signer, for a creative's manifest: subject, issuer, algorithm, serial number,
        expiry and whether a key file or a command signs (never the key)."""
        leaf = x509.load_pem_x509_certificates(self.chain_pem)[0]
        return {"algorithm": "es256", "subject": leaf.subject.rfc4514_string(),
                "issuer": leaf.issuer.rfc4514_string(),
                "serial_number": format(leaf.serial_number, "x"),
                "not_valid_after": leaf.not_valid_after_utc.isoformat(),
                "signer": "command" if self.command else "key"}

    def _signer(self, failures: list[str]) -> c2pa.Signer:
        """A c2pa signer: native with the key file, else a callback running the command
        (its failures are appended to ``failures``: c2pa only sees an empty signature)."""
        if self.key_pem is not None:
            return c2pa.Signer.from_info(
                c2pa.C2paSignerInfo("es256", self.chain_pem, self.key_pem, None))
        public_key = x509.load_pem_x509_certificates(self.chain_pem)[0].public_key()

        def sign(data: bytes) -> bytes:
            try:
                return _command_signature(self.command, self.folder, data, public_key)
            except SigningError as exc:
                failures.append(str(exc))
                return b""

        return c2pa.Signer.from_callback(sign, c2pa.C2paSigningAlg.ES256,
                                         self.chain_pem.decode(), None)


def verify(data: bytes | Path, *, trust_anchors: bytes | None = None,
           name: str | None = None) -> dict:
    """What a file's content credentials say: ``state`` is ``trusted`` (signature and hashes
    good, the chain ends at one of ``trust_anchors``, PEM certificates), ``valid`` (good but
    the signer is not trusted), ``invalid`` (any integrity failure: changed pixels, a
    manifest from another file, a damaged manifest) or ``unsigned`` (no C2PA manifest);
    ``reasons`` are c2pa's failure codes. A file that is no image c2pa reads is a
    StudioError."""
    if isinstance(data, Path):
        name = str(data) if name is None else name
        data = read_bytes(data, "creative", MAX_FILE_BYTES)
    settings: dict = {"verify": {"verify_trust": True}}
    if trust_anchors is not None:
        settings["trust"] = {"trust_anchors": _trust_anchors(trust_anchors)}
    report = {"file": name, "state": "unsigned", "reasons": [], "claim_generator": None,
              "actions": [], "digital_source_type": None, "ingredients": [],
              "render": None, "signer": None}
    try:
        with c2pa.Settings.from_dict(settings) as config, \
                c2pa.Context(settings=config) as context, \
                c2pa.Reader(io.BytesIO(data), context=context) as reader:
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
            active = reader.get_active_manifest() or {}
    except c2pa.C2paError.ManifestNotFound:
        return {**report, "reasons": ["no C2PA manifest"]}
    except c2pa.C2paError.NotSupported:
        raise StudioError(f"{name or 'data'} is not an image c2pa can read") from None
    except c2pa.C2paError as exc:  # a manifest store that cannot be parsed
        return {**report, "state": "invalid", "reasons": [_first_line(exc)]}
    failures = (results.get("activeManifest") or {}).get("failure", [])
    report["state"] = {"Trusted": "trusted", "Valid": "valid"}.get(state, "invalid")
    report["reasons"] = list(dict.fromkeys(item["code"] for item in failures))
    report["claim_generator"] = " ".join(
        f"{info.get('name')}/{info.get('version')}" for info in
        active.get("claim_generator_info", []))
    for assertion in active.get("assertions", []):
        if assertion["label"].startswith("c2pa.actions"):
            for action in assertion["data"].get("actions", []):
                report["actions"].append(action["action"])
                report["digital_source_type"] = (report["digital_source_type"]
                                                 or action.get("digitalSourceType"))
        elif assertion["label"] == RENDER_ASSERTION:
            report["render"] = assertion["data"]
    report["ingredients"] = [{key: item.get(key) for key in ("title", "relationship",
                                                              "instance_id")}
                             for item in active.get("ingredients", [])]
    info = active.get("signature_info") or {}
    report["signer"] = {"common_name": info.get("common_name"), "issuer": info.get("issuer"),
                        "algorithm": info.get("alg")} if info else None
    return report


def init_keys(folder: Path) -> dict:
    """Write a development CA (ES256/P-256, self-signed, CA:true) and a signing leaf it
    issued into ``folder``: ca.pem, ca.key, leaf.key, leaf-chain.pem, signing.yaml and a
    README.txt saying they are for development. Private keys are mode 0600. A folder that
    already holds any of these files is refused and left as it was."""
    folder = Path(folder)
    check_folder_path(folder, "keys folder")
    existing = [name for name in KEY_FOLDER_FILES if (folder / name).exists()]
    if existing:
        raise SigningError(f"keys folder {str(folder)!r} already holds {', '.join(existing)}; "
                           "nothing was written (choose an empty folder)")
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca_name = _name("Creative Studio development CA")
    ca = (_certificate(ca_name, ca_name, ca_key.public_key(), now, days=3650)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (_certificate(_name("Creative Studio development signer"), ca_name,
                         leaf_key.public_key(), now, days=730)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([SIGNING_EKU]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    # atomic_files writes through mkstemp, so every file starts as mode 0600 (the keys
    # stay so) and the signing settings come last: a failed run leaves no usable half.
    with atomic_files(folder) as files:
        files["ca.pem"] = ca_pem
        files["ca.key"] = _pkcs8(ca_key)
        files["leaf.key"] = _pkcs8(leaf_key)
        files["leaf-chain.pem"] = leaf.public_bytes(serialization.Encoding.PEM) + ca_pem
        files["README.txt"] = _README.encode()
        files[SETTINGS_FILE] = (b"# Development signing keys: see README.txt.\n"
                                b"certificate: leaf-chain.pem\nkey: leaf.key\n")
    for public in ("ca.pem", "leaf-chain.pem", "README.txt", SETTINGS_FILE):
        os.chmod(folder / public, 0o644)
    return {"folder": str(folder), "files": list(KEY_FOLDER_FILES), "development": True,
            "ca": ca.subject.rfc4514_string(), "signer": leaf.subject.rfc4514_string(),
            "not_valid_after": leaf.not_valid_after_utc.isoformat()}


def _setting_path(folder: Path, config: dict, key: str) -> Path:
    value = config[key]
    if not isinstance(value, str) or not value:
        raise SigningError(f"signing settings {str(folder / SETTINGS_FILE)!r}: {key} must be "
                           "a file name")
    return folder / value


def _load_chain(path: Path) -> tuple[bytes, x509.Certificate]:
    """The PEM chain at ``path`` and its first certificate, checked to be able to sign."""
    try:
        pem = read_bytes(path, "certificate", 1_000_000)
        chain = x509.load_pem_x509_certificates(pem)
    except StudioError as exc:
        raise SigningError(str(exc)) from None
    except ValueError:
        raise SigningError(f"certificate {str(path)!r} is not PEM certificates") from None
    leaf, label = chain[0], f"certificate {str(path)!r}"
    _check_p256(leaf.public_key(), label)
    now = dt.datetime.now(dt.timezone.utc)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise SigningError(f"{label} is valid from {leaf.not_valid_before_utc:%Y-%m-%d} to "
                           f"{leaf.not_valid_after_utc:%Y-%m-%d}, not now")
    if _extension(leaf, x509.BasicConstraints, x509.BasicConstraints(False, None)).ca:
        raise SigningError(f"{label} starts with a CA certificate; put the signing (leaf) "
                           "certificate first, then its issuers")
    usage = _extension(leaf, x509.KeyUsage, None)
    if usage is None or not usage.digital_signature:
        raise SigningError(f"{label} lacks the digitalSignature key usage C2PA requires")
    if SIGNING_EKU not in _extension(leaf, x509.ExtendedKeyUsage, []):
        raise SigningError(f"{label} lacks the emailProtection extended key usage "
                           f"({SIGNING_EKU.dotted_string}) that c2pa requires")
    return pem, leaf


def _load_key(path: Path, leaf: x509.Certificate) -> bytes:
    """The private key at ``path`` as PKCS#8 PEM, checked to be P-256 and to match ``leaf``."""
    label = f"key {str(path)!r}"
    try:
        key = serialization.load_pem_private_key(read_bytes(path, "key", 100_000), None)
    except StudioError as exc:
        raise SigningError(str(exc)) from None
    except TypeError:
        raise SigningError(f"{label} is encrypted; give an unencrypted key, or sign with a "
                           "command (command: in signing.yaml)") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningError(f"{label} is not a PEM private key ({_first_line(exc)})") from None
    _check_p256(key.public_key(), label)
    if key.public_key().public_numbers() != leaf.public_key().public_numbers():
        raise SigningError(f"{label} does not match the certificate's public key")
    return _pkcs8(key)


def _load_command(folder: Path, command, where: str) -> tuple[str, ...]:
    if (not isinstance(command, list) or not command
            or not all(isinstance(part, str) and part for part in command)):
        raise SigningError(f"signing settings {where!r}: command must be a list of words, "
                           "e.g. [my-signer, --key-id, abc]")
    program = command[0]
    found = (folder / program).is_file() if os.sep in program else shutil.which(program)
    if not found:
        raise SigningError(f"signing settings {where!r}: signer command {program!r} is not "
                           "found (it runs in the signing folder)")
    return tuple(command)


def _command_signature(command, folder: Path, data: bytes, public_key) -> bytes:
    """Run the signer command on ``data`` and return its signature, once it verifies
    against the certificate's key (DER or raw r||s, both of which c2pa takes)."""
    label = f"signer command {' '.join(command)!r}"
    try:
        done = subprocess.run(command, input=data, capture_output=True, cwd=folder,
                              timeout=COMMAND_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise SigningError(f"{label} took over {COMMAND_TIMEOUT_S} s") from None
    except OSError as exc:
        raise SigningError(f"{label} cannot run: {exc.strerror or exc}") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise SigningError(f"{label} failed with exit code {done.returncode}"
                           + (f": {detail[-1]}" if detail else ""))
    signature = done.stdout
    der = (encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                int.from_bytes(signature[32:], "big"))
           if len(signature) == 64 else signature)
    try:
        public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise SigningError(f"{label} returned {len(signature)} bytes that are no ES256 "
                           "signature by the certificate's key") from None
    return signature


def _trust_anchors(pem: bytes) -> str:
    try:
        x509.load_pem_x509_certificates(pem)
        return pem.decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise StudioError("trust anchors are not PEM certificates") from None


def _check_p256(public_key, label: str) -> None:
    if not (isinstance(public_key, ec.EllipticCurvePublicKey)
            and isinstance(public_key.curve, ec.SECP256R1)):
        kind = (f"EC {public_key.curve.name}" if isinstance(public_key, ec.EllipticCurvePublicKey)
                else type(public_key).__name__.lstrip("_").replace("PublicKey", ""))
        raise SigningError(f"{label} holds an {kind} key; ES256 needs an EC P-256 "
                           "(secp256r1) key")


def _extension(certificate: x509.Certificate, kind, default):
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return default


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Creative Studio"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: x509.Name, issuer: x509.Name, public_key, now: dt.datetime,
                 days: int) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False))


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False,
               crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=key_cert_sign, crl_sign=crl_sign, encipher_only=False,
                         decipher_only=False)


def _pkcs8(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _studio_version() -> str:
    try:
        return metadata.version(CLAIM_GENERATOR)
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
