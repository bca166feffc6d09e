"""Content credentials: a real creative signed with C2PA verifies as trusted with the
development CA and valid without it; a changed pixel, a manifest from another file and a
re-encoded (stripped) file are each caught; a remote signer command signs as well as a key
file; every bad signing folder and bad input fails with one clear error, nothing written."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image
from typer.testing import CliRunner

from pipelines import load_product
from studio.cli import app
from studio.creatives.credentials import (
    CLAIM_GENERATOR,
    DIGITAL_SOURCE_TYPE,
    GENERATED_SOURCE_TYPE,
    KEY_FOLDER_FILES,
    Signing,
    SigningError,
    init_keys,
    verify,
)
from studio.creatives.render import RenderOptions, finish, prepare, render
from studio.errors import StudioError

runner = CliRunner()
PRODUCT = "assets/products/sneaker.png"
REPO_CATALOG = Path(__file__).resolve().parents[1] / "assets" / "demo" / "catalog.csv"
RENDER = {"engine": "backdrop", "model_id": None, "prompt": "on a marble table", "seed": 1}

#: A signer command: signs stdin with the key file named by argv[1] (DER, or raw r||s
#: with --raw) — what an HSM or KMS client would do.
SIGNER_SCRIPT = """\
import sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
key = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
der = key.sign(sys.stdin.buffer.read(), ec.ECDSA(hashes.SHA256()))
if "--raw" in sys.argv:
    r, s = decode_dss_signature(der)
    der = r.to_bytes(32, "big") + s.to_bytes(32, "big")
sys.stdout.buffer.write(der)
"""


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return Path(init_keys(tmp_path_factory.mktemp("signing") / "keys")["folder"])


@pytest.fixture(scope="module")
def creatives():
    """Two real published creatives (backdrop engine, 256 px): their PNG bytes and the
    product's hash."""
    from pipelines.engines import load_engine

    engine = load_engine("backdrop")[0]
    product = load_product(PRODUCT)
    pngs = []
    for seed in (1, 2):
        options = RenderOptions(prompt=RENDER["prompt"], size="256", seed=seed)
        placed = prepare(product, options)
        pngs.append(finish(render(placed, options, engine)[0], placed, product, options,
                           engine).png)
    return pngs, product.sha256


def _sign(signing, png, sha256, source_type=DIGITAL_SOURCE_TYPE):
    return signing.sign_png(png, title="creative.png", source_type=source_type,
                            product_sha256=sha256, assertions=RENDER)


def _anchors(keys):
    return (keys / "ca.pem").read_bytes()


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """A PNG's chunks as (type, data)."""
    chunks, at = [], 8
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        chunks.append((kind, png[at + 8:at + 8 + length]))
        at += 12 + length
    return chunks


def _assemble(chunks) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        for kind, data in chunks)


def test_signed_creative_is_trusted_with_the_ca_and_valid_without(keys, creatives):
    pngs, sha256 = creatives
    signing = Signing.load(keys)
    signed = _sign(signing, pngs[0], sha256)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(signed))),
                          np.asarray(Image.open(io.BytesIO(pngs[0]))))  # same pixels
    assert any(kind == b"caBX" for kind, _ in _chunks(signed))
    trusted = verify(signed, trust_anchors=_anchors(keys), name="a.png")
    assert trusted["file"] == "a.png" and trusted["state"] == "trusted", trusted
    assert trusted["reasons"] == []
    assert trusted["claim_generator"].startswith(f"{CLAIM_GENERATOR}/")
    assert trusted["actions"] == ["c2pa.created", "c2pa.edited"]
    assert trusted["digital_source_type"] == DIGITAL_SOURCE_TYPE
    assert trusted["ingredients"] == [{"title": "product", "relationship": "componentOf",
                                       "instance_id": f"sha256:{sha256}"}]
    assert trusted["render"] == RENDER
    assert trusted["signer"]["common_name"] == "Creative Studio development signer"
    untrusted = verify(signed)
    assert untrusted["state"] == "valid" and untrusted["reasons"] == [
        "signingCredential.untrusted"]
    described = signing.describe()
    assert described["algorithm"] == "es256" and described["signer"] == "key"
    assert "development signer" in described["subject"] and "development CA" in described[
        "issuer"]
    assert "PRIVATE" not in json.dumps(described) and "PRIVATE" not in repr(signing)


def test_generated_source_type_and_no_ingredient(keys, creatives):
    signed = Signing.load(keys).sign_png(creatives[0][0], title="x.png",
                                         source_type=GENERATED_SOURCE_TYPE,
                                         product_sha256=None, assertions={})
    report = verify(signed)
    assert report["digital_source_type"] == GENERATED_SOURCE_TYPE
    assert report["ingredients"] == [] and report["render"] == {}


def test_tampered_pixel_is_invalid(keys, creatives):
    pngs, sha256 = creatives
    signed = _sign(Signing.load(keys), pngs[0], sha256)
    pixels = np.array(Image.open(io.BytesIO(signed)))
    pixels[0, 0, 0] ^= 1
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    new_idat = [chunk for chunk in _chunks(buffer.getvalue()) if chunk[0] == b"IDAT"]
    chunks = _chunks(signed)
    first = next(i for i, (kind, _) in enumerate(chunks) if kind == b"IDAT")
    kept = [chunk for chunk in chunks if chunk[0] != b"IDAT"]
    tampered = _assemble(kept[:first] + new_idat + kept[first:])
    assert any(kind == b"caBX" for kind, _ in _chunks(tampered))
    report = verify(tampered, trust_anchors=_anchors(keys))
    assert report["state"] == "invalid" and "assertion.dataHash.mismatch" in report["reasons"]


def test_manifest_swapped_from_another_file_is_invalid(keys, creatives):
    pngs, sha256 = creatives
    signing = Signing.load(keys)
    first, second = (_sign(signing, png, sha256) for png in pngs)
    manifest = next(chunk for chunk in _chunks(first) if chunk[0] == b"caBX")
    swapped = _assemble([manifest if kind == b"caBX" else (kind, data)
                         for kind, data in _chunks(second)])
    assert swapped != second
    report = verify(swapped, trust_anchors=_anchors(keys))
    assert report["state"] == "invalid" and "assertion.dataHash.mismatch" in report["reasons"]


def test_reencoded_file_is_unsigned(keys, creatives):
    signed = _sign(Signing.load(keys), creatives[0][0], creatives[1])
    buffer = io.BytesIO()
    Image.open(io.BytesIO(signed)).save(buffer, format="PNG")
    report = verify(buffer.getvalue(), trust_anchors=_anchors(keys))
    assert report["state"] == "unsigned" and report["reasons"] == ["no C2PA manifest"]
    assert verify(creatives[0][0])["state"] == "unsigned"


def test_damaged_manifest_is_invalid(keys, creatives):
    signed = _sign(Signing.load(keys), creatives[0][0], creatives[1])
    chunks = [(kind, data[:40] + bytes(20) + data[60:]) if kind == b"caBX" else (kind, data)
              for kind, data in _chunks(signed)]
    report = verify(_assemble(chunks))
    assert report["state"] == "invalid" and report["reasons"]


def _command_folder(keys, tmp_path, *extra):
    folder = tmp_path / "remote"
    folder.mkdir()
    shutil.copy(keys / "leaf-chain.pem", folder)
    (folder / "sign.py").write_text(SIGNER_SCRIPT)
    command = [sys.executable, "sign.py", str(keys / "leaf.key"), *extra]
    (folder / "signing.yaml").write_text(
        json.dumps({"certificate": "leaf-chain.pem", "command": command}))
    return folder


@pytest.mark.parametrize("form", ["der", "raw"])
def test_remote_signer_command_signs(keys, creatives, tmp_path, form):
    folder = _command_folder(keys, tmp_path, *(["--raw"] if form == "raw" else []))
    signing = Signing.load(folder)
    assert signing.key_pem is None and signing.describe()["signer"] == "command"
    signed = _sign(signing, creatives[0][0], creatives[1])
    assert verify(signed, trust_anchors=_anchors(keys))["state"] == "trusted"
    assert verify(signed)["state"] == "valid"


def test_remote_signer_failures_are_clear(keys, creatives, tmp_path):
    other = tmp_path / "other.key"
    other.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    folder = _command_folder(keys, tmp_path)
    (folder / "signing.yaml").write_text(json.dumps(
        {"certificate": "leaf-chain.pem", "command": [sys.executable, "sign.py", str(other)]}))
    with pytest.raises(SigningError, match="no ES256 signature by the certificate's key"):
        _sign(Signing.load(folder), creatives[0][0], creatives[1])
    (folder / "signing.yaml").write_text(json.dumps(
        {"certificate": "leaf-chain.pem",
         "command": [sys.executable, "-c", "import sys; sys.exit('HSM offline')"]}))
    with pytest.raises(SigningError, match="failed with exit code 1: HSM offline"):
        _sign(Signing.load(folder), creatives[0][0], creatives[1])


def _certificate(key, *, issuer_key=None, ca=False, usage=True, eku=True, days=30):
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=60))
               .not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if usage:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM)


def _key_pem(key, password=None):
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


def _write_pair(folder, key, certificate):
    (folder / "leaf.key").write_bytes(_key_pem(key))
    (folder / "leaf-chain.pem").write_bytes(certificate)


def _bad_folder(case, folder):
    """Make ``folder`` (a copy of the development keys) bad in the way ``case`` names."""
    settings = folder / "signing.yaml"
    if case == "missing folder":
        shutil.rmtree(folder)
    elif case == "folder is a file":
        shutil.rmtree(folder)
        folder.write_text("x")
    elif case == "no settings":
        settings.unlink()
    elif case == "settings not YAML":
        settings.write_text("certificate: [unclosed\n")
    elif case == "settings a list":
        settings.write_text("- leaf-chain.pem\n")
    elif case == "unknown setting":
        settings.write_text("certificate: leaf-chain.pem\nkey: leaf.key\npassword: x\n")
    elif case == "no certificate":
        settings.write_text("key: leaf.key\n")
    elif case == "key and command":
        settings.write_text("certificate: leaf-chain.pem\nkey: leaf.key\ncommand: [ls]\n")
    elif case == "neither key nor command":
        settings.write_text("certificate: leaf-chain.pem\n")
    elif case == "certificate not a name":
        settings.write_text("certificate: 3\nkey: leaf.key\n")
    elif case == "certificate missing":
        (folder / "leaf-chain.pem").unlink()
    elif case == "certificate not PEM":
        (folder / "leaf-chain.pem").write_text("not a certificate")
    elif case == "key missing":
        (folder / "leaf.key").unlink()
    elif case == "key not PEM":
        (folder / "leaf.key").write_text("not a key")
    elif case == "key encrypted":
        key = serialization.load_pem_private_key((folder / "leaf.key").read_bytes(), None)
        (folder / "leaf.key").write_bytes(_key_pem(key, b"secret"))
    elif case == "key of another certificate":
        (folder / "leaf.key").write_bytes(_key_pem(ec.generate_private_key(ec.SECP256R1())))
    elif case == "RSA key":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_pair(folder, key, _certificate(key))
    elif case == "P-384 key":
        key = ec.generate_private_key(ec.SECP384R1())
        _write_pair(folder, key, _certificate(key))
    elif case == "CA first":
        settings.write_text("certificate: ca.pem\nkey: ca.key\n")
    elif case == "no digitalSignature":
        key = ec.generate_private_key(ec.SECP256R1())
        _write_pair(folder, key, _certificate(key, usage=False))
    elif case == "no EKU":
        key = ec.generate_private_key(ec.SECP256R1())
        _write_pair(folder, key, _certificate(key, eku=False))
    elif case == "expired":
        key = ec.generate_private_key(ec.SECP256R1())
        _write_pair(folder, key, _certificate(key, days=-1))
    elif case == "command not a list":
        settings.write_text("certificate: leaf-chain.pem\ncommand: my-signer --key x\n")
    elif case == "command not found":
        settings.write_text("certificate: leaf-chain.pem\ncommand: [no-such-signer-xyz]\n")
    else:
        raise AssertionError(case)


BAD_FOLDERS = {
    "missing folder": "does not exist",
    "folder is a file": "is not a folder",
    "no settings": "signing settings .* does not exist",
    "settings not YAML": "is not valid YAML",
    "settings a list": "must be a mapping",
    "unknown setting": "unknown key.*password",
    "no certificate": "name no certificate",
    "key and command": "exactly one of key",
    "neither key nor command": "exactly one of key",
    "certificate not a name": "certificate must be a file name",
    "certificate missing": "certificate .*leaf-chain.pem' does not exist",
    "certificate not PEM": "is not PEM certificates",
    "key missing": "key .*leaf.key' does not exist",
    "key not PEM": "is not a PEM private key",
    "key encrypted": "is encrypted",
    "key of another certificate": "does not match the certificate",
    "RSA key": "holds an RSA key; ES256 needs an EC P-256",
    "P-384 key": "holds an EC secp384r1 key; ES256 needs an EC P-256",
    "CA first": "starts with a CA certificate",
    "no digitalSignature": "lacks the digitalSignature key usage",
    "no EKU": "lacks the emailProtection extended key usage",
    "expired": "not now",
    "command not a list": "command must be a list of words",
    "command not found": "'no-such-signer-xyz' is not found",
}


@pytest.mark.parametrize("case", sorted(BAD_FOLDERS))
def test_bad_signing_folder_is_a_clear_error(keys, tmp_path, case):
    folder = tmp_path / "signing"
    shutil.copytree(keys, folder)
    _bad_folder(case, folder)
    with pytest.raises(SigningError, match=BAD_FOLDERS[case]) as raised:
        Signing.load(folder)
    assert "\n" not in str(raised.value)


def test_from_environment(keys, monkeypatch):
    monkeypatch.delenv("STUDIO_SIGNING", raising=False)
    assert Signing.from_environment() is None
    monkeypatch.setenv("STUDIO_SIGNING", "")
    assert Signing.from_environment() is None
    monkeypatch.setenv("STUDIO_SIGNING", str(keys))
    assert Signing.from_environment() == Signing.load(keys)
    monkeypatch.setenv("STUDIO_SIGNING", f"{keys}-missing")
    with pytest.raises(SigningError, match="does not exist"):
        Signing.from_environment()


@pytest.mark.parametrize("change, message", [
    ({"png": b"GIF89a"}, "needs PNG bytes"),
    ({"source_type": "generated"}, "not an IPTC digital source type"),
    ({"product_sha256": "abc"}, "not 64 hex digits"),
    ({"assertions": {"seed": object()}}, "render assertions are not JSON"),
    ({"assertions": {"score": float("nan")}}, "render assertions are not JSON"),
])
def test_bad_sign_input_is_a_clear_error(keys, creatives, change, message):
    arguments = {"png": creatives[0][0], "title": "x.png", "source_type": DIGITAL_SOURCE_TYPE,
                 "product_sha256": creatives[1], "assertions": RENDER, **change}
    png = arguments.pop("png")
    with pytest.raises(SigningError, match=message):
        Signing.load(keys).sign_png(png, **arguments)


def test_bad_verify_input_is_a_clear_error(tmp_path, creatives):
    with pytest.raises(StudioError, match="is not an image c2pa can read"):
        verify(b"hello, this is text", name="notes.txt")
    with pytest.raises(StudioError, match="trust anchors are not PEM certificates"):
        verify(creatives[0][0], trust_anchors=b"not a certificate")
    with pytest.raises(StudioError, match="does not exist"):
        verify(tmp_path / "missing.png")


def test_init_keys_writes_development_keys_and_refuses_twice(tmp_path):
    folder = tmp_path / "keys"
    made = init_keys(folder)
    assert made["development"] and sorted(made["files"]) == sorted(KEY_FOLDER_FILES)
    assert sorted(p.name for p in folder.iterdir()) == sorted(KEY_FOLDER_FILES)
    for name in ("ca.key", "leaf.key"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600
    assert (folder / "ca.pem").stat().st_mode & 0o777 == 0o644
    assert ("development only: production uses a remote or subprocess signer (command:)"
            in (folder / "README.txt").read_text())
    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key().curve, ec.SECP256R1)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(SigningError, match="already holds ca.pem.*nothing was written"):
        init_keys(folder)
    (folder / "leaf.key").unlink()
    with pytest.raises(SigningError, match="already holds"):  # any one of them is enough
        init_keys(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {
        name: data for name, data in before.items() if name != "leaf.key"}
    (tmp_path / "file").write_text("x")
    with pytest.raises(StudioError, match="is a file"):
        init_keys(tmp_path / "file")


def test_keys_init_command(tmp_path):
    folder = tmp_path / "keys"
    result = runner.invoke(app, ["keys", "init", str(folder)])
    assert result.exit_code == 0, result.output
    assert "development only" in result.stdout and f"wrote {folder / 'leaf.key'}" in result.stdout
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    again = runner.invoke(app, ["keys", "init", str(folder)])
    assert again.exit_code == 2
    assert again.stderr.strip().splitlines() == [
        f"error: keys folder {str(folder)!r} already holds {', '.join(KEY_FOLDER_FILES)}; "
        "nothing was written (choose an empty folder)"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_verify_command_exit_codes_and_json_lines(keys, creatives, tmp_path):
    signing = Signing.load(keys)
    good = [tmp_path / "a.png", tmp_path / "b.png"]
    for path, png in zip(good, creatives[0]):
        path.write_bytes(_sign(signing, png, creatives[1]))
    unsigned = tmp_path / "unsigned.png"
    unsigned.write_bytes(creatives[0][0])
    environment = {"STUDIO_SIGNING": ""}

    result = runner.invoke(app, ["verify", *map(str, good), "--trust",
                                 str(keys / "ca.pem")], env=environment)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["file"], line["state"]) for line in lines] == [
        (str(path), "trusted") for path in good]
    assert lines[0]["render"] == RENDER

    # The default trust anchors: $STUDIO_SIGNING/ca.pem.
    result = runner.invoke(app, ["verify", str(good[0])], env={"STUDIO_SIGNING": str(keys)})
    assert result.exit_code == 0 and json.loads(result.stdout)["state"] == "trusted"
    result = runner.invoke(app, ["verify", str(good[0])], env=environment)
    assert result.exit_code == 0 and json.loads(result.stdout)["state"] == "valid"

    result = runner.invoke(app, ["verify", str(good[0]), str(unsigned)], env=environment)
    assert result.exit_code == 1
    assert [json.loads(line)["state"] for line in result.stdout.splitlines()] == [
        "valid", "unsigned"]

    missing = tmp_path / "missing.png"
    result = runner.invoke(app, ["verify", str(good[0]), str(missing)], env=environment)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"error: no such file: {missing}"]
    result = runner.invoke(app, ["verify", str(good[0]), "--trust", str(missing)],
                           env=environment)
    assert result.exit_code == 2 and "trust anchors" in result.stderr
    assert result.stderr.startswith("error: ")


def test_private_keys_stay_private_when_the_umask_is_open(tmp_path):
    previous = os.umask(0)
    try:
        init_keys(tmp_path / "keys")
    finally:
        os.umask(previous)
    assert (tmp_path / "keys" / "leaf.key").stat().st_mode & 0o777 == 0o600


def _render_cli(out: Path, *extra: str, env: dict | None = None):
    return runner.invoke(app, ["render", PRODUCT, "--prompt", "on a marble table", "--engine",
                               "backdrop", "--size", "256", "--out", str(out), *extra],
                         env=env)


def test_render_with_signing_publishes_a_trusted_disclosed_file(keys, tmp_path):
    """`studio render --signing DIR`: the published file carries the AI disclosure (XMP)
    inside C2PA credentials that verify as trusted; its manifest says who signed."""
    from pipelines.disclosure import COMPOSITE, read_disclosure

    out = tmp_path / "out"
    result = _render_cli(out, "--signing", str(keys))
    assert result.exit_code == 0, result.output
    manifest = json.loads(next(out.glob("*.json")).read_text())
    data = (out / manifest["image"]).read_bytes()
    report = verify(data, trust_anchors=_anchors(keys), name=manifest["image"])
    assert report["state"] == "trusted", report
    assert report["digital_source_type"] == DIGITAL_SOURCE_TYPE
    assert read_disclosure(data)["source_type"] == COMPOSITE
    assert manifest["credentials"]["format"] == "c2pa"
    assert manifest["credentials"]["signer"] == "key"
    assert manifest["disclosure"]["source_type"] == COMPOSITE
    assert "PRIVATE" not in json.dumps(manifest)
    # STUDIO_SIGNING does the same without the option.
    again = _render_cli(tmp_path / "env", "--seed", "3", env={"STUDIO_SIGNING": str(keys)})
    assert again.exit_code == 0, again.output
    signed = next((tmp_path / "env").glob("*.json"))
    image = tmp_path / "env" / json.loads(signed.read_text())["image"]
    assert verify(image.read_bytes(), trust_anchors=_anchors(keys))["state"] == "trusted"


def test_unsigned_render_is_disclosed_and_verifies_as_unsigned(tmp_path):
    from pipelines.disclosure import read_disclosure

    out = tmp_path / "out"
    assert _render_cli(out, env={"STUDIO_SIGNING": ""}).exit_code == 0
    manifest = json.loads(next(out.glob("*.json")).read_text())
    data = (out / manifest["image"]).read_bytes()
    assert manifest["credentials"] is None and read_disclosure(data) is not None
    assert verify(data)["state"] == "unsigned"


def test_no_key_configured_is_a_clear_error_and_nothing_is_written(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    result = _render_cli(out, "--signing", str(empty))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "signing.yaml" in lines[0]
    assert not out.exists()


def test_a_signer_that_fails_at_publish_time_leaves_nothing_half_written(keys, tmp_path):
    folder = _command_folder(keys, tmp_path)
    (folder / "sign.py").write_text("import sys\nsys.stderr.write('HSM offline\\n')\n"
                                    "sys.exit(3)\n")
    out = tmp_path / "out"
    result = _render_cli(out, "--signing", str(folder))
    assert result.exit_code == 2, result.output
    assert "HSM offline" in result.stderr and result.stderr.strip().startswith("error: ")
    assert not out.exists() or not any(out.iterdir())


def test_batch_with_signing_and_the_api_serves_trusted_files(keys, tmp_path):
    """`studio batch --signing DIR`: every creative in the store is signed; what
    `/v1/select` chooses, `/v1/creatives/<id>` serves as a file that verifies as trusted."""
    from fastapi.testclient import TestClient

    from conftest import REPO
    from studio.inputs.audience import Audience
    from studio.inputs.tables import load_users
    from studio.learning.batch import BatchSettings, run_batch
    from studio.serving.api import create_app
    from studio.store import Store

    catalog = tmp_path / "catalog.csv"
    catalog.write_text("product_id,image,category,title\n"
                       f"mug,{REPO / 'assets/products/mug.png'},kitchenware,blue enamel mug\n")
    clusters = tmp_path / "clusters.json"
    Audience(2).fit(load_users(REPO / "assets" / "demo" / "users.csv")).save(clusters)
    settings = BatchSettings(per_cluster=1, size="128", engine="backdrop", signing=str(keys))
    run_batch(catalog, clusters, tmp_path / "s", settings, echo=lambda m: None)
    store = Store(tmp_path / "s")
    for creative in store.creatives():
        data = store.file_path(creative["image_sha256"]).read_bytes()
        assert verify(data, trust_anchors=_anchors(keys))["state"] == "trusted"
        assert creative["manifest"]["credentials"]["format"] == "c2pa"
    with TestClient(create_app(tmp_path / "s", api_key="k")) as client:
        chosen = client.post("/v1/select", json={"product_id": "mug", "cluster_id": 0},
                             headers={"Authorization": "Bearer k"})
        assert chosen.status_code == 200, chosen.text
        served = client.get(f"/v1/creatives/{chosen.json()['creative_id']}")
        assert served.status_code == 200
    assert verify(served.content, trust_anchors=_anchors(keys))["state"] == "trusted"


def test_batch_refuses_a_signing_folder_without_keys_before_rendering(tmp_path):
    from studio.learning.batch import BatchSettings, run_batch

    with pytest.raises(SigningError, match="signing.yaml"):
        run_batch(REPO_CATALOG, tmp_path / "none.json", tmp_path / "s",
                  BatchSettings(signing=str(tmp_path)), echo=lambda m: None)
    assert not (tmp_path / "s").exists()
