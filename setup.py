from setuptools import find_packages, setup

SUBS = ("compiler", "backends", "frontends", "training")
packages = ["snnc." + p for p in find_packages(include=[*SUBS, *(s + ".*" for s in SUBS)])]
setup(packages=packages, package_dir={"snnc." + s: s for s in SUBS})
