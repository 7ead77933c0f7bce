"""Every management command ends cleanly (issue 23, item 5): run as an operator runs it (a
subprocess, ``python manage.py ...``) with a prerequisite missing — no model weights, no database,
no bucket, a file or folder that is not there — it exits non-zero with one ``CommandError`` line
saying what to do, and no Python traceback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NOWHERE = f"http://127.0.0.1:{_closed_port()}"
NO_DATABASE = f"postgresql://raiox:x@127.0.0.1:{_closed_port()}/raiox"
NO_WEIGHTS = {"RAIOX_ALLOW_UNTRAINED_MODEL": "0"}  # and an empty model cache (RAIOX_VAR_DIR below)


def _cases(tmp: Path) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """command -> (arguments, environment, what the one line must say)."""
    old_csv = tmp / "implants.csv"
    old_csv.write_text("id,name,manufacturer,type,image_url,embedding\n1,BLX,Straumann,,referencia/blx.png,\n")
    return {
        # implants
        "export_catalog": ([str(tmp / "catalogo.csv")], {}, "Banco de dados inacessível"),
        "generate_catalog": (["/dev/null/catalogo"], {}, "confira o caminho"),
        "import_catalog": ([str(tmp / "nao-existe.csv")], {}, "Arquivo não encontrado"),
        "import_legacy": (
            ["--csv", str(old_csv), "--bucket", "raiox-images", "--endpoint-url", NOWHERE],
            {},
            "Não foi possível ler o bucket raiox-images",
        ),
        "seed_catalog": ([], {}, "Banco de dados inacessível"),
        # matching
        "evaluate_matching": (["--leave-one-out"], NO_WEIGHTS, "fetch_model"),
        "fetch_model": (["--from-file", str(tmp / "nao-existe.pt")], {}, "nao-existe.pt"),
        "find_fixtures": ([str(tmp / "nao-existe.png")], {}, "Não encontrado"),
        "reembed": ([], NO_WEIGHTS, "fetch_model"),
        "train_matcher": (["--max-minutes", "1"], NO_WEIGHTS, "fetch_model"),
        # raiox
        "backup_db": ([], {}, "DATABASE_URL"),
        "create_roles": ([], {}, "Banco de dados inacessível"),
        "ensure_dev_admin": ([], {}, "Banco de dados inacessível"),
        "ensure_schedules": ([], {}, "Banco de dados inacessível"),
        "restore_db": ([], {}, "Informe um nome de backup"),
        # submissions
        "import_legacy_history": (["--bucket", "raiox-images", "--endpoint-url", NOWHERE], {}, "bucket"),
    }


def _commands() -> set[str]:
    return {p.stem for p in ROOT.glob("*/management/commands/*.py") if p.stem != "__init__"}


# Log records (axes announces itself at start-up) and progress bars are not the message.
NOT_THE_MESSAGE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING) |.*\|.*it/s|.*\d+%\|)")


def _run(name: str, args: list[str], extra_env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "raiox.settings",
        "DATABASE_URL": NO_DATABASE,
        "RAIOX_VAR_DIR": str(tmp / "var"),  # nothing of the worktree's: no model cache, no media
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "HF_HUB_OFFLINE": "1",
        **extra_env,
    }
    env.pop("AWS_STORAGE_BUCKET_NAME", None)
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", name, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_command_has_a_failure_case(tmp_path):
    assert set(_cases(tmp_path)) == _commands()


def test_each_command_with_a_missing_prerequisite_ends_in_one_line_without_traceback(tmp_path):
    cases = _cases(tmp_path)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(
            zip(
                cases,
                pool.map(lambda item: _run(item[0], item[1][0], item[1][1], tmp_path), cases.items()),
                strict=True,
            )
        )
    failures = []
    for name, (_args, _env, expected) in cases.items():
        result = results[name]
        output = result.stdout + result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip() and not NOT_THE_MESSAGE.match(line)]
        problems = []
        if result.returncode == 0:
            problems.append("exit status 0")
        if "Traceback" in output:
            problems.append("traceback")
        if len(lines) != 1 or not lines[0].startswith("CommandError: "):
            problems.append(f"not one CommandError line: {lines!r}")
        elif expected not in lines[0]:
            problems.append(f"{expected!r} not in {lines[0]!r}")
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}\n{output[-1500:]}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("message", ["line one\nline two", "  spaced   out  "])
def test_a_command_error_is_always_one_line(message):
    from django.core.management import CommandError

    from kernel.commands import RaioxCommand

    class Failing(RaioxCommand):
        def handle(self, *args, **options):
            raise CommandError(message)

    with pytest.raises(CommandError) as excinfo:
        Failing().execute(skip_checks=True, no_color=True, force_color=False, stdout=None, stderr=None)
    assert "\n" not in str(excinfo.value) and str(excinfo.value) == " ".join(message.split())
