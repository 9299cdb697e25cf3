"""The Colab edition: the chapters with their MyST markup turned into the plain CommonMark that
Colab renders, code cells and their order unchanged.

Colab shows notebook Markdown as CommonMark with tables and $math$: a MyST role such as
{term}`ELBO`, a ``:::{admonition}`` fence or an ``{exercise}`` directive shows as raw text there.
Each becomes its plain equivalent: glossary terms and citations become links to the website's
glossary and bibliography, admonitions quoted blocks under a bold title, exercises numbered
headings, solutions a "Solution" heading above their ordinary, runnable cells; links between
chapters point at the website. The block structure is found with MyST's own parser
(markdown-it-py with mdit-py-plugins), so a fence is a fence exactly when the book build reads
one. The first code cell installs ``vae_utils`` at the commit the website was built from and
points the checkpoint cache at the models the website published.

    python _ext/colab_notebooks.py OUT_DIR --site URL --commit SHA [--built-site _build/html]
"""

from __future__ import annotations

import argparse
import copy
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

_ROLE = re.compile(r"\{(term|cite:p|cite:t|numref|doc|ref)\}`([^`]+)`")
_TARGET = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.S)
_CHAPTER_LINK = re.compile(r"\]\(((?:\.\./)?(?:book/)?([\w-]+)\.(?:ipynb|md))(#[^)]*)?\)")
_OPTION = re.compile(r"^:[\w-]+:(\s.*)?$")
DIRECTIVE_TITLES = {"note": "Note", "tip": "Tip", "warning": "Warning", "important": "Important",
                    "seealso": "See also", "hint": "Hint"}


def markdown_parser():
    """MyST's block and role syntax, as the book build reads it."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.colon_fence import colon_fence_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin
    from mdit_py_plugins.myst_role import myst_role_plugin

    return (MarkdownIt("commonmark").enable("table").use(colon_fence_plugin)
            .use(dollarmath_plugin).use(myst_role_plugin))


def myst_constructs(markdown: str) -> list[str]:
    """What of ``markdown`` Colab would show raw: MyST roles, colon fences, directive fences and
    directive option lines. The test counts these in the generated notebooks (goal: none)."""
    found = []
    for token in markdown_parser().parse(markdown):
        if token.type == "colon_fence":
            found.append(f"colon fence :::{token.info}")
        elif token.type == "fence" and token.info.startswith("{"):
            found.append(f"directive ```{token.info}")
        elif token.type == "inline":
            found += [f"role {{{c.meta.get('name')}}}" for c in token.children or []
                      if c.type == "myst_role"]
    code_free = re.sub(r"^```(?!\{).*?^```", "", markdown, flags=re.S | re.M)   # code, not directives
    found += [f"option {line.strip()}" for line in code_free.splitlines() if _OPTION.match(line.strip())]
    return found


class References:
    """Author-year text for citation keys, from book/references.bib."""

    def __init__(self, bib: Path = BOOK / "references.bib"):
        from pybtex.database import parse_file

        self.entries = parse_file(str(bib)).entries

    def names(self, key: str) -> tuple[str, str]:
        entry = self.entries[key]
        people = [p.last_names[-1] if p.last_names else str(p) for p in entry.persons.get("author", [])]
        people = [re.sub(r"[{}\\'\"`^~]", "", name) for name in people]
        names = (people[0] if len(people) == 1 else f"{people[0]} and {people[1]}"
                 if len(people) == 2 else f"{people[0]} et al.")
        return names, entry.fields.get("year", "")


class Converter:
    def __init__(self, site: str, glossary_anchors: dict[str, str], figure_numbers: dict[str, str]):
        self.site = site.rstrip("/") + "/"
        self.glossary_anchors = glossary_anchors
        self.figure_numbers = figure_numbers
        self.references = References()

    # --- inline --------------------------------------------------------------------------------
    def role(self, match: re.Match) -> str:
        name, content = match.group(1), match.group(2)
        if name == "term":
            target = _TARGET.match(content)
            text, term = (target.group(1), target.group(2)) if target else (content, content)
            anchor = self.glossary_anchors.get(term.strip().lower(), "")
            return f"[{text}]({self.site}book/glossary.html{'#' + anchor if anchor else ''})"
        if name in ("cite:p", "cite:t"):
            url = f"{self.site}book/further_reading.html"
            cited = []
            for key in (k.strip() for k in content.split(",")):
                names, year = self.references.names(key)
                cited.append(f"[{names} {year}]({url})" if name == "cite:p"
                             else f"[{names} ({year})]({url})")
            return "(" + "; ".join(cited) + ")" if name == "cite:p" else ", ".join(cited)
        if name == "numref":
            return f"Fig. {self.figure_numbers.get(content.strip(), '?')}"
        target = _TARGET.match(content)
        return target.group(1) if target else content

    def inline(self, text: str) -> str:
        """Roles and chapter links, outside code spans and maths (scanned left to right, so
        that a role's own backticks are not taken for a code span)."""
        scanner = re.compile(r"(?P<role>" + _ROLE.pattern + r")|(?P<code>`[^`\n]*`)"
                             r"|(?P<math>\$\$.*?\$\$|\$[^$\n]+\$)", re.S)

        def replace(match: re.Match) -> str:
            if match.group("role"):
                return self.role(_ROLE.match(match.group("role")))
            return match.group(0)

        text = scanner.sub(replace, text)
        return _CHAPTER_LINK.sub(lambda m: f"]({self.site}book/{m.group(2)}.html{m.group(3) or ''})",
                                 text)

    # --- blocks --------------------------------------------------------------------------------
    def directive(self, name: str, argument: str, body: str, exercises: dict) -> str:
        lines = body.splitlines()
        while lines and _OPTION.match(lines[0].strip()):
            option = lines.pop(0).strip()
            if option.startswith(":label:"):
                exercises.setdefault("label", option.split(":label:", 1)[1].strip())
        content = self.markdown("\n".join(lines).strip("\n"), exercises)
        if name == "exercise":
            exercises["count"] += 1
            label = exercises.pop("label", None)
            number = f"{exercises['chapter']}.{exercises['count']}"
            if label:
                exercises["labels"][label] = number
            return f"#### Exercise {number}: {self.inline(argument)}\n\n{content}".rstrip()
        if name == "solution-start":
            number = exercises["labels"].get(argument.strip(), "")
            return f"#### Solution to exercise {number}".rstrip()
        if name == "solution-end":
            return ""
        title = self.inline(argument) if argument else DIRECTIVE_TITLES.get(name, name.title())
        quoted = "\n".join(f"> {line}" if line else ">" for line in content.splitlines())
        return f"> **{title}**\n>\n{quoted}".rstrip()

    def markdown(self, text: str, exercises: dict) -> str:
        lines = text.splitlines()
        out, position = [], 0
        for token in markdown_parser().parse(text):
            if token.map is None or token.level != 0:
                continue
            start, end = token.map
            is_directive = token.type == "colon_fence" or (token.type == "fence"
                                                           and token.info.startswith("{"))
            if not is_directive:
                continue
            out.append(self.inline("\n".join(lines[position:start])))
            name, _, argument = token.info.strip()[1:].partition("}")
            out.append(self.directive(name, argument.strip(), token.content, exercises))
            position = end
        out.append(self.inline("\n".join(lines[position:])))
        return "\n".join(part for part in out).strip("\n")


SETUP = '''# Setup. In Colab, install the book's helper package `vae_utils` at the commit the website
# was built from, and use the models the website published instead of training them again
# (unset VAE_UTILS_PRETRAINED_URL, or pass pretrained=False to zoo.trained, to train here).
import os
import sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    %pip install --quiet "vae-utils @ git+{repository}@{commit}"
    os.environ.setdefault("VAE_UTILS_PRETRAINED_URL", "{site}")'''


def glossary_anchors(built_site: Path | None) -> dict[str, str]:
    """term (lowercase) -> its anchor on the website's glossary page."""
    if built_site is None or not (built_site / "book" / "glossary.html").is_file():
        return {}
    page = (built_site / "book" / "glossary.html").read_text()
    return {re.sub(r"<[^>]+>", "", text).strip().lower(): anchor
            for anchor, text in re.findall(r'<dt id="(term-[^"]+)">(.*?)<a class="headerlink"', page, re.S)}


def figure_numbers(chapters: list[Path]) -> dict[str, str]:
    """fig-name -> "3.2", numbered as the book numbers them (chapter, figure cell order)."""
    numbers = {}
    for chapter, path in enumerate(chapters, start=1):
        cells = json.loads(path.read_text())["cells"]
        figures = [c["metadata"]["mystnb"]["figure"]["name"] for c in cells
                   if "figure" in c.get("metadata", {}).get("mystnb", {})]
        numbers.update({name: f"{chapter}.{i}" for i, name in enumerate(figures, start=1)})
    return numbers


def chapters() -> list[Path]:
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def convert(path: Path, chapter: int, converter: Converter, setup: str) -> dict:
    notebook = json.loads(path.read_text())
    clean = copy.deepcopy(notebook)
    exercises = {"chapter": chapter, "count": 0, "labels": {}}
    cells, first_code = [], True
    for cell in clean["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            text = converter.markdown(source, exercises)
            if not text.strip():
                continue                          # a solution's closing fence: nothing to show
            cell["source"] = text.splitlines(True)
        elif first_code:
            cell["source"] = setup.splitlines(True)
            first_code = False
        cell["metadata"].pop("tags", None) if cell["cell_type"] == "markdown" else None
        cells.append(cell)
    clean["cells"] = cells
    return clean


def main() -> None:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--site", help="the website's address (default: the GitHub Pages "
                        "address of _config.yml's repository)")
    parser.add_argument("--commit", required=True, help="the commit the website was built from")
    parser.add_argument("--built-site", type=Path, default=ROOT / "_build" / "html")
    args = parser.parse_args()
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    if not args.site:
        owner, repository = config["repository"]["url"].rstrip("/").split("/")[-2:]
        args.site = f"https://{owner}.github.io/{repository}/"
    paths = chapters()
    converter = Converter(args.site, glossary_anchors(args.built_site), figure_numbers(paths))
    setup = SETUP.format(repository=config["repository"]["url"], commit=args.commit,
                         site=args.site.rstrip("/") + "/")
    for number, path in enumerate(paths, start=1):
        out = args.out / path.relative_to(ROOT)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(convert(path, number, converter, setup), indent=1,
                                  ensure_ascii=False) + "\n")
        print(f"{out}: {len(myst_constructs(chr(10).join(''.join(c['source']) for c in json.loads(out.read_text())['cells'] if c['cell_type'] == 'markdown')))} MyST constructs left")


if __name__ == "__main__":
    main()
