"""Settings come from TIERSERVE_* variables and survive the hand-over to worker processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from tierserve.db.database import Database
from tierserve.settings import Settings, SettingsError, cpu_cores, load_settings, mask_url


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No TIERSERVE_* variable and no .env file; variables the test writes, even directly, are removed after it."""
    for name in Settings.model_fields:
        monkeypatch.setenv(f"TIERSERVE_{name.upper()}", "")  # recorded as it was, so restored after
        monkeypatch.delenv(f"TIERSERVE_{name.upper()}")
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_environment_round_trip(tmp_path: Path, clean_environment: pytest.MonkeyPatch) -> None:
    original = Settings(
        data_dir=tmp_path, port=9001, workers=3, cors_origins=["https://a.org", "https://b.org"], queue_timeout=2.5
    )
    original.export_environment()
    assert Settings() == original
    assert Settings().resolved_database_url == f"sqlite:///{tmp_path / 'tierserve.db'}"


def problem_lines(options: dict[str, object] | None = None) -> list[str]:
    """The lines `load_settings` and `Settings.check` report, named as the CLI names them."""
    with pytest.raises(SettingsError) as caught:
        load_settings(options).check()
    return caught.value.lines(options or {})


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        ("TIERSERVE_PORT", "abc", "TIERSERVE_PORT=abc: input should be a valid integer"),
        ("TIERSERVE_PORT", "70000", "TIERSERVE_PORT=70000: input should be less than or equal to 65535"),
        ("TIERSERVE_WORKERS", "0", "TIERSERVE_WORKERS=0: input should be greater than or equal to 1"),
        ("TIERSERVE_CORS_ORIGINS", "[bad", "TIERSERVE_CORS_ORIGINS='[bad': expected a JSON list"),
        ("TIERSERVE_DATABASE_URL", "garbage", "TIERSERVE_DATABASE_URL=garbage: not a database URL; expected e.g. "),
        (
            "TIERSERVE_DATABASE_URL",
            "postgresql://user:secret@host:port/db",
            "TIERSERVE_DATABASE_URL='postgresql://user:***@host:port/db': not a database URL",
        ),
        (
            "TIERSERVE_DATABASE_URL",
            "oracle+nope://user:secret@host/db",
            "TIERSERVE_DATABASE_URL='oracle+nope://user:***@host/db': unknown database or driver 'oracle+nope'",
        ),
        (
            "TIERSERVE_DATABASE_URL",
            "mysql://user:secret@host/db",
            "TIERSERVE_DATABASE_URL='mysql://user:***@host/db': its driver module MySQLdb is not installed",
        ),
        (
            "TIERSERVE_STORE_RETRY_TIMEOUT",
            "120",
            "TIERSERVE_STORE_RETRY_TIMEOUT=120: less than render_deadline (120 s), so that a render ends with a 503",
        ),
    ],
)
def test_a_wrong_variable_is_one_line_naming_it(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, line: str
) -> None:
    clean_environment.setenv("TIERSERVE_DATA_DIR", str(tmp_path / "data"))
    clean_environment.setenv(variable, value)
    (reported,) = problem_lines()
    assert reported.startswith(line), reported
    assert "secret" not in reported


def test_every_wrong_setting_gets_its_line_named_as_given(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("TIERSERVE_PORT", "abc")
    lines = problem_lines({"workers": 0})
    assert [line.split(":")[0] for line in lines] == ["TIERSERVE_PORT=abc", "--workers=0"]


def test_a_missing_postgres_driver_names_the_extra(clean_environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_environment.setitem(sys.modules, "psycopg", None)
    clean_environment.setenv("TIERSERVE_DATA_DIR", str(tmp_path / "data"))
    (line,) = problem_lines({"database_url": "postgresql://tierserve:secret@db.example/tierserve"})
    assert line == (
        "--database-url='postgresql://tierserve:***@db.example/tierserve': "
        "the PostgreSQL driver (psycopg) is not installed: pip install 'tierserve[postgres]'"
    )


def test_a_sqlite_file_in_a_missing_folder_is_an_error_and_not_created(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_environment.setenv("TIERSERVE_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "missing" / "dir"
    (line,) = problem_lines({"database_url": f"sqlite:///{folder / 'x.db'}"})
    assert line == f"--database-url=sqlite:///{folder / 'x.db'}: the folder {folder} does not exist " + (
        "(create it, or choose another file)"
    )
    assert not (tmp_path / "missing").exists()
    assert (tmp_path / "data").is_dir()


def test_only_the_default_data_directory_is_made_with_its_parents(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_environment.setenv("XDG_DATA_HOME", str(tmp_path / "fresh" / "share"))
    default = load_settings()
    default.check()
    assert default.data_dir == tmp_path / "fresh" / "share" / "tierserve" and default.data_dir.is_dir()
    given = tmp_path / "missing" / "data"
    (line,) = problem_lines({"data_dir": given})
    assert line == f"--data-dir={given}: its parent folder {given.parent} does not exist"
    clean_environment.setenv("TIERSERVE_DATA_DIR", str(tmp_path / "fresh"))
    load_settings().check()  # an existing folder, or one in an existing folder, is fine


def test_database_creates_no_folder(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    with pytest.raises(OperationalError):
        database.migrate()
    database.dispose()
    assert not (tmp_path / "missing").exists()


def test_mask_url_hides_passwords_also_in_urls_that_do_not_parse() -> None:
    assert mask_url("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:***@h/db"
    assert mask_url("postgresql://u:pw@h:port/db") == "postgresql://u:***@h:port/db"
    assert mask_url("garbage") == "garbage"


def test_inline_renders_are_larger_when_each_worker_has_a_core_at_most(
    tmp_path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    clean_environment.setattr("tierserve.settings.cpu_cores", lambda: 4)
    assert Settings(data_dir=tmp_path, workers=4).resolved_inline_render_pixels == 1024 * 1024
    assert Settings(data_dir=tmp_path, workers=2).resolved_inline_render_pixels == 512 * 512
    assert Settings(data_dir=tmp_path, workers=2, inline_render_pixels=0).resolved_inline_render_pixels == 0
    clean_environment.setenv("TIERSERVE_INLINE_RENDER_PIXELS", "4096")
    assert Settings(data_dir=tmp_path, workers=8).resolved_inline_render_pixels == 4096


def test_cpu_cores_are_those_the_process_may_run_on() -> None:
    assert cpu_cores() == len(os.sched_getaffinity(0)) >= 1
