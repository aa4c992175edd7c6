"""The Dockerfile, read as the builder would: there is no Docker engine here to build it."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field

from libs.common.settings import DEFAULT_PORT_BASE, PORT_OFFSETS
from pingtai.parts import PART_NAMES, PARTS
from pingtai.supervisor import HUGE_PAGES_GLIBC_TUNABLES, PART_GLIBC_TUNABLES
from tests.deploy.manifests import OVERLAYS, ROOT, named, settings_env_names

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "cc ", "clang", "-dev ")


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        piece = stripped.removesuffix("\\").strip()
        current = f"{current} {piece}" if current else piece
        if not stripped.endswith("\\"):
            joined.append(current)
            current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return [(i.split(None, 1)[0].upper(), i.split(None, 1)[1]) for i in joined]


def _stages() -> list[Stage]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction, rest in _instructions():
        if instruction == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif instruction == "FROM":
            words = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        else:
            assert stages, f"{instruction} before FROM"
            stages[-1].instructions.append((instruction, rest))
    return stages


def _exec_form(stage: Stage, instruction: str) -> list[str]:
    found = [rest for ins, rest in stage.instructions if ins == instruction]
    assert found, f"no {instruction}"
    value = json.loads(found[-1])  # exec form: signals reach pingtai, not a shell
    assert isinstance(value, list)
    return value


def test_it_is_multi_stage_on_slim_python_3_11() -> None:
    stages = _stages()
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", stage.image), stage.image
    final = stages[-1]
    copies = [rest for ins, rest in final.instructions if ins == "COPY"]
    sources = [re.search(r"--from=(\S+)", c) for c in copies]
    assert any(sources), "the final stage takes what the build stage installed"
    names = {s.name for s in stages[:-1]}
    assert all(m.group(1) in names for m in sources if m)


def test_the_build_stage_installs_the_project_pinned_by_constraints() -> None:
    build = _stages()[0]
    runs = " ".join(rest for ins, rest in build.instructions if ins == "RUN")
    assert re.search(r"pip install (--no-cache-dir )?-c constraints\.txt \.(\s|$)", runs), runs


def test_the_final_stage_has_no_build_tools() -> None:
    for instruction, rest in _stages()[-1].instructions:
        if instruction == "RUN":
            assert "apt-get install" not in rest and "apk add" not in rest, rest
            for tool in BUILD_TOOLS:
                assert tool not in f"{rest} ", f"{tool.strip()} in the final stage: {rest}"


def test_it_runs_as_a_numeric_non_root_user() -> None:
    users = [rest for ins, rest in _stages()[-1].instructions if ins == "USER"]
    assert users, "no USER: the image would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) > 0, "numeric, so runAsNonRoot can verify it"
    assert not group or (group.isdigit() and int(group) > 0)


def test_it_serves_a_part_with_the_pingtai_command() -> None:
    final = _stages()[-1]
    command = _exec_form(final, "ENTRYPOINT") + _exec_form(final, "CMD")
    assert command[:2] == ["pingtai", "serve"]
    assert command[2] in PART_NAMES


def test_it_exposes_every_part_and_sets_only_real_settings() -> None:
    final = _stages()[-1]
    exposed = " ".join(rest for ins, rest in final.instructions if ins == "EXPOSE")
    low, _, high = exposed.partition("-")
    ports = range(int(low), int(high or low) + 1)
    assert all(DEFAULT_PORT_BASE + offset in ports for offset in PORT_OFFSETS.values())
    env = " ".join(rest for ins, rest in final.instructions if ins == "ENV")
    known = set().union(*(settings_env_names(p) for p in PARTS))
    for name in re.findall(r"\b(PINGTAI_\w+)=", env):
        assert name in known, f"{name} is not a setting"


def test_parts_get_the_memory_settings_pingtai_up_gives_them() -> None:
    env = " ".join(rest for ins, rest in _stages()[-1].instructions if ins == "ENV")
    assert f"GLIBC_TUNABLES={PART_GLIBC_TUNABLES} " in env
    assert re.search(r"\bPYTHONNODEBUGRANGES=1\b", env)
    # Transparent huge pages only where `pingtai up` asks for them (identity's argon2id buffer).
    for overlay in OVERLAYS:
        for part in PARTS:
            pod = named(overlay, "Deployment", part.name)["spec"]["template"]["spec"]
            given = {e["name"]: e.get("value") for c in pod["containers"] for e in c.get("env", [])}
            expected = HUGE_PAGES_GLIBC_TUNABLES if part.huge_pages else None
            assert given.get("GLIBC_TUNABLES") == expected, (overlay, part.name)


def test_the_build_context_holds_everything_copied_and_nothing_local() -> None:
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        result = False
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.removeprefix("!").rstrip("/")
            hit = fnmatch.fnmatch(path, pattern) or path.startswith(f"{pattern}/")
            if pattern.startswith("**/"):
                hit = hit or any(fnmatch.fnmatch(part, pattern[3:]) for part in path.split("/"))
            if hit:
                result = not negate
        return result

    for stage in _stages():
        for instruction, rest in stage.instructions:
            if instruction != "COPY" or rest.startswith("--from"):
                continue
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert not ignored(source), f"COPY {source}: excluded by .dockerignore"
    for local in (".venv", ".git", "var", "tests", "deploy", "var/identity.db"):
        assert ignored(local), f"{local} would be sent to the builder"
    assert ignored("services/identity/__pycache__")
    assert not ignored("services/identity/migrations/versions/identity_0001_initial.py")
