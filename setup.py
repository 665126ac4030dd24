"""Build glue that pyproject.toml cannot express: the folder mapping and the C check.

`protocol/` is installed as `raftlog.protocol` so that no bare top-level package named
`protocol` lands in site-packages. The C hot path in `native/` is compiled by cffi in
out-of-line API mode; a machine without a compiler or Python headers gets one clear
error here instead of a page of compiler noise.
"""

import os
import shlex
import shutil
import sys
import sysconfig

from setuptools import find_packages, setup


def _require_c_toolchain() -> None:
    compiler_command = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    compiler = shlex.split(compiler_command)[0]
    if shutil.which(compiler) is None:
        sys.exit(
            f"raftlog: no C compiler found (looked for {compiler!r}). raftlog's hot path is C "
            "built at install time: install gcc (Debian/Ubuntu: apt-get install gcc python3-dev) "
            "and retry."
        )
    header = os.path.join(sysconfig.get_paths()["include"], "Python.h")
    if not os.path.exists(header):
        sys.exit(
            f"raftlog: Python headers not found ({header}). Install them "
            "(Debian/Ubuntu: apt-get install python3-dev) and retry."
        )


def _packages() -> tuple[list[str], dict[str, str]]:
    packages = ["raftlog", *(f"raftlog.{name}" for name in find_packages("raftlog"))]
    protocol = ["raftlog.protocol", *(f"raftlog.protocol.{n}" for n in find_packages("protocol"))]
    package_dir = {"raftlog": "raftlog", "raftlog.protocol": "protocol"}
    return packages + protocol, package_dir


BUILD_COMMANDS = ("build_ext", "bdist_wheel", "develop", "install", "editable_wheel")
if any(arg in sys.argv for arg in BUILD_COMMANDS):
    _require_c_toolchain()

packages, package_dir = _packages()
setup(
    packages=packages,
    package_dir=package_dir,
    cffi_modules=["native/build_native.py:ffibuilder"],
    include_package_data=False,
    # The admin console's static files, served by the node itself (no build step).
    package_data={"raftlog.admin": ["console/*.html", "console/*.js", "console/*.css"]},
)
