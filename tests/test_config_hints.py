"""A misspelt or misplaced config key or section is reported with where it belongs."""

from __future__ import annotations

import pytest

from tui_pacs.config import parse_config
from tui_pacs.errors import ConfigError


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"node": {"ae_titel": "X"}}, "unknown key node.ae_titel (did you mean ae_title?)"),
        ({"node": {"path": "/srv"}}, "unknown key node.path (it belongs in [storage])"),
        ({"storage": {"port": 104}}, "unknown key storage.port (it belongs in [node])"),
        ({"nod": {"port": 104}}, "unknown section [nod] (did you mean [node]?)"),
        ({"node_s": [{}]}, "unknown section [node_s] (did you mean [[nodes]]?)"),
    ],
)
def test_unknown_key_or_section_says_where_it_belongs(document: dict, expected: str) -> None:
    """The error names the close key or section, or the section a key belongs in."""
    with pytest.raises(ConfigError) as caught:
        parse_config(document, None)
    assert expected in str(caught.value)
    assert "allowed:" in str(caught.value)


def test_unrelated_key_gets_no_guess() -> None:
    """A key like nothing allowed gets the allowed list only, no guess."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"node": {"zzz": 1}}, None)
    assert "did you mean" not in str(caught.value) and "belongs" not in str(caught.value)
