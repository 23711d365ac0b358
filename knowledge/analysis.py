"""Text to index terms, the same way for a page being indexed and a visitor's question.

Words are lowercased, common English words dropped, and the rest Snowball-stemmed
(PyStemmer), so "refunds", "refunded" and "refund" are one term. Terms longer than the
index column are cut, never refused.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import Stemmer

MAX_TERM_LENGTH = 64

# Letters and digits, kept together across inner apostrophes, dots and hyphens of
# identifiers ("don't", "e-mail", "v2.1"); the pieces of such a word are indexed too.
WORD = re.compile(r"\w+(?:[.'’\-]\w+)*")
PIECE = re.compile(r"[^\W_]+")

# Words too common to tell one passage from another, and the words visitors wrap a
# question in ("how do I", "can you", "do you sell"): pages rarely say them, so they
# would count against a page that answers.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
    few for from further had hadn't has hasn't have haven't having he her here hers herself him himself his how
    i i'm if in into is isn't it it's its itself just let's me more most mustn't my myself no nor not of off on
    once only or other ought our ours ourselves out over own same she should shouldn't so some such than that
    that's the their theirs them themselves then there there's these they they're this those through to too
    under until up very was wasn't we we're were weren't what what's when where which while who whom why with
    won't would wouldn't you you're your yours yourself yourselves please tell hi hello thanks thank hey ok okay
    get got also any anything something someone much many sell sells offer offers carry stock buy
    """.split()
)

# "two people" finds "2-person": small numbers are indexed as digits.
NUMBERS = dict(zip("one two three four five six seven eight nine ten".split(), map(str, range(1, 11)), strict=True))


@lru_cache(maxsize=1)
def stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


# Markdown's backslash escapes ("on\\_delete"): the word is the same without them.
ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>])")


def words(text: str) -> list[str]:
    """The words of ``text``, lowercased, with the pieces of compound words after them."""
    found = []
    for match in WORD.finditer(ESCAPE.sub(r"\1", text).lower()):
        word = match.group().replace("’", "'")
        if word in STOPWORDS:
            continue
        pieces = PIECE.findall(word)
        if len(pieces) == 1:
            found.append(NUMBERS.get(pieces[0], pieces[0]))
            continue
        found.append(word)
        found.extend(piece for piece in pieces if piece not in STOPWORDS)
    return found


def terms(text: str) -> list[str]:
    """Index terms of ``text``, in order, repeated as often as they occur."""
    return [term[:MAX_TERM_LENGTH] for term in stemmer().stemWords(words(text)) if term]


def term_counts(text: str) -> Counter[str]:
    return Counter(terms(text))
