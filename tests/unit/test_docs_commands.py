"""The docs name only commands and flags that exist, and the README's command-line section
names every command and flag there is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from securitybot.cli import main

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def commands(group: click.Group = main, path: tuple[str, ...] = ()) -> Iterator[
    tuple[tuple[str, ...], click.Command]
]:  # fmt: skip
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


def flags(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params if isinstance(p, click.Option) for o in p.opts if o != "-h"}


def _section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_names_every_command_and_flag() -> None:
    section = _section((REPO / "README.md").read_text(), "## Command line")
    for path, cmd in commands():
        line = f"securitybot {' '.join(path)}"
        assert line in section, f"README's command line lacks `{line}`"
        own = [ln for ln in section.splitlines() if re.match(rf"{re.escape(line)}( |$)", ln)]
        # Continuation lines of a long usage belong to it.
        text = "\n".join(own) + "\n" + section
        missing = {f for f in flags(cmd) - {"--config"} if f not in text}
        assert not missing, f"README lacks {sorted(missing)} of `{line}`"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_name_only_commands_and_flags_that_exist(doc: Path) -> None:
    known = dict(commands())
    groups = {path[:i] for path in known for i in range(1, len(path))}
    text = doc.read_text()
    # `.venv/bin/securitybot migrate` is the command; `/securitybot help` is Slack's.
    inline = re.findall(r"`(?:[^`\n]*(?: |\w/))?(securitybot [^`\n]*)`", text)
    blocks = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", text, re.S))
    # A command where a shell would run one: a line's start, after `&&`, `;` or `|`, or a path.
    lines = re.findall(r"(?:^\s*(?:\$ )?|(?:&&|;|\|) )(?:\S*/)?(securitybot [a-z][^#\n]*)",
                       blocks, re.M)  # fmt: skip
    for snippet in inline + lines:
        words = tuple(re.findall(r"(?<=[ ])([a-z][a-z-]*)(?=[ ]|$)", " " + snippet))[1:]
        # The longest prefix of the words that is a command: `securitybot aer worker ...`.
        path = next((words[:i] for i in range(len(words), 0, -1) if words[:i] in known), None)
        if path is None:
            assert words[:1] in groups, f"{doc.name}: `{snippet}` names no command"
            continue
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", snippet):
            assert flag in flags(known[path]) | {"--help"}, f"{doc.name}: `{snippet}`: {flag}?"
