"""Which process runs a job, and the argument lists it gets: written from the parser, checked by it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import ROOT

from semantify_engine.cli.arguments import ArgumentsError, command_arguments
from semantify_engine.cli.background import BackgroundJob
from semantify_engine.cli.main import build_parser
from semantify_engine.cli.worker import (
    BLENDER_JOB_SCRIPT,
    ENGINE_PARENT,
    JOB_PATH_VARIABLE,
    Worker,
    choose_worker,
    missing_engine_message,
    platform_extension_name,
)


# ------------------------------------------------------------------------------------ argument lists
def test_options_are_written_with_the_parsers_own_spelling_and_parse_back_to_the_same_values() -> None:
    arguments = command_arguments(
        ("build",), model="anny-body", samples=300, scorer="clip", no_evaluate=True, words="tall,fat", out="x"
    )
    assert arguments[0] == "build" and "--no-evaluate" in arguments and "--samples" in arguments
    parsed = build_parser().parse_args(arguments)
    assert (parsed.model, parsed.samples, parsed.scorer, parsed.no_evaluate, parsed.words, parsed.out) == (
        "anny-body",
        300,
        "clip",
        True,
        "tall,fat",
        "x",
    )
    assert parsed.descriptors is None  # left out: the parser's default


def test_none_and_false_leave_an_option_to_its_default() -> None:
    arguments = command_arguments(("build",), out="x", words=None, no_evaluate=False, descriptors=None)
    assert arguments == ["build", "--out", "x"]


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1
    )
)
def test_any_prompt_reaches_the_command_as_the_same_text(text: str) -> None:
    """A prompt that starts with '-' (or is only spaces) is a positional, never an option."""
    arguments = command_arguments(("fit", "text"), text, mapper="m.npz", out="r.json")
    assert build_parser().parse_args(arguments).prompt == text


def test_names_the_parser_does_not_have_are_refused_before_anything_starts() -> None:
    with pytest.raises(ArgumentsError, match="has no option 'samplez'"):
        command_arguments(("build",), samplez=3, out="x")
    with pytest.raises(ArgumentsError, match="'semantify biuld' is not a command"):
        command_arguments(("biuld",))
    with pytest.raises(ArgumentsError, match="would be refused.*invalid choice"):
        command_arguments(("build",), scorer="words", out="x")
    with pytest.raises(ArgumentsError, match="would be refused.*required"):
        command_arguments(("build",), samples=3)  # --out is required
    with pytest.raises(ArgumentsError, match="is a switch"):
        command_arguments(("build",), no_evaluate="yes", out="x")


def test_the_glue_writes_no_option_by_hand() -> None:
    """A quoted ``"--option"`` token in the Blender glue would be a second copy of the command-line grammar.

    (Messages may mention options in prose; a string that is exactly one option is an argument list's.)
    """
    glue = ROOT / "semantify_blender"
    quoted_option = re.compile(r"""["']--[a-z][\w-]*["']""")
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(glue.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if quoted_option.search(line)
    ]
    assert found == []


# -------------------------------------------------------------------------------------------- worker
def test_the_worker_is_chosen_in_the_documented_order(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    base = {"running_blender": "/opt/blender/blender", "package_dirs": (str(wheels),), "this_python": "/py"}
    env = {"SEMANTIFY_PYTHON": "/env/python", "SEMANTIFY_BLENDER": "/env/blender"}
    order = [
        (
            dict(python_preference="/pref/python", blender_preference="/pref/blender"),
            env,
            "python",
            "/pref/python",
        ),
        (dict(blender_preference="/pref/blender"), env, "blender", "/pref/blender"),
        ({}, env, "python", "/env/python"),
        ({}, {"SEMANTIFY_BLENDER": "/env/blender"}, "blender", "/env/blender"),
        ({}, {}, "blender", "/opt/blender/blender"),
    ]
    for preferences, environ, kind, executable in order:
        worker = choose_worker(**base, **preferences, environ=environ)
        assert (worker.kind, worker.executable) == (kind, executable)
    module = choose_worker(**{**base, "running_blender": ""}, environ={})
    assert (module.kind, module.executable) == ("python", "/py") and "Python module" in module.source
    assert module.package_dirs == (str(wheels),)  # Blender as a module: the extension's wheels too
    users = choose_worker(**base, python_preference="/pref/python", environ={})
    assert users.package_dirs == ()  # a chosen Python keeps its own torch (CUDA): nothing shadows it
    gone = choose_worker(**{**base, "package_dirs": (str(tmp_path / "none"),)}, environ={})
    assert gone.package_dirs == ()


def test_a_blender_worker_runs_the_job_script_headless_with_the_path_in_the_environment(
    tmp_path: Path,
) -> None:
    worker = Worker("blender", "/opt/blender/blender", "test", (str(tmp_path),))
    command = worker.command(["models", "--json"])
    assert (
        command[0] == "/opt/blender/blender" and "--background" in command and "--factory-startup" in command
    )
    assert command[command.index("--python") + 1] == str(BLENDER_JOB_SCRIPT)
    assert command[command.index("--") + 1 :] == ["models", "--json"]
    environment = worker.environment({"PATH": "/bin"})
    assert environment[JOB_PATH_VARIABLE].split(os.pathsep) == [str(ENGINE_PARENT), str(tmp_path)]
    assert "PYTHONPATH" not in environment  # Blender's Python ignores it


def test_a_blender_worker_finds_modules_in_its_wheel_folder_without_importing_them(tmp_path: Path) -> None:
    (tmp_path / "fakepkg").mkdir()
    (tmp_path / "fakepkg" / "__init__.py").write_text("raise SystemExit('imported!')\n")
    worker = Worker("blender", "/opt/blender/blender", "test", (str(tmp_path),))
    assert worker.missing_modules(("bpy", "numpy", "fakepkg", "torch_not_here")) == ["torch_not_here"]


def test_the_job_script_runs_the_engine_as_a_fresh_python_would_with_only_the_job_path(
    tmp_path: Path,
) -> None:
    """What a Blender child does, with a plain isolated Python (-I: no PYTHONPATH, no cwd, no user site)."""
    environment = {**os.environ, JOB_PATH_VARIABLE: str(ENGINE_PARENT)}
    result = subprocess.run(
        [sys.executable, "-I", str(BLENDER_JOB_SCRIPT), "--", "models", "--json"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"anny-body"' in result.stdout
    failing = subprocess.run(
        [sys.executable, "-I", str(BLENDER_JOB_SCRIPT), "--", "preview", "no-such-model", "--out", "x.png"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        check=False,
    )
    assert failing.returncode == 2 and "semantify: error:" in failing.stderr  # the engine's status


def test_a_job_in_a_blender_worker_reports_the_summary_despite_blenders_closing_lines(tmp_path: Path) -> None:
    """A stand-in 'Blender' that prints Blender's own lines around the job's output, like a real one."""
    fake = tmp_path / "blender"
    fake.write_text(
        "#!/bin/sh\n"
        "echo 'Blender 5.0.1 (hash 000)'\n"
        'while [ "$1" != "--python" ]; do shift; done\n'
        'script="$2"; shift 2\n'
        f'"{sys.executable}" -I "$script" "$@"\n'
        "status=$?\n"
        "echo; echo 'Blender quit'\n"
        "exit $status\n"
    )
    fake.chmod(0o755)
    arguments = ["clip", "status", "--json", "--pretrained", "none"]
    job = BackgroundJob(Worker("blender", str(fake), "test"), arguments, None)
    job.start()
    assert job.wait(120) == 0, job.error_message()
    assert job.result() is None  # a job without a result file succeeds by its status
    assert job.summary()["kind"] == "random" and job.summary()["present"] is True


def test_the_missing_engine_message_names_the_platform_zip_or_the_pip_command() -> None:
    blender = Worker("blender", "/opt/blender", "the running Blender")
    message = missing_engine_message(blender, ["torch", "open_clip"], "Building word sliders")
    assert platform_extension_name() in message and "Install from Disk" in message
    assert "torch, open_clip missing" in message
    python = Worker("python", "/usr/bin/python3", "$SEMANTIFY_PYTHON")
    message = missing_engine_message(python, ["torch", "sklearn"], "Adding a word")
    assert '"/usr/bin/python3" -m pip install torch scikit-learn' in message
    assert platform_extension_name() in message
