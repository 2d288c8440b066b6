"""The documents stay true to the code: README's commands run as written (every script exists and
accepts every flag given to it), README stays a front door, every relative link resolves, and the
headline numbers match the logs they link to."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 210
# Scripts that hand their extra arguments to another script's parser.
FLAGS_GO_TO = {"scripts/quick_start.sh": "scripts/train_vla.py"}
SEPARATORS = {";", "&&", "||", "|", "&", "do", "done", "then", "fi"}


def fenced_blocks(text: str, languages=("bash", "sh", "shell", "console")) -> list[str]:
    """The bodies of ```lang fenced blocks in `text`."""
    pattern = r"^```(\w*)[^\n]*\n(.*?)^```"
    return [body for lang, body in re.findall(pattern, text, flags=re.S | re.M) if lang in languages]


def shell_commands(block: str) -> list[list[str]]:
    """Each logical line of a shell block (backslash continuations joined, comments dropped) split
    into simple commands: [[token, ...], ...]."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        for token in lexer:
            if token in SEPARATORS:
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(token)
        if current:
            commands.append(current)
    return commands


def script_invocations(text: str) -> list[tuple[str, list[str], str]]:
    """(script path, --flags given to it, the command) for every scripts/X.py|sh in README's shell
    blocks, whoever launches it (python, bash, accelerate launch)."""
    found = []
    for block in fenced_blocks(text):
        for command in shell_commands(block):
            for i, token in enumerate(command):
                if re.fullmatch(r"scripts/[\w.-]+\.(py|sh)", token):
                    flags = [t.strip("[]").split("=", 1)[0] for t in command[i + 1:] if t.strip("[]").startswith("--")]
                    found.append((token, flags, " ".join(command)))
                    break
    return found


def test_readme_command_parser_finds_scripts_and_flags():
    text = "```bash\npython scripts/a.py --x 1 --y=2 # --not_a_flag\nfor r in a b; do bash scripts/b.sh c \\\n  --z; done\n```\n"
    assert script_invocations(text) == [("scripts/a.py", ["--x", "--y"], "python scripts/a.py --x 1 --y=2"),
                                        ("scripts/b.sh", ["--z"], "bash scripts/b.sh c --z")]


def help_texts(scripts: set[str]) -> dict[str, str]:
    """`python SCRIPT --help` of each script, run in parallel."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = {s: subprocess.Popen([sys.executable, str(ROOT / s), "--help"], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for s in scripts}
    out = {}
    for script, proc in procs.items():
        text, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{script} --help failed:\n{text}"
        out[script] = text
    return out


def test_every_readme_command_names_a_script_that_exists_and_flags_it_accepts():
    invocations = script_invocations(README.read_text())
    assert len(invocations) >= 10, "README's shell blocks should show the main commands"
    missing = sorted({s for s, _, _ in invocations if not (ROOT / s).is_file()})
    assert not missing, f"README runs scripts that do not exist: {missing}"
    parsers = {FLAGS_GO_TO.get(s, s) for s, flags, _ in invocations if flags}
    unknown_parser = sorted(p for p in parsers if not p.endswith(".py"))
    assert not unknown_parser, f"README passes flags to {unknown_parser}; add where they go to FLAGS_GO_TO"
    helps = help_texts(parsers)
    wrong = []
    for script, flags, command in invocations:
        accepted = helps.get(FLAGS_GO_TO.get(script, script), "")
        for flag in flags:
            if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", accepted):
                wrong.append(f"{flag} in: {command}")
    assert not wrong, "README uses flags the scripts do not accept:\n" + "\n".join(wrong)


def test_readme_configs_exist():
    from vggt_vla.config import NAMED_CONFIGS

    text = README.read_text()
    for name in re.findall(r"--config (\S+)", text):
        assert name in NAMED_CONFIGS or (ROOT / name).is_file(), f"README: --config {name} is neither named nor a file"
    for path in re.findall(r"\bconfigs/[\w.-]+\.yaml\b", text):
        assert (ROOT / path).is_file(), f"README names {path}, which does not exist"
    table = [line for line in text.splitlines() if line.startswith("| `")]
    listed = {m.group(1) for line in table if (m := re.match(r"\| `([\w-]+)` \| `configs/", line))}
    assert listed == set(NAMED_CONFIGS), f"README's config table lists {sorted(listed)}, NAMED_CONFIGS has {sorted(NAMED_CONFIGS)}"
    for name, file in NAMED_CONFIGS.items():
        assert f"| `{name}` | `configs/{file}` |" in text, f"README's config table: {name} should point at configs/{file}"


def test_readme_is_a_front_door():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; keep it <= {MAX_README_LINES} and move detail to docs/"


# ------------------------------------------------------------------------------- links
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def documents() -> list[Path]:
    return [README, ROOT / "ARCHITECTURE_ANALYSIS.md", *sorted((ROOT / "docs").rglob("*.md"))]


def prose(text: str) -> str:
    """Markdown without fenced code blocks and inline code, where link syntax is not a link."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, seen = set(), {}
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", prose(path.read_text()), flags=re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def test_anchor_slugs_follow_github():
    assert slug("7. Does it learn? The demo recipe") == "7-does-it-learn-the-demo-recipe"
    assert slug("`simple`: patch embedding + simple backbone") == "simple-patch-embedding--simple-backbone"
    assert slug("libero_cpu: a policy trained here (2026-12-01)") == "libero_cpu-a-policy-trained-here-2026-12-01"


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in LINK.findall(prose(path.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading '{anchor}' in {dest.name})")
    return broken


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    broken = broken_links(path)
    assert not broken, f"{path.relative_to(ROOT)} links to: {broken}"


def test_broken_links_are_found(tmp_path):
    (tmp_path / "there.md").write_text("# A heading\n")
    doc = tmp_path / "doc.md"
    doc.write_text("[ok](there.md) [ok](there.md#a-heading) [web](https://x.y/z) `[code](nowhere.md)`\n"
                   "[gone](missing.md) [bad anchor](there.md#no-such)\n")
    assert broken_links(doc) == ["missing.md (no such file)", "there.md#no-such (no heading 'no-such' in there.md)"]


def test_code_and_configs_point_at_documents_that_exist():
    """Comments and YAML headers link the logs and docs by path; those paths must exist, and no
    reference to ARCHITECTURE_ANALYSIS.md's old numbered sections remains."""
    files = [*ROOT.glob("configs/*.yaml"), *ROOT.glob("scripts/*"), *(ROOT / "vggt_vla").rglob("*.py")]
    missing, stale = [], []
    for f in files:
        if not f.is_file():
            continue
        text = f.read_text(errors="replace")
        for ref in re.findall(r"\bdocs/[\w./-]+\.md\b", text):
            if not (ROOT / ref).is_file():
                missing.append(f"{f.relative_to(ROOT)}: {ref}")
        if re.search(r"ARCHITECTURE_ANALYSIS\.md,? section \d", text):
            stale.append(str(f.relative_to(ROOT)))
    assert not missing, f"these documents do not exist: {missing}"
    assert not stale, f"ARCHITECTURE_ANALYSIS.md has no numbered sections any more; link docs/ instead: {stale}"


# ------------------------------------------------------------------------------- headline numbers
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?%?")


def headline_rows(text: str) -> list[tuple[str, str]]:
    """(the row's text without its links, the log it links to) for README table rows linking a log."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        logs = re.findall(r"\]\((docs/experiments/[^)#]+)", line)
        if logs:
            rows.append((LINK.sub("", line), logs[0]))
    return rows


def test_headline_numbers_are_the_ones_in_the_logs():
    """A number README shows must appear in the log it links to (the log is where it was measured)."""
    rows = headline_rows(README.read_text())
    assert rows, "README should have a results table whose rows link the logs"
    wrong = []
    for row, log in rows:
        log_text = re.sub(r"[*\s]+", " ", (ROOT / log).read_text())
        for number in NUMBER.findall(row):
            if number not in log_text:
                wrong.append(f"{number} (row: {row.strip()[:60]}...) not in {log}")
    assert not wrong, "\n".join(wrong)
