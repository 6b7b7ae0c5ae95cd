#!/usr/bin/env python3
"""Build the npm package @voicemgmt/cnx from the cnx.js the product serves: one source.

The served files (src/voicemgmt/web/static/cnx.js and cnx.d.ts) are the source, edited by hand
and served as they are (no node at run time). This writes ``dist/``:

    cnx.js          the served script, byte for byte: the <script> build (window.crm)
    cnx.mjs         the script's part between its cnx-core marks, as an ES module exporting
                    createCrm; nothing runs at import
    cnx.d.ts        the types between the cnx-types marks of the served cnx.d.ts, exported,
                    and createCrm's
    cnx.global.d.ts the served cnx.d.ts: the global ``crm`` of the <script> build

The package's version must be the product's (pyproject.toml): the build fails otherwise.
``npm run build`` and ``npm pack`` run it (``prepack``); Python 3.11+, nothing else.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
STATIC = ROOT / "src" / "voicemgmt" / "web" / "static"

MODULE_HEADER = """\
/*! {name} {version} — Voice Management's cnx.js as an ES module. AGPL-3.0-or-later.
 *
 *   import {{ createCrm }} from "{name}";
 *   const crm = createCrm({{ server: "https://vm.example.com" }});
 *   crm.set_notif_in((call) => openCustomerFile(call.caller_id_num));
 *   crm.login(token).catch((error) => console.error(error.code, error.message));
 *
 * Made from the server's /cnx.js (its cnx-core part), where the crm object is described.
 */
"""

TYPES_HEADER = """\
// {name} {version}: types of the ES module (the guide's crm object, §4, and createCrm).
// Made from the server's /cnx.d.ts (its cnx-types part).

"""

TYPES_TAIL = """
/** What createCrm needs: where the banner is served from, and optionally how long to wait. */
export interface VmCrmOptions {
  /** The Voice Management server, e.g. "https://vm.example.com" (only its origin is used). */
  server: string;
  /** How long commands wait for the banner to say it is ready, in ms (default 15000). */
  readyTimeout?: number;
  /** How long a command waits for the banner's answer, in ms (default 15000). */
  commandTimeout?: number;
  /** The banner's iframe; otherwise found by its address or a data-vm-banner attribute. */
  banner?: HTMLIFrameElement;
}

/**
 * The guide's `crm` object (§4), bound to the banner served by `options.server`; it listens
 * from the call on. Make one per page. Throws a VmError (code invalid_argument) when `server`
 * is not an http(s) address.
 */
export declare function createCrm(options: VmCrmOptions): VmCrm;
"""


class BuildError(Exception):
    """The sources are not what the build expects; the message says what to fix."""


def between(text: str, start: str, end: str, source: Path) -> str:
    """The whole lines strictly between the line holding ``start`` and the one holding ``end``."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if start in line]
    ends = [i for i, line in enumerate(lines) if end in line]
    if len(starts) != 1 or len(ends) != 1 or ends[0] <= starts[0]:
        raise BuildError(f"{source}: needs one {start} line, then one {end} line")
    return "".join(lines[starts[0] + 1 : ends[0]])


def dedent(block: str, source: Path) -> str:
    out = []
    for line in block.splitlines(keepends=True):
        if line.strip() and not line.startswith("  "):
            raise BuildError(f"{source}: a marked line is not indented by two spaces: {line!r}")
        out.append(line[2:] if line.strip() else line)
    return "".join(out)


def product_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        version: str = tomllib.load(file)["project"]["version"]
    return version


def es_module(script: str, name: str, version: str) -> str:
    source = STATIC / "cnx.js"
    core = dedent(between(script, "// <cnx-core>", "// </cnx-core>", source), source)
    if "document.currentScript" in core or "window.crm" in core:
        raise BuildError(f"{source}: cnx-core must not read its <script> or set window.crm")
    return MODULE_HEADER.format(name=name, version=version) + core + "\nexport { createCrm };\n"


def module_types(declarations: str, name: str, version: str) -> str:
    source = STATIC / "cnx.d.ts"
    block = dedent(between(declarations, "// <cnx-types>", "// </cnx-types>", source), source)
    exported = re.sub(r"^(type|interface) ", r"export \1 ", block, flags=re.MULTILINE)
    return TYPES_HEADER.format(name=name, version=version) + exported + TYPES_TAIL


def build(out: Path) -> list[Path]:
    """Write the package's files into ``out`` (its dist/ folder); the paths written."""
    package = json.loads((HERE / "package.json").read_text(encoding="utf-8"))
    name, version = package["name"], package["version"]
    if version != product_version():
        raise BuildError(
            f"package.json has version {version}, the product (pyproject.toml) "
            f"{product_version()}: the package's version is the product's"
        )
    script = (STATIC / "cnx.js").read_text(encoding="utf-8")
    declarations = (STATIC / "cnx.d.ts").read_text(encoding="utf-8")
    files = {
        "cnx.js": script,
        "cnx.mjs": es_module(script, name, version),
        "cnx.d.ts": module_types(declarations, name, version),
        "cnx.global.d.ts": declarations,
    }
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, text in files.items():
        path = out / filename
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "dist", help="default: dist/")
    args = parser.parse_args(argv)
    try:
        written = build(args.out)
    except BuildError as error:
        print(f"build.py: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
