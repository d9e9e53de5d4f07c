"""The documentation's shell examples stay true to the code.

Conventions (docs/README.md, "Writing documentation"):
- every `monosign-gateway COMMAND` (or `python -m gateway COMMAND`) in a ```bash, ```sh, ```shell
  or ```console block of README.md or docs/*.md must be a real sub-command: `COMMAND --help` exits 0
  (for `sim`, the simulator named after it too);
- a block fenced as ```bash runnable is run: bash with `set -euo pipefail`, in an empty temporary
  directory, with the project's `monosign-gateway` first on PATH. It must exit 0.
The README's `./dev demo` and `./dev test` are run by CI and the demo tests, not here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")
# The command's name in command position: line start, after a pipe, `;`, `&&`, `$(`, `sudo`, `exec`
# (also `docker compose exec SERVICE`), optionally with a directory in front (.venv/bin/...).
COMMAND = re.compile(
    r"(?:^|[;&|(]\s*|\bsudo\s+|\bexec\s+(?:[\w-]+\s+)?|\$\s+)(?:[\w./-]*/)?(?:monosign-gateway|python3? -m gateway)"
    r"\s+(?P<command>[a-z][a-z-]*)(?:\s+(?P<sub>[a-z][a-z-]*))?",
    re.M,
)


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    info: str
    text: str

    @property
    def language(self) -> str:
        return self.info.split()[0].lower() if self.info.split() else ""

    @property
    def runnable(self) -> bool:
        return self.language == "bash" and "runnable" in self.info.split()[1:]

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def code_blocks(document: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = document.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, start = match["fence"], index
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index])
            index += 1
        blocks.append(Block(document, start + 1, match["info"].strip(), "\n".join(body)))
        index += 1
    return blocks


SHELL_BLOCKS = [block for document in DOCUMENTS for block in code_blocks(document)
                if block.language in SHELL_LANGUAGES]
RUNNABLE = [block for block in SHELL_BLOCKS if block.runnable]


def mentioned_commands(block: Block) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for line in block.text.splitlines():
        line = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        for match in COMMAND.finditer(line):
            command = (match["command"],)
            if match["command"] == "sim" and match["sub"]:
                command += (match["sub"],)
            found.add(command)
    return found


@cache
def help_exit_status(command: tuple[str, ...]) -> int:
    return subprocess.run([sys.executable, "-m", "gateway", *command, "--help"], capture_output=True,
                          cwd=ROOT, timeout=60).returncode


def test_the_documents_have_shell_examples() -> None:
    # Guards the extraction itself: a parser that found nothing would pass everything below.
    assert len(SHELL_BLOCKS) >= 5
    assert RUNNABLE
    assert any(mentioned_commands(block) for block in SHELL_BLOCKS)


def test_block_parsing() -> None:
    block = Block(ROOT / "README.md", 1, "bash runnable", "\n".join([
        "monosign-gateway check --user 'CORP\\alice'   # or: python -m gateway check",
        "sudo .venv/bin/monosign-gateway sim owa --listen 0.0.0.0:8443",
        "kubectl -n monosign-gateway create secret generic monosign-gateway",
        "docker compose --profile demo up",
        "# monosign-gateway not-a-command (a comment)",
        "out=$(monosign-gateway import-webconfig web.config)",
        "docker compose exec gateway monosign-gateway demo --help",
        "docker run --rm --name monosign-gateway monosign-gateway:local serve",
    ]))
    assert block.runnable
    assert mentioned_commands(block) == {("check",), ("sim", "owa"), ("import-webconfig",), ("demo",)}


@pytest.mark.parametrize("block", [b for b in SHELL_BLOCKS if mentioned_commands(b)], ids=str)
def test_every_mentioned_command_exists(block: Block) -> None:
    for command in sorted(mentioned_commands(block)):
        assert help_exit_status(command) == 0, f"{block}: `monosign-gateway {' '.join(command)}` is not a command"


@pytest.mark.parametrize("block", RUNNABLE, ids=str)
def test_runnable_blocks_run(block: Block, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONOSIGN_", "GATEWAY_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(["bash", "-c", f"set -euo pipefail\n{block.text}"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{block} failed:\n{result.stdout}\n{result.stderr}"
