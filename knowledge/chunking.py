"""Cut a page's Markdown into passages at its headings.

A passage should answer one question and carry where it came from: each chunk is the
text under one heading (a few hundred tokens at most), with the path of headings above
it ("Returns > Damaged items"), so a passage read alone in a prompt, or shown as a
source, still says what it is about. A section too long for one chunk is cut between
paragraphs (a paragraph longer than a chunk, between sentences); a heading with no text
of its own only lends its name to the sections under it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conversations.tokens import estimate_tokens

MAX_CHUNK_TOKENS = 350
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class ChunkDraft:
    heading: str
    text: str


def chunk_markdown(*, title: str, markdown: str) -> list[ChunkDraft]:
    chunks: list[ChunkDraft] = []
    for path, body in sections(markdown):
        if path and path[0] == title:
            path = path[1:]  # the page's own title heads every chunk already
        heading = " > ".join(path)
        chunks.extend(ChunkDraft(heading=heading, text=piece) for piece in pieces(body))
    return chunks


def sections(markdown: str) -> list[tuple[list[str], str]]:
    """(heading path, text) for each run of text between headings, in order."""
    found: list[tuple[list[str], str]] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def flush():
        text = "\n".join(lines).strip()
        if text:
            found.append(([name for _, name in path], text))
        lines.clear()

    for line in markdown.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else HEADING.match(line)
        if heading is None:
            lines.append(line)
            continue
        flush()
        level, name = len(heading.group(1)), heading.group(2).strip()
        path = [(lvl, n) for lvl, n in path if lvl < level] + [(level, name)]
    flush()
    return found


def pieces(text: str) -> list[str]:
    """``text`` whole if it fits one chunk, else cut between paragraphs (or sentences)."""
    if estimate_tokens(text) <= MAX_CHUNK_TOKENS:
        return [text]
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if estimate_tokens(paragraph) <= MAX_CHUNK_TOKENS:
            units.append(paragraph)
        else:
            units.extend(hard_split(paragraph))
    packed: list[str] = []
    current: list[str] = []
    for unit in units:
        if current and estimate_tokens("\n\n".join([*current, unit])) > MAX_CHUNK_TOKENS:
            packed.append("\n\n".join(current))
            current = []
        current.append(unit)
    if current:
        packed.append("\n\n".join(current))
    return packed


def hard_split(paragraph: str) -> list[str]:
    """A paragraph too long for one chunk, cut between sentences, or by length at worst."""
    budget = (MAX_CHUNK_TOKENS - 10) * 4
    out: list[str] = []
    current = ""
    for sentence in SENTENCE_END.split(paragraph):
        while len(sentence) > budget:
            out.append(sentence[:budget])
            sentence = sentence[budget:]
        if current and len(current) + 1 + len(sentence) > budget:
            out.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    if current:
        out.append(current)
    return out
