"""Every `worldmodels` command shown in the README and in docs/ parses: its `--help` succeeds."""

import re
import shlex
from pathlib import Path

from tests.conftest import invoke

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"(?<!from )(?:\.venv/bin/)?worldmodels ([a-z][a-z-]*(?: [^`#\n|]*)?)")


def shown_commands(text: str) -> list[str]:
    """Command lines in code blocks and in `inline code` that start with `worldmodels`."""
    found = []
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text.replace("\\\n", " "), flags=re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    for line in [*"\n".join(blocks).splitlines(), *inline]:
        for match in COMMAND.finditer(line.split(" # ")[0]):
            found.append(match.group(1).strip())
    return found


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_every_command_shown_parses():
    commands = {c for page in PAGES for c in shown_commands(page.read_text())}
    assert len(commands) > 20, commands
    failed = []
    for command in sorted(commands):
        # Placeholders (NAME, SEED, STAGE...) stand for values; option names must exist
        args = shlex.split(command.replace("...", ""))
        if not args or args[0].isupper():
            continue
        result = invoke(*args, "--help", expect_ok=False)
        if result.exit_code != 0:
            failed.append(f"worldmodels {command}: {result.output.strip().splitlines()[-1:]}")
    assert not failed, "\n".join(failed)


def test_short_help_everywhere_and_every_policy_listed():
    from worldmodels.envs import ENVS, get_env

    assert "collect" in invoke("-h").output
    assert "--preset" in invoke("collect", "-h").output
    output = " ".join(invoke("collect", "--help").output.split())
    for env_id in ENVS:
        for policy in get_env(env_id).policies:
            assert policy in output, (env_id, policy)
