"""Engine errors are front-end neutral: they name the engine's parameter, each front end spells it.

The same error reads ``samples`` from the engine, ``--samples`` on the command line (from the parser's
own options), and ``'Samples'`` in the add-on (the Blender side is tested in test_blender_extension.py);
a background command hands the error on with its parameters unspelled. Library code does not print.
"""

from __future__ import annotations

import ast
import contextlib
import io
import pickle
import re
import sys
from pathlib import Path

import pytest

from semantify_engine.cli.arguments import parameter_spellings, spelled
from semantify_engine.cli.background import BackgroundJob
from semantify_engine.cli.main import build_parser, main
from semantify_engine.cli.progress import ERROR_RECORD_PREFIX, error_record_line, parse_error_line
from semantify_engine.cli.worker import Worker
from semantify_engine.dataset.builder import DatasetRequest
from semantify_engine.errors import DatasetError, JobError, SemantifyError

ENGINE = Path(__file__).resolve().parents[2] / "semantify_engine"


def samples_error() -> DatasetError:
    return DatasetError("{samples} must be a whole number > 0, got 0.", parameters=("samples",))


# --------------------------------------------------------------------------------------- the engine
def test_an_error_names_the_engine_parameter_and_a_front_end_renders_it() -> None:
    error = DatasetError(
        "{shard} 5/4: need 0 ≤ I < N; or use another {out} folder, {out} being a dataset's.",
        parameters=("shard", "out"),
    )
    assert str(error) == "shard 5/4: need 0 ≤ I < N; or use another out folder, out being a dataset's."
    assert error.template.startswith("{shard} 5/4")
    spelled_out = error.render({"shard": "--shard", "out": "--out"}.get)
    assert spelled_out == "--shard 5/4: need 0 ≤ I < N; or use another --out folder, --out being a dataset's."
    assert error.render(lambda parameter: None) == str(error)  # no spelling of its own: the engine's name
    plain = SemantifyError("Model file x.npz does not exist.")
    assert (
        plain.parameters == () and str(plain) == plain.render(str.upper) == "Model file x.npz does not exist."
    )


def test_an_error_recast_as_another_kind_keeps_its_parameters() -> None:
    job = samples_error().recast(JobError, "The build failed: ")
    assert type(job) is JobError and job.parameters == ("samples",)
    spelled_out = job.render({"samples": "--samples"}.get)
    assert spelled_out == "The build failed: --samples must be a whole number > 0, got 0."


def test_an_error_keeps_its_parameters_across_processes() -> None:
    """Ray workers and background commands hand errors back: pickled, or as a machine-readable line."""
    copy = pickle.loads(pickle.dumps(samples_error()))
    assert (
        type(copy) is DatasetError
        and copy.parameters == ("samples",)
        and copy.template.startswith("{samples}")
    )
    line = error_record_line(samples_error())
    assert line.startswith(ERROR_RECORD_PREFIX)
    record = parse_error_line(line)
    assert (
        record is not None
        and record.parameters == ("samples",)
        and record.template == samples_error().template
    )
    for other in ("", "semantify: error: x", ERROR_RECORD_PREFIX + "{not json", ERROR_RECORD_PREFIX + "{}"):
        assert parse_error_line(other) is None


def test_a_request_blames_its_parameter_not_a_flag() -> None:
    with pytest.raises(SemantifyError) as caught:
        DatasetRequest(model_spec="anny-body", model=None, samples=0, plan=None, views=())  # type: ignore[arg-type]
    assert caught.value.parameters == ("samples",)
    assert str(caught.value) == "samples must be a whole number > 0, got 0."


def _message_text(node: ast.expr) -> str:
    """The literal text of a message expression (f-string parts unescaped, other parts left out)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_message_text(part) for part in node.values if isinstance(part, ast.Constant))
    if isinstance(node, ast.BinOp):
        return _message_text(node.left) + _message_text(node.right)
    return ""


def test_every_parameter_an_engine_error_names_has_its_place_in_the_message() -> None:
    """``parameters=("samples",)`` with no ``{samples}`` in the message (or a ``{{samples}}`` left in a plain
    string) would leave the parameter unnamed in every front end."""
    problems, checked = [], 0
    for path in sorted(ENGINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            given = next((keyword.value for keyword in node.keywords if keyword.arg == "parameters"), None)
            if given is None:
                continue
            text = _message_text(node.args[0])
            names = [
                element.value for element in getattr(given, "elts", []) if isinstance(element, ast.Constant)
            ]
            checked += 1
            if "{{" in text or any("{" + name + "}" not in text for name in names):
                problems.append(f"{path.relative_to(ENGINE)}:{node.lineno}: {names} in {text!r}")
    assert checked >= 20 and problems == []


def test_no_engine_error_spells_a_command_line_option() -> None:
    """A Blender user cannot type ``--scorer``: outside ``cli/`` a message names the parameter
    (``{scorer}``) and each front end spells it. Any option of the ``semantify`` parser counts."""
    spellings = parameter_spellings(build_parser()).values()
    options = {spelling for spelling in spellings if spelling.startswith("--")}
    assert {"--scorer", "--dataset", "--lr", "--crop", "--clip-engine"} <= options
    pattern = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
    problems, checked = [], 0
    for path in sorted(ENGINE.rglob("*.py")):
        if ENGINE / "cli" in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and node.args and _called_name(node).endswith("Error")):
                continue
            checked += 1
            spelled_here = set(pattern.findall(_message_text(node.args[0]))) & options
            if spelled_here:
                problems.append(f"{path.relative_to(ENGINE)}:{node.lineno}: {sorted(spelled_here)}")
    assert checked >= 200 and problems == []


def test_every_error_class_lives_in_errors_py() -> None:
    """The glue imports ``errors`` alone to catch any of them (and ``ModeBusy``-style errors need no
    other engine module): a ``SemantifyError`` subclass defined anywhere else breaks that."""
    from semantify_engine import errors

    ours = {name for name, value in vars(errors).items() if isinstance(value, type)}
    elsewhere = [
        f"{path.relative_to(ENGINE)}:{node.lineno}: {node.name}"
        for path in sorted(ENGINE.rglob("*.py"))
        if path.name != "errors.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ClassDef)
        and any(getattr(base, "id", getattr(base, "attr", None)) in ours for base in node.bases)
    ]
    assert "MapperError" in ours and "FitError" in ours and elsewhere == []


def _called_name(node: ast.Call) -> str:
    function = node.func
    return function.id if isinstance(function, ast.Name) else getattr(function, "attr", "")


def test_library_code_does_not_print() -> None:
    """Only the front ends write to the terminal; the engine reports through callbacks or logging."""
    front_end = {ENGINE / "cli"}
    printing = [
        f"{path.relative_to(ENGINE)}:{node.lineno}"
        for path in sorted(ENGINE.rglob("*.py"))
        if not any(folder in path.parents for folder in front_end)
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    ]
    assert printing == []


# ----------------------------------------------------------------------------------- the command line
def test_the_command_line_spells_parameters_as_its_options() -> None:
    parser = build_parser()
    everywhere = parameter_spellings(parser)
    assert everywhere["samples"] == "--samples" and everywhere["chunk_size"] == "--chunk-size"
    assert everywhere["dataset"] == "--dataset"  # an option somewhere wins over a positional elsewhere
    train = parser.parse_args(["mapper", "train", "data", "--descriptors", "tall", "--out", "m.npz"])
    assert parameter_spellings(parser, train)["dataset"] == "DATASET"  # this command's own: a positional
    evaluate = parser.parse_args(["evaluate", "m.npz", "--out", "report"])
    assert parameter_spellings(parser, evaluate)["ray_workers"] == "--ray-workers"  # another command's
    error = DatasetError(
        "{chunk_size} must be > 0; pass {dataset} DIR.", parameters=("chunk_size", "dataset")
    )
    assert spelled(error, train) == "--chunk-size must be > 0; pass DATASET DIR."


def test_the_command_line_prints_the_flag_and_a_follower_gets_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = ["dataset", "build", "--model", "anny-body", "--samples", "0", "--scorer", "metric"]
    for follower in (False, True):
        if follower:
            monkeypatch.setenv("SEMANTIFY_PROGRESS", "json")
        stream = io.StringIO()
        with contextlib.redirect_stderr(stream):
            assert main([*command, "--out", str(tmp_path / "data")]) == 2
        lines = stream.getvalue().splitlines()
        assert lines[-1] == "semantify: error: --samples must be a whole number > 0, got 0."
        records = [parse_error_line(line) for line in lines if line.startswith(ERROR_RECORD_PREFIX)]
        assert len(records) == follower
        if follower:
            assert records[0].parameters == ("samples",) and str(records[0]) == str(samples_error())


def test_a_background_command_hands_its_error_on_unspelled(tmp_path: Path) -> None:
    """What the add-on runs: the job's error names the parameter, for the add-on to name as its field."""
    arguments = ["dataset", "build", "--model", "anny-body", "--samples", "0", "--scorer", "metric"]
    worker = Worker("python", sys.executable, "the test's Python")
    job = BackgroundJob(worker, [*arguments, "--out", str(tmp_path / "data")], None)
    job.start()
    assert job.wait(60) == 2
    with pytest.raises(JobError) as caught:
        job.result()
    assert caught.value.parameters == ("samples",)
    assert caught.value.render({"samples": "'Samples'"}.get) == "'Samples' must be a whole number > 0, got 0."
    assert job.error_message() == "samples must be a whole number > 0, got 0."
