"""The npm package @voicemgmt/cnx is built (packages/cnx/build.py) from the cnx.js the product
serves: the script build is that file, the ES module its core, the version the product's. In a
browser: tests/browser/test_cnx_npm.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import voicemgmt
from tests.support import IN_CI
from voicemgmt.web.pages import STATIC_DIR

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "packages" / "cnx"


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PACKAGE / "package.json").read_text())
    return loaded


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    built = subprocess.run(
        [sys.executable, str(PACKAGE / "build.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert built.returncode == 0, built.stderr
    return tmp_path


def node() -> str:
    found = shutil.which("node")
    if found is None:
        if IN_CI:
            pytest.fail("node is missing — CI=true: the npm package must be tested")
        pytest.skip("node is missing (Debian package nodejs; make test installs it)")
    return found


def test_the_package_carries_the_products_version_and_licence() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    package = manifest()
    assert package["name"] == "@voicemgmt/cnx"
    assert package["version"] == project["version"] == voicemgmt.__version__
    assert package["license"] == project["license"] == "AGPL-3.0-or-later"


def test_every_file_the_manifest_names_is_built(dist: Path) -> None:
    package = manifest()
    named = {package["types"], package["module"], package["unpkg"]}
    for target in package["exports"].values():
        named.update([target] if isinstance(target, str) else target.values())
    named.discard("./package.json")
    assert {Path(name).parent for name in named} == {Path("dist")}
    assert {Path(name).name for name in named} == {path.name for path in dist.iterdir()}
    assert package["files"] == ["dist/"]
    assert package["sideEffects"] == ["./dist/cnx.js"]  # the ES module does nothing at import


def test_the_script_build_is_the_served_cnx_js_byte_for_byte(dist: Path) -> None:
    assert (dist / "cnx.js").read_bytes() == (STATIC_DIR / "cnx.js").read_bytes()
    assert (dist / "cnx.global.d.ts").read_bytes() == (STATIC_DIR / "cnx.d.ts").read_bytes()


def test_the_es_module_is_the_served_scripts_core(dist: Path) -> None:
    module = (dist / "cnx.mjs").read_text()
    served = (STATIC_DIR / "cnx.js").read_text()
    core = served.split("// <cnx-core>", 1)[1].split("\n", 1)[1].split("  // </cnx-core>")[0]
    body = module.split(" */\n", 1)[1]
    assert body == "".join(line[2:] if line.strip() else line for line in core.splitlines(True)) + (
        "\nexport { createCrm };\n"
    )
    assert "document.currentScript" not in body
    assert "window.crm" not in body


def test_importing_the_es_module_runs_nothing_and_bad_servers_are_refused(dist: Path) -> None:
    # Under node there is no DOM: an import that touched one would throw (server-side rendering).
    script = f"""
        const cnx = await import({json.dumps((dist / "cnx.mjs").as_uri())});
        const refused = [undefined, "", "vm.example.com", "ftp://vm.example.com"].map((server) => {{
          try {{ cnx.createCrm({{ server }}); return "made"; }}
          catch (error) {{ return error.name + ":" + error.code; }}
        }});
        console.log(JSON.stringify({{ exports: Object.keys(cnx), refused }}));
    """
    ran = subprocess.run(
        [node(), "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {
        "exports": ["createCrm"],
        "refused": ["CnxError:invalid_argument"] * 4,
    }


def test_the_module_types_export_what_the_served_declarations_declare(dist: Path) -> None:
    module = (dist / "cnx.d.ts").read_text()
    served = (STATIC_DIR / "cnx.d.ts").read_text()
    for name in ("VmStatus", "VmErrorCode", "VmIncomingCall", "VmEndedCall", "VmCrm"):
        kind = "type" if name in ("VmStatus", "VmErrorCode") else "interface"
        assert f"\n  {kind} {name} " in served
        assert f"\nexport {kind} {name} " in module
    assert "export declare function createCrm(options: VmCrmOptions): VmCrm;" in module
    assert "declare global" not in module
