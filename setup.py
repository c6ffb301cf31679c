"""Maps the top-level stage folders onto subpackages of `jointspace`.

The user asked for `ingest/ encoders/ ...` at the top of the repository; installing them as
`jointspace.ingest` and so on keeps generic names such as `api` out of site-packages.
pyproject.toml holds everything else.
"""

from setuptools import find_packages, setup

STAGES = ["ingest", "encoders", "es_mappings", "backends", "query", "workers", "api", "datasets"]

package_dir = {"jointspace": "jointspace"} | {f"jointspace.{s}": s for s in STAGES}
packages = ["jointspace"] + [f"jointspace.{p}" for p in find_packages("jointspace")]
for stage in STAGES:
    packages += [f"jointspace.{stage}"] + [f"jointspace.{stage}.{p}" for p in find_packages(stage)]

setup(package_dir=package_dir, packages=packages)
