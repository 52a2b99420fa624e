"""The documentation's commands still parse, its links resolve, and the README stays a front door.

Every shell line of a fenced code block in README.md and docs/*.md that starts with `tsattn `,
`.venv/bin/tsattn ` or `make train` is checked in-process, without training anything and without
subprocesses:

- `tsattn forecast|backtest|compare|dashboard ...`: parsed by the subcommand's own argparse parser
  (`tsattn.commands.<name>.parser()`);
- `tsattn train ...` and `make train ARGS="..."`: parsed by Hydra's command-line parser (the one
  `tsattn train` hands its arguments to), then every override is composed with tsattn's config
  (`tsattn.config.compose`), so a misspelled group, option or key fails. A sweep (`-m`) is composed once per
  value of its longest list, every list advancing together, so every value of every list is composed once.

Transcript lines (`$ tsattn ...` followed by the error they print, in docs/data.md) show mistakes on
purpose and are not checked. Lines that use the shell beyond a simple command (pipes, redirections,
substitutions) are skipped, since they cannot be split into arguments without a shell.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 320

# Placeholders written in the documented commands, and what each stands for when the line is parsed.
PLACEHOLDERS = {"<run id>": "0123456789abcdef0123456789abcdef", "<run_id>": "0123456789abcdef0123456789abcdef"}

COMMAND_START = re.compile(r"^(?:\.venv/bin/)?tsattn\s|^make\s+train\b")
FENCE = re.compile(r"^\s*(```+|~~~+)")
SHELL_OPERATORS = set("();<>|&")


@dataclass(frozen=True)
class Command:
    page: Path
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


def fenced_lines(page: Path):
    """(line number, line) of every line inside a fenced code block; a line ending in \\ joins the next."""
    inside, fence, pending, start = False, "", "", 0
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        opening = FENCE.match(line)
        if opening and not inside:
            inside, fence = True, opening.group(1)
            continue
        if inside and line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            inside = False  # the closing fence: the opening's characters alone
            continue
        if not inside:
            continue
        if pending:
            line, number = pending + " " + line.strip(), start
            pending = ""
        if line.rstrip().endswith("\\"):
            pending, start = line.rstrip()[:-1].rstrip(), number
            continue
        yield number, line


def documented_commands() -> list[Command]:
    return [
        Command(page, number, line.strip())
        for page in PAGES
        for number, line in fenced_lines(page)
        if COMMAND_START.match(line.strip())
    ]


COMMANDS = documented_commands()


def words(command: Command) -> list[str] | None:
    """The command's words, comments removed and placeholders filled in; None for a non-simple shell line."""
    text = command.text
    for placeholder in re.findall(r"<[A-Za-z_ ]+>", text):
        if placeholder not in PLACEHOLDERS:
            pytest.fail(f"{command}\n  the placeholder {placeholder} has no value in PLACEHOLDERS ({__file__})")
        text = text.replace(placeholder, PLACEHOLDERS[placeholder])
    if "$(" in text or "`" in text:
        return None
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        split = list(lexer)
    except ValueError as err:  # unbalanced quotes
        pytest.fail(f"{command}\n  the shell cannot split it: {err}")
    if any(word and set(word) <= SHELL_OPERATORS for word in split):
        return None
    return split


def subcommands() -> list[str]:
    """The commands `tsattn --help` names."""
    from tsattn.cli import USAGE

    return re.search(r"\{([\w,]+)\}", USAGE).group(1).split(",")


def subcommand_parser(name: str):
    return importlib.import_module(f"tsattn.commands.{name}").parser()


@pytest.fixture
def hydra_config_restored():
    """compose() sets Hydra's global config (read by tsattn's resolvers); later tests get back what was there."""
    from hydra.core.hydra_config import HydraConfig

    before = HydraConfig.instance().cfg
    yield
    HydraConfig.instance().cfg = before


@functools.cache
def composition_error(overrides: tuple[str, ...]) -> str | None:
    """Why tsattn's config does not compose with these overrides; None when it does."""
    from tsattn.config import compose

    try:
        compose(list(overrides))
    except Exception as err:  # Hydra's composition and parse errors, OmegaConf's key errors
        return f"{type(err).__name__}: {' '.join(str(err).split())}"
    return None


def compositions(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The override lists a run or sweep composes: one per value of the longest sweep list."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import IntervalSweep

    choices = []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices.append([override.input_line])
        elif override.is_discrete_sweep():
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        elif isinstance(override.value(), IntervalSweep):  # sampled by a sweeper (Optuna): compose the lower end
            choices.append([f"{key}={override.value().start}"])
        else:
            raise ValueError(f"{override.input_line}: a sweep this test cannot enumerate")
    mode = ["hydra.mode=MULTIRUN"] if multirun else []
    runs = max((len(values) for values in choices), default=1)
    return [[values[i % len(values)] for values in choices] + mode for i in range(runs)]


def check_train(command: Command, arguments: list[str]) -> None:
    # The parser hydra.main() reads sys.argv with (-m, --cfg, --help and the overrides); a private name of
    # Hydra's, but the one place its command line is defined.
    from hydra._internal.utils import get_args_parser

    complaint = io.StringIO()
    try:
        with contextlib.redirect_stderr(complaint):
            parsed = get_args_parser().parse_args(arguments)
    except SystemExit:
        message = complaint.getvalue().strip().splitlines()[-1:]
        pytest.fail(f"{command}\n  Hydra's command line refuses it: {' '.join(message)}")
    try:
        runs = compositions(parsed.overrides, parsed.multirun)
        error = None
    except Exception as err:
        error = f"{type(err).__name__}: {' '.join(str(err).split())}"
    if error:
        pytest.fail(f"{command}\n  the overrides do not parse: {error}")
    for overrides in runs:
        error = composition_error(tuple(overrides))
        if error:
            pytest.fail(f"{command}\n  does not compose with tsattn's config ({' '.join(overrides)}):\n  {error}")


def check_subcommand(command: Command, name: str, arguments: list[str]) -> None:
    from tsattn.errors import TsattnError

    error = None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            subcommand_parser(name).parse_args(arguments)
    except TsattnError as err:  # tsattn's ArgumentParser turns argparse's errors into one line
        error = str(err)
    except SystemExit as done:  # --help
        if done.code not in (0, None):
            error = f"exits with {done.code}"
    if error:
        pytest.fail(f"{command}\n  {error}")


@pytest.mark.parametrize("command", COMMANDS, ids=[c.where for c in COMMANDS])
def test_documented_command_parses(command: Command, hydra_config_restored):
    split = words(command)
    if split is None:
        pytest.skip(f"{command}: uses the shell beyond a simple command")
    if split[0] == "make":
        # make train ARGS="...": the overrides are in ARGS; other variables are make's own.
        arguments = [w for word in split[2:] if word.startswith("ARGS=") for w in shlex.split(word[5:])]
        check_train(command, arguments)
        return
    arguments = split[1:]
    if not arguments or arguments[0] in ("-h", "--help", "--version"):
        return
    name, rest = arguments[0], arguments[1:]
    if name not in subcommands():
        pytest.fail(f"{command}\n  tsattn has no command {name!r}; it has: {', '.join(subcommands())}")
    if name == "train":
        check_train(command, rest)
    else:
        check_subcommand(command, name, rest)


def test_every_command_is_documented_with_an_example():
    """The extraction above finds commands at all: each subcommand and `make train` has a checked example."""
    found = {split[1] for split in map(words, COMMANDS) if split and len(split) > 1}
    missing = [name for name in [*subcommands(), "train"] if name not in found]
    assert not missing, f"no documented example of: {', '.join(missing)}"


def section(text: str, title: str) -> str:
    """The text under the heading `title` up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(title)}\s*$", text, flags=re.M)
    assert match, f"no heading {title!r}"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", flags=re.M).search(text, match.end())
    return text[match.end() : end.start() if end else len(text)]


def test_cli_page_names_every_option_of_every_command():
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = []
    for name in subcommands():
        if name == "train":
            continue  # Hydra overrides: see test_configuration_page_names_every_option
        body = section(text, f"`tsattn {name}`")
        for action in subcommand_parser(name)._actions:
            names = action.option_strings or [action.dest.upper()]
            if "--help" in names:
                continue
            if not any(f"`{option}`" in body for option in names):
                missing.append(f"tsattn {name} {'/'.join(names)}")
    assert not missing, "docs/cli.md does not document: " + ", ".join(missing)


def test_configuration_page_names_every_option():
    """Every option of every config group in conf/ is named in docs/configuration.md."""
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    conf = REPO / "conf"
    missing = []
    for path in sorted(conf.rglob("*.yaml")):
        if path.parent == conf:
            continue  # train.yaml, the primary config
        group, option = path.parent.relative_to(conf).as_posix(), path.stem
        if f"`{option}`" not in text and f"{group}={option}" not in text:
            missing.append(f"{group}={option}")
    assert not missing, "docs/configuration.md does not name: " + ", ".join(missing)


def github_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a page (outside code blocks)."""
    anchors: dict[str, int] = {}
    inside = False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if inside or not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        count = anchors.get(slug, 0)
        anchors[slug] = count + 1
        if count:
            anchors[f"{slug}-{count}"] = 1
    return set(anchors)


def prose(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code, with inline code spans blanked out."""
    lines, inside = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            lines.append((number, re.sub(r"`[^`]*`", "``", line)))
    return lines


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def documented_links() -> list[tuple[Path, int, str]]:
    return [
        (page, number, target)
        for page in PAGES
        for number, line in prose(page.read_text(encoding="utf-8"))
        for target in LINK.findall(line)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


LINKS = documented_links()


def test_relative_links_resolve():
    """Every relative link (and its #anchor, where it has one) points at an existing file and heading."""
    broken = []
    for page, number, target in LINKS:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(REPO)}:{number}: ({target})"
        if not file.exists():
            broken.append(f"{where}: no file {file.relative_to(REPO) if file.is_relative_to(REPO) else file}")
        elif anchor and file.suffix == ".md" and anchor not in github_anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{where}: {file.name} has no heading #{anchor}")
    assert LINKS, "no links found: the extraction is broken"
    assert not broken, "broken links:\n" + "\n".join(broken)


REPO_PATH = re.compile(
    r"(?<![\w./:-])((?:tsattn|conf|benchmarks|tests|dashboards|hydra_plugins|data|docs|\.ci)/[\w./-]*[\w/])"
)


def test_repository_paths_named_in_the_docs_exist():
    """Files and folders the pages name (`tsattn/inference/pyfunc.py`, `conf/data/csv.yaml`) exist."""
    missing = []
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
            for path in REPO_PATH.findall(line):
                named = path.endswith("/") or re.search(r"\.\w+$", path.rsplit("/", 1)[-1])
                if named and not (REPO / path).exists():
                    missing.append(f"{page.relative_to(REPO)}:{number}: {path}")
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)


def test_architecture_page_names_every_module():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = [p.relative_to(REPO).as_posix() for p in sorted((REPO / "tsattn").rglob("*.py"))]
    missing = [m for m in modules if not m.endswith("/__init__.py") and m not in text]
    assert not missing, "docs/architecture.md's layout does not name: " + ", ".join(missing)


def test_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move reference material to docs/"
    for page in PAGES[1:]:
        assert f"({page.relative_to(REPO).as_posix()})" in "\n".join(lines), f"README.md does not link {page.name}"
