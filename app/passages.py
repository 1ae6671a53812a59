"""How Compare shows a passage: as plain text (it is a person's data, so markdown, links and HTML in it show
as typed, never rendered) with the query's words highlighted, clipped to about three lines (``clipped``) so
the columns' results stay level, the whole passage one click away.

A query word is any word of the query except BM25's English stop words and the words questions are made
of ("how", "do", "my" ...) and contractions, so "tiny green bugs on my roses" marks "tiny", "green", "bugs" and "roses".
Matching ignores case and a plural "s", so "bug" in a passage matches "bugs" in the query.
"""

from __future__ import annotations

import re

from bm25s.stopwords import STOPWORDS_EN

from app.ui import plain

QUESTION_WORDS = {"how", "what", "why", "when", "where", "which", "who", "whom", "whose", "do", "does", "did",
                  "can", "could", "should", "would", "may", "might", "must", "have", "has", "had", "i", "me", "my",
                  "we", "our", "you", "your", "am", "been", "being", "were", "so", "too", "very", "any", "some",
                  "about", "from", "off", "out", "up", "over", "than", "all", "also", "get", "got"}
IGNORED = set(STOPWORDS_EN) | QUESTION_WORDS
WORD = re.compile(r"\w+(?:['’]\w+)*")  # "won't" is one word, not "won" and "t"
MARK = ":orange-background[{}]"
CLIP = 240  # characters of a result shown before "Whole passage": about three lines of a Compare column
SLACK = 60  # a passage at most this much longer than CLIP is shown whole: hiding one short line helps nobody


def stem(word: str) -> str:
    """Lower case, without a plural "s" (not of "ss"): "Bugs" and "bug" are one word, "grass" stays."""
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def query_words(query: str) -> set[str]:
    """The stems of the query's words worth marking in a passage."""
    return {stem(w) for w in WORD.findall(query) if len(w) > 1 and w.lower() not in IGNORED
            and "'" not in w and "’" not in w}  # a contraction ("won't", "don't") says little about a passage


def highlighted(text: str, words: set[str]) -> str:
    """``text`` as markdown that shows it as typed, with each word whose stem is in ``words`` highlighted."""
    text, parts, end = str(text), [], 0
    for match in WORD.finditer(text):
        if stem(match.group()) in words:
            parts += [plain(text[end:match.start()]), MARK.format(plain(match.group()))]
            end = match.end()
    parts.append(plain(text[end:]))
    return "".join(parts)


def clipped(text: str, limit: int = CLIP) -> str | None:
    """The start of ``text`` cut at the last word boundary within ``limit`` characters, or None when the
    whole passage is short enough to show (no longer than ``limit + SLACK``)."""
    text = str(text)
    if len(text) <= limit + SLACK:
        return None
    cut = text.rfind(" ", 0, limit + 1)
    return text[:cut if cut > 0 else limit].rstrip()
