#!/usr/bin/env python3
"""Build deployable Lambda zips for the example functions and extensions.

For every installed Rust target that Lambda runs (x86_64, and aarch64 when its target is
installed) this writes, under lambda/<target>/ in cargo's target directory:
  <function>.zip        `bootstrap` at the root, executable  -> a provided.* function
  layer-<extension>.zip `extensions/<extension>`, executable -> a layer (/opt/extensions)

Before zipping, each binary's highest required glibc symbol version is read from its ELF
version-needs table and compared with the chosen runtime's glibc (provided.al2023: 2.34,
provided.al2: 2.26). A binary that needs more would fail at init with a loader error, so it
is refused with the reason and the fix.
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import zipfile

RUNTIME_GLIBC = {"provided.al2023": (2, 34), "provided.al2": (2, 26)}
FUNCTIONS = ["hello", "order", "internal-extension", "graceful", "stream", "function-url", "anyhow-errors"]
EXTENSIONS = ["telemetry-summary"]
LAMBDA_TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
SHT_GNU_VERNEED = 0x6FFFFFFE
# A fixed timestamp keeps the zips reproducible.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def required_glibc(path):
    """The highest GLIBC_x.y[.z] version the ELF file at `path` needs, or None."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        raise ValueError(f"{path} is not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise ValueError(f"{path} is not a little-endian 64-bit ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(shnum):
        off = shoff + i * shentsize
        _name, sh_type, _flags, _addr, sh_offset, sh_size, sh_link, sh_info = struct.unpack_from(
            "<IIQQQQII", data, off
        )
        sections.append((sh_type, sh_offset, sh_size, sh_link, sh_info))
    best = None
    for sh_type, sh_offset, _size, sh_link, sh_info in sections:
        if sh_type != SHT_GNU_VERNEED:
            continue
        strtab = sections[sh_link][1]
        entry = sh_offset
        for _ in range(sh_info):
            _version, cnt, _file, aux, nxt = struct.unpack_from("<HHIII", data, entry)
            aux_off = entry + aux
            for _ in range(cnt):
                _hash, _flags, _other, name, aux_next = struct.unpack_from("<IHHII", data, aux_off)
                end = data.index(b"\0", strtab + name)
                text = data[strtab + name:end].decode("ascii", "replace")
                version = parse_glibc(text)
                if version and (best is None or version > best):
                    best = version
                aux_off += aux_next
            entry += nxt
            if nxt == 0:
                break
    return best


def parse_glibc(text):
    """`GLIBC_2.34` -> (2, 34); anything else -> None."""
    if not text.startswith("GLIBC_"):
        return None
    parts = text[len("GLIBC_"):].split(".")
    if not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def verdict(name, required, runtime):
    """None when a binary needing `required` runs on `runtime`, else the refusal text."""
    have = RUNTIME_GLIBC[runtime]
    if required is None or required <= have:
        return None
    need = ".".join(map(str, required))
    ok = ".".join(map(str, have))
    return (
        f"{name} needs glibc {need} but {runtime} has glibc {ok}: it would fail at init "
        f"with 'version GLIBC_{need} not found'.\n"
        f"  fix: package for provided.al2023 (--runtime provided.al2023), or build against an "
        f"older glibc (e.g. `cargo zigbuild --target <target>.{ok}`), or build a static binary "
        f"for the musl target."
    )


def write_zip(zip_path, arcname, binary):
    """A zip holding `binary` as `arcname`, mode 0755, so Lambda can execute it."""
    os.makedirs(os.path.dirname(zip_path), exist_ok=True)
    info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
    info.create_system = 3  # Unix, so the mode below is honoured
    info.external_attr = (0o100755 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(binary, "rb") as f:
        payload = f.read()
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr(info, payload)


def target_directory():
    """Where cargo builds: CARGO_TARGET_DIR or the workspace's target/, as cargo says."""
    try:
        out = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps"],
            capture_output=True, text=True, check=True,
        ).stdout
        return json.loads(out)["target_directory"]
    except (OSError, subprocess.CalledProcessError, ValueError, KeyError):
        return os.environ.get("CARGO_TARGET_DIR", "target")


def installed_targets():
    try:
        out = subprocess.run(
            ["rustup", "target", "list", "--installed"], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        out = ["x86_64-unknown-linux-gnu"]
    return [t for t in LAMBDA_TARGETS if t in out]


def package(bin_dir, out_dir, runtime):
    """Zips every function and extension found in `bin_dir`; returns (written, refusals)."""
    written, refusals = [], []
    for name, is_extension in [(f, False) for f in FUNCTIONS] + [(e, True) for e in EXTENSIONS]:
        binary = os.path.join(bin_dir, name)
        if not os.path.isfile(binary):
            refusals.append(f"{binary} was not built")
            continue
        problem = verdict(name, required_glibc(binary), runtime)
        if problem:
            refusals.append(problem)
            continue
        if is_extension:
            zip_path = os.path.join(out_dir, f"layer-{name}.zip")
            write_zip(zip_path, f"extensions/{name}", binary)
        else:
            zip_path = os.path.join(out_dir, f"{name}.zip")
            write_zip(zip_path, "bootstrap", binary)
        written.append(zip_path)
    return written, refusals


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime", choices=sorted(RUNTIME_GLIBC), default="provided.al2023")
    p.add_argument("--profile", default="release", help="cargo profile to build (default release)")
    p.add_argument("--out", help="where the zips go (default: lambda/ in cargo's target directory)")
    p.add_argument("--bin-dir", help="package already-built binaries from this directory instead of building")
    args = p.parse_args(argv)
    target_dir = target_directory()
    if args.out is None:
        args.out = os.path.join(target_dir, "lambda")

    jobs = []
    if args.bin_dir:
        jobs.append((args.bin_dir, args.out))
    else:
        for target in installed_targets():
            cmd = ["cargo", "build", "--profile", args.profile, "--target", target, "-p", "ironlambda-examples", "--bins"]
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
            profile_dir = "debug" if args.profile == "dev" else args.profile
            jobs.append((os.path.join(target_dir, target, profile_dir), os.path.join(args.out, target)))

    failed = False
    for bin_dir, out_dir in jobs:
        written, refusals = package(bin_dir, out_dir, args.runtime)
        for path in written:
            print(f"{path}  ({os.path.getsize(path) // 1024} KiB)")
        for r in refusals:
            print(f"refused: {r}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
