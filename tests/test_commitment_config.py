"""The ``[commitment]`` config section: defaults equal to the historical schedule, every key
parsed, documented and shown by ``tui-pacs config``, bad values refused naming file, key and
rule, and the reporter's schedule taken from it."""

from __future__ import annotations

import re
from pathlib import Path

import peewee as pw
import pytest
from click.testing import CliRunner

from tui_pacs.cli import main
from tui_pacs.config import Config, load_config
from tui_pacs.errors import ConfigError
from tui_pacs.services.commitment import CommitmentService

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "tui-pacs.example.toml"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _service(config: Config) -> CommitmentService:
    """A service never started: only its schedule is looked at (no database access)."""
    return CommitmentService(config, pw.SqliteDatabase(":memory:"), lambda ae: None)


def test_defaults_are_the_historical_schedule() -> None:
    """Without a [commitment] section: 30 s doubling to 1 h, 12 attempts, kept 30 days; the
    example file, as shipped, says the same."""
    cfg = Config()
    assert (
        cfg.commitment_retry_delay,
        cfg.commitment_max_retry_delay,
        cfg.commitment_max_attempts,
        cfg.commitment_keep_days,
    ) == (30, 3600, 12, 30)
    example = load_config(EXAMPLE)
    for name in (
        "commitment_retry_delay",
        "commitment_max_retry_delay",
        "commitment_max_attempts",
        "commitment_keep_days",
    ):
        assert getattr(example, name) == getattr(cfg, name), name
    service = _service(cfg)
    delays = [service.retry_delay(n) for n in range(1, cfg.commitment_max_attempts)]
    assert delays[:8] == [30, 60, 120, 240, 480, 960, 1920, 3600]
    assert set(delays[7:]) == {3600}
    assert 5 * 3600 <= sum(delays) <= 5.1 * 3600  # "about five hours" in README
    assert service.max_attempts == 12 and service.keep_days == 30


def test_every_key_parses_and_drives_the_reporter(tmp_path: Path) -> None:
    """Each key is read (seconds as integers or decimals), and the reporter follows it."""
    path = _write(
        tmp_path / "c.toml",
        "[commitment]\nretry_delay = 0.5\nmax_retry_delay = 2\nmax_attempts = 4\nkeep_days = 0\n",
    )
    cfg = load_config(path)
    assert (
        cfg.commitment_retry_delay,
        cfg.commitment_max_retry_delay,
        cfg.commitment_max_attempts,
        cfg.commitment_keep_days,
    ) == (0.5, 2, 4, 0)
    service = _service(cfg)
    assert [service.retry_delay(n) for n in range(1, 6)] == [0.5, 1.0, 2, 2, 2]
    assert (service.max_attempts, service.keep_days) == (4, 0)
    assert service.retry_delay(1000) == 2  # no float overflow on a long schedule


def test_config_command_shows_the_section(tmp_path: Path) -> None:
    """`tui-pacs config` prints the four effective values."""
    path = _write(tmp_path / "c.toml", "[commitment]\nmax_attempts = 5\nkeep_days = 7\n")
    result = CliRunner().invoke(main, ["--config", str(path), "config"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert re.search(r"^commitment_retry_delay\s+30$", out, re.M), out
    assert re.search(r"^commitment_max_retry_delay\s+3600$", out, re.M), out
    assert re.search(r"^commitment_max_attempts\s+5$", out, re.M), out
    assert re.search(r"^commitment_keep_days\s+7$", out, re.M), out


def test_example_comments_every_key() -> None:
    """Every [commitment] key has a comment line right above it (or above its group)."""
    body = EXAMPLE.read_text(encoding="utf-8").split("[commitment]\n", 1)[1].split("\n[", 1)[0]
    lines = body.splitlines()
    for key in ("retry_delay", "max_retry_delay", "max_attempts", "keep_days"):
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{key} = "))
        above = [line for line in lines[:index] if not re.match(r"^\w+ = ", line)]
        assert above and above[-1].startswith("#"), key


#: (file body, the key the message must name, what the message must say is allowed)
BAD = [
    ("[commitment]\nretry = 3", "commitment.retry", "retry_delay, max_retry_delay"),
    ("[commitment]\nretry_delay = 0", "commitment.retry_delay", "seconds above 0"),
    ("[commitment]\nretry_delay = -5", "commitment.retry_delay", "seconds above 0"),
    ("[commitment]\nretry_delay = '30'", "commitment.retry_delay", "seconds above 0"),
    ("[commitment]\nretry_delay = true", "commitment.retry_delay", "seconds above 0"),
    ("[commitment]\nretry_delay = 100000", "commitment.retry_delay", "at most 86400"),
    ("[commitment]\nmax_retry_delay = 0", "commitment.max_retry_delay", "seconds above 0"),
    ("[commitment]\nmax_retry_delay = 1e9", "commitment.max_retry_delay", "at most 604800"),
    ("[commitment]\nmax_attempts = 0", "commitment.max_attempts", "from 1 to 1000"),
    ("[commitment]\nmax_attempts = 2.5", "commitment.max_attempts", "from 1 to 1000"),
    ("[commitment]\nmax_attempts = 5000", "commitment.max_attempts", "from 1 to 1000"),
    ("[commitment]\nkeep_days = -1", "commitment.keep_days", "0 (keep forever)"),
    ("[commitment]\nkeep_days = 1.5", "commitment.keep_days", "1-36500 days"),
    ("[commitment]\nkeep_days = false", "commitment.keep_days", "0 (keep forever)"),
    ("commitment = 3", "[commitment]", "table"),
]


@pytest.mark.parametrize(("body", "key", "allowed"), BAD, ids=[b[0][13:] for b in BAD])
def test_bad_values_name_file_key_and_rule(
    tmp_path: Path, body: str, key: str, allowed: str
) -> None:
    """Each bad [commitment] value is refused with the file, the key and what is allowed."""
    path = _write(tmp_path / "bad.toml", body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert key in message and allowed in message, message
