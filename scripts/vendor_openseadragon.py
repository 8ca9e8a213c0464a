"""Vendor OpenSeadragon into the viewer's static files, from the npm registry at a pinned version.

    python scripts/vendor_openseadragon.py          # fetch (with npm), check, write the files
    python scripts/vendor_openseadragon.py --check  # offline: the committed files are the pinned ones

The tarball is fetched by npm itself (``npm pack``, so the registry and proxy settings are npm's), then
its bytes are checked against the pinned ``dist.integrity`` (sha512, as ``npm view openseadragon@VERSION
dist.integrity`` prints it) before anything is extracted. Two files are copied out unmodified:
``build/openseadragon/openseadragon.min.js`` and ``LICENSE.txt``; their sha256 are pinned too, so
``--check`` (run by the test suite) proves the committed copies are the registry's. The navigation
button images are not vendored: the viewer draws its own controls (``showNavigationControl: false``).

To move to another version: change VERSION, set INTEGRITY to the registry's ``dist.integrity`` of it,
run with ``--update-hashes`` (prints the new file hashes to pin after the integrity check passed).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "openseadragon"
VERSION = "5.0.1"
#: npm's ``dist.integrity`` of openseadragon-5.0.1.tgz.
INTEGRITY = "sha512-a/hjouW9i3UfWxRADVYN2MyRhXMGnE7x9VVL7/4jXCcDLFyO4UM5o4RStYtqa5BfaHw/wMNAaD2WbxQF8f1pJg=="
#: File in the tarball -> (name in the package, its sha256).
FILES = {
    "package/build/openseadragon/openseadragon.min.js": (
        "openseadragon.min.js",
        "cd6e48562264cc518224380d745a620bcf7828235c232d94964e3c9d9e7bdb63",
    ),
    "package/LICENSE.txt": ("LICENSE.txt", "634a1392da774db80e9880d45d4182536c4543b6b965c3081f8f95c2e22bb1b1"),
}
DESTINATION = Path(__file__).resolve().parent.parent / "src" / "tierserve" / "viewer" / "static" / "vendor" / PACKAGE


def check_integrity(data: bytes, integrity: str = INTEGRITY) -> None:
    """Raises SystemExit unless `data` has the Subresource-Integrity style digest `integrity`."""
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise SystemExit(
            f"{PACKAGE}-{VERSION}.tgz: {algorithm} is {actual}, expected {expected}: not the pinned tarball"
        )


def fetch_tarball(directory: Path) -> bytes:
    """The package tarball, downloaded by ``npm pack`` into `directory`."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to fetch the tarball from the npm registry (apt-get install npm)")
    subprocess.run(
        [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(directory), "--silent"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return (directory / f"{PACKAGE}-{VERSION}.tgz").read_bytes()


def extract(tarball: Path, update_hashes: bool) -> dict[str, bytes]:
    """The pinned files of the (integrity-checked) tarball, their sha256 checked unless `update_hashes`."""
    contents: dict[str, bytes] = {}
    with tarfile.open(tarball) as archive:
        for member, (name, sha256) in FILES.items():
            handle = archive.extractfile(member)
            if handle is None:
                raise SystemExit(f"{member} is not a file in the tarball")
            data = handle.read()
            digest = hashlib.sha256(data).hexdigest()
            if update_hashes:
                print(f"{member}: {digest}")
            elif digest != sha256:
                raise SystemExit(f"{member}: sha256 {digest}, pinned {sha256}")
            contents[name] = data
    return contents


def check_committed(destination: Path = DESTINATION) -> list[str]:
    """The problems of the committed copies: missing files or files that are not the pinned ones."""
    problems = []
    for name, sha256 in FILES.values():
        path = destination / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            problems.append(f"{path} is not the pinned {PACKAGE} {VERSION} file (sha256 differs)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the committed files (offline)")
    parser.add_argument("--update-hashes", action="store_true", help="print the file hashes of a new VERSION")
    args = parser.parse_args(argv)
    if args.check:
        problems = check_committed()
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print(f"{PACKAGE} {VERSION}: the committed files are the pinned ones")
        return 1 if problems else 0
    with tempfile.TemporaryDirectory() as scratch:
        data = fetch_tarball(Path(scratch))
        check_integrity(data)
        contents = extract(Path(scratch) / f"{PACKAGE}-{VERSION}.tgz", args.update_hashes)
    if args.update_hashes:
        return 0
    DESTINATION.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (DESTINATION / name).write_bytes(data)
        print(f"wrote {DESTINATION / name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
