"""Builds and runs the Java launcher in `docker/es-launcher/` that starts a genuine Elasticsearch node.

Maven resolves Elasticsearch 8.19.21 from Maven Central once; the build is cached in
`docker/es-launcher/target/` and redone only when the pom or a Java source changes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jointspace.errors import ConfigurationError
from jointspace.services.processes import exclusive, log_tail

ES_VERSION = "8.19.21"
LAUNCHER_MAIN = "org.elasticsearch.node.LocalNodeLauncher"
MIN_JAVA = 17
_HEAP = re.compile(r"^[1-9][0-9]*[kmgKMG]$")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LauncherBuild:
    jar: Path
    lib_dir: Path

    @property
    def classpath(self) -> str:
        return f"{self.jar}{os.pathsep}{self.lib_dir}/*"


def launcher_source_dir() -> Path:
    """`docker/es-launcher/` of the checkout this package runs from (the project installs editable)."""
    source = Path(__file__).resolve().parents[2] / "docker" / "es-launcher"
    if not (source / "pom.xml").is_file():
        raise ConfigurationError(
            f"the Elasticsearch launcher sources are not at {source}: run jointspace from a checkout of the "
            "repository (pip install -e .), or use the official image (docker/compose.yml)"
        )
    return source


def find_java() -> str:
    """The `java` to run: $JAVA_HOME/bin/java, else the one on PATH; refuses one older than 17."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise ConfigurationError(
            "Java is not installed: Elasticsearch 8.19 needs a JDK 17 or newer "
            "(apt-get install openjdk-17-jdk-headless; scripts/setup.sh does it)"
        )
    probe = subprocess.run([java, "-version"], capture_output=True, text=True)
    match = re.search(r'version "(\d+)', probe.stderr + probe.stdout)
    if not match or int(match.group(1)) < MIN_JAVA:
        raise ConfigurationError(
            f"{java} is not Java {MIN_JAVA}+ ({(probe.stderr or probe.stdout).strip().splitlines()[:1]}): "
            "install openjdk-17-jdk-headless or set JAVA_HOME"
        )
    return java


def ensure_built(log_path: Path, progress: Progress | None = None) -> LauncherBuild:
    """The launcher jar and its dependencies, building them with Maven first if missing or stale.

    Blocks for the build: about a minute the first time (downloads ~55 MB), seconds after a source
    change, nothing when up to date. Raises ConfigurationError when Maven or Java is missing or the
    build fails (with the tail of the Maven log).
    """
    source = launcher_source_dir()
    target = source / "target"
    build = LauncherBuild(jar=target / "es-launcher.jar", lib_dir=target / "lib")
    stamp = target / ".jointspace-build-stamp"
    digest = _source_digest(source)
    with exclusive(target / ".build.lock"):
        if build.jar.is_file() and build.lib_dir.is_dir() and _read(stamp) == digest:
            return build
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ConfigurationError(
                f"Maven is needed once to fetch Elasticsearch {ES_VERSION} from Maven Central: "
                "apt-get install maven (scripts/setup.sh does it)"
            )
        find_java()
        if progress:
            progress(f"Building the Elasticsearch {ES_VERSION} launcher with Maven (first time: about a minute)...")
        # A version change would otherwise leave the old jars beside the new ones on the classpath.
        shutil.rmtree(build.lib_dir, ignore_errors=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("w") as log:
            done = subprocess.run(
                [mvn, "-B", "-q", "package", "dependency:copy-dependencies"],
                cwd=source,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if done.returncode != 0 or not build.jar.is_file():
            raise ConfigurationError(
                f"building the Elasticsearch launcher failed (mvn exit {done.returncode}); "
                f"last lines of {log_path}:\n{log_tail(log_path, 30)}"
            )
        stamp.write_text(digest)
    return build


def java_command(
    java: str,
    build: LauncherBuild,
    heap: str,
    node_dir: Path,
    ready_file: Path,
    node_settings: dict[str, str],
    owner_pid: int | None = None,
) -> list[str]:
    """The command line of one node's JVM. `heap` such as "512m" sets both -Xms and -Xmx; with
    `owner_pid` the node stops itself when that process exits."""
    if not _HEAP.match(heap):
        raise ConfigurationError(f"heap {heap!r} is not a JVM size such as 512m or 1g")
    tmp = node_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    jvm = [
        f"-Xms{heap}",
        f"-Xmx{heap}",
        # The distribution's jvm.options settings that matter outside its bootstrap.
        "-Dfile.encoding=UTF-8",
        f"-Djava.io.tmpdir={tmp}",
        "-Dlog4j.shutdownHookEnabled=false",
        "-Dlog4j2.disable.jmx=true",
        "-Dio.netty.noUnsafe=true",
        "-Dio.netty.noKeySetOptimization=true",
        "-Dio.netty.recycler.maxCapacityPerThread=0",
        "-XX:+UseSerialGC",  # small heaps on few cores: fewer GC threads competing with the node
        "-XX:-OmitStackTraceInFastThrow",
    ]
    args = [f"--ready-file={ready_file}"] + ([f"--owner-pid={owner_pid}"] if owner_pid else [])
    args += [f"-E{k}={v}" for k, v in node_settings.items()]
    return [java, *jvm, "-cp", build.classpath, LAUNCHER_MAIN, *args]


def _source_digest(source: Path) -> str:
    digest = hashlib.sha256()
    for path in [source / "pom.xml", *sorted((source / "src").rglob("*.java"))]:
        digest.update(str(path.relative_to(source)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
