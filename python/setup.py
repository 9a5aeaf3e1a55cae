"""Packaging of the wcm Python package (pure Python: ctypes over libwcm.so).

The version is the C library's (CMakeLists.txt). When a built libwcm.so is
found (WCM_LIBRARY, else the source tree's build*/ folders) it is copied
into the package, so an installed package works without installing the C
library; otherwise the package looks for libwcm.so at import time (see
wcm/_lib.py)."""
import glob
import os
import re
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)


def version():
    try:
        with open(os.path.join(SOURCE, "CMakeLists.txt")) as f:
            return re.search(r"project\(wcm VERSION ([0-9.]+)", f.read()).group(1)
    except (OSError, AttributeError):
        return "0.0.0"


def built_library():
    if os.environ.get("WCM_LIBRARY"):
        return os.environ["WCM_LIBRARY"]
    for build in sorted(glob.glob(os.path.join(SOURCE, "build*"))):
        path = os.path.join(build, "libwcm.so")
        if os.path.exists(path):
            return path
    return None


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        lib = built_library()
        if lib:
            target = os.path.join(self.build_lib, "wcm", "libwcm.so")
            shutil.copyfile(os.path.realpath(lib), target)
            print(f"wcm: bundled {lib}")
        else:
            print("wcm: no built libwcm.so found; the package will look for it at import time")


setup(version=version(), cmdclass={"build_py": BuildWithLibrary})
