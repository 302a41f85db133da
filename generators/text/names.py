"""First names in running text: a gazetteer (Faker's gendered first names per locale) read with
its context, so that a capitalised word is not taken for a name on its capital alone.

`NameBank.build(locales)` collects the names; `NameBank.find(text)` gives the (start, end, name)
of every first name the text uses as a name. A gazetteer word is a name when its context says
so (the rule NER gazetteer features use):

- a title stands before it (Mr, Ms, Dr, …), or another name follows it (a surname, which is
  never itself taken, even where it is also a first name: the Scott of "Michael Scott");
- it is capitalised inside a sentence, where a common word would be written in lower case;
- at the start of a sentence, where every word is capitalised, only when what follows is what
  follows a person: a verb of the kind reviews and tickets use (said, loved, returned, was, …),
  a possessive, or the same word appears as a name elsewhere in the text.

So "Luke warm soup." keeps its "Luke", and "Sarah says it broke." gives Sarah. Names that are
also common words (April, Will, Hope, …) are never taken. Names that are common words written
in lower case in running text (Mark, Jack, Frank, Drew: `LOWER_CASE_NAMES`) are names by the
rules above, except that at a sentence start the word after them is no evidence ("Mark is
faint", "Jack was loose" are about a mark and a jack), and where a sentence or clause opens
and what follows is what the verb takes (an article, a determiner, a pronoun or a particle:
"Mark the box", "…, Mark my words", "Jack up the price") they are never taken. So "I asked
Mark about it" and "Thanks, Mark." give Mark; "Mark said so." alone does not. Scripts written
without capitals or spaces (Japanese, Chinese) are matched only when the name stands alone as a
word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import faker

from synthgate.errors import InputError

GENDERS = ("female", "male")
DETECT_LOCALES = ("en_US", "de_DE", "es_ES", "fr_FR", "it_IT", "pt_BR", "hi_IN", "ja_JP")
# Combining marks (the accent of a decomposed "é", Devanagari vowel signs) belong to the word
# they follow, but Python's \w leaves them out: a decomposed "José" was the name "Jose", whose
# rewrite kept the accent ("Harold\u0301"), and a Hindi name fell apart. All but a few rare
# marks lie in the BMP, from U+0300 on.
MARKS = "".join(chr(c) for c in range(0x300, 0x10000) if unicodedata.category(chr(c))[0] == "M")
LETTER = f"[\\w{re.escape(MARKS)}]"
WORD = re.compile(f"{LETTER}+(?:['’-]{LETTER}+)*")
NOT_NAMES = frozenset(
    [
        "April",
        "May",
        "June",
        "August",
        "Will",
        "Hope",
        "Faith",
        "Grace",
        "Joy",
        "Bill",
        "Art",
        "Guy",
        "Summer",
        "Page",
        "Sunny",
        "Chance",
        "Say",
        "Love",
        "Dawn",
        "Star",
        "Sky",
        "Rich",
        "Holly",
        "Ivy",
        "Honey",
        "Angel",
        "Christian",
        "Sterling",
        "Rose",
        "Grant",
        "Pat",
        "Sandy",
        "Amber",
        "Ruby",
        "Crystal",
        "Iris",
        "Lily",
        "Daisy",
        "Autumn",
        "Brook",
        "Chase",
        "Cash",
        "Hunter",
        "Price",
        "Young",
        "King",
        "Miles",
        "Ray",
        "Don",
        "Van",
        "Rod",
        "Gay",
        "Lane",
        "Wade",
        "Ward",
        "Dean",
        "Hall",
        "Lake",
        "Bay",
        "Clay",
        "Stone",
        "Reed",
        "Rock",
        "Lucky",
        "Happy",
        "Merry",
        "Ever",
        "Worth",
        "Blue",
        "Gray",
        "Grey",
        "Green",
        "Brown",
        "White",
        "Black",
    ]
)
# Names that are verbs, nouns or adjectives in lower case: inside a sentence the capital marks
# the name, except where a clause opens and the word is followed by what the verb takes
# (`VERB_TAKES`); at a sentence start only a title, surname, possessive or the same name
# elsewhere does. (German writes its nouns capitalised: there "10 Mark" is still read a name.)
LOWER_CASE_NAMES = frozenset(["Mark", "Jack", "Frank", "Drew"])
VERB_TAKES = frozenset(
    [
        "the",
        "a",
        "an",
        "my",
        "your",
        "his",
        "her",
        "its",
        "our",
        "their",
        "this",
        "that",
        "these",
        "those",
        "it",
        "them",
        "me",
        "us",
        "him",
        "each",
        "every",
        "all",
        "some",
        "any",
        "up",
        "down",
        "off",
        "out",
        "as",
        "and",
        "or",
        "with",
        "at",
        "from",
        "in",
        "on",
        "to",
        "for",
    ]
)
TITLES = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "sir",
        "madam",
        "dame",
        "lady",
        "lord",
        "herr",
        "frau",
        "señor",
        "señora",
        "sr",
        "sra",
        "monsieur",
        "madame",
        "mme",
        "mlle",
        "signor",
        "signora",
    ]
)
# Words that follow a person at the start of a sentence: verbs of the kind reviews and support
# tickets use, and the few function words a subject takes ("Anna and I", "Tom, our waiter").
PERSON_FOLLOWERS = frozenset(
    [
        "said",
        "says",
        "told",
        "tells",
        "asked",
        "asks",
        "loved",
        "loves",
        "liked",
        "likes",
        "hated",
        "hates",
        "bought",
        "buys",
        "gave",
        "gives",
        "got",
        "gets",
        "thinks",
        "thought",
        "was",
        "is",
        "has",
        "had",
        "helped",
        "helps",
        "recommended",
        "recommends",
        "returned",
        "returns",
        "wants",
        "wanted",
        "uses",
        "used",
        "called",
        "calls",
        "came",
        "comes",
        "went",
        "goes",
        "made",
        "makes",
        "took",
        "takes",
        "sent",
        "sends",
        "promised",
        "promises",
        "replaced",
        "replaces",
        "ordered",
        "orders",
        "tried",
        "tries",
        "found",
        "finds",
        "wrote",
        "writes",
        "works",
        "worked",
        "did",
        "does",
        "will",
        "would",
        "could",
        "can",
        "should",
        "might",
        "must",
        # ... and their negations: tickets open with what a person cannot do
        "cannot",
        "can't",
        "couldn't",
        "won't",
        "wouldn't",
        "shouldn't",
        "doesn't",
        "didn't",
        "isn't",
        "wasn't",
        "hasn't",
        "hadn't",
        "and",
        "who",
        "also",
        "never",
        "always",
        "just",
        "really",
        "still",
        "brought",
        "brings",
        "served",
        "serves",
        "waited",
        "waits",
        "explained",
        "explains",
        "apologised",
        "apologized",
        "greeted",
        "checked",
        "fixed",
        "answered",
        "answers",
        "complained",
        "complains",
        "paid",
        "pays",
        "left",
        "leaves",
        "arrived",
        "arrives",
        "booked",
        "books",
        "needs",
        "needed",
        "knows",
        "knew",
        "sees",
        "saw",
        "says",
        "recommends",
        "emailed",
        "phoned",
        "refunded",
        "refused",
        "suggested",
        "suggests",
        "insisted",
        "insists",
        "at",
        "from",
        "with",
    ]
)
POSSESSIVE = re.compile(r"['’]s$")
SENTENCE_MARKS = ".!?…。！？"
CLAUSE_MARKS = ",;:–—-"
OPENING_QUOTES = "\"'“‘(["


def starts_sentence(text: str, position: int) -> bool:
    """Whether the word at `position` opens a sentence: the text before it is only opening
    quotes, or ends in a sentence mark, or in a line break, then whitespace, then opening quotes
    (the regex `(^|[.!?…。！？]\\s*|\\n\\s*)["'“‘(\\[]*$` on it). Read back only over those
    quotes and spaces: a search of the whole prefix per word made a row of thousands of names
    take seconds."""
    end = position
    while end and text[end - 1] in OPENING_QUOTES:
        end -= 1
    if end == 0:
        return True
    spaces_end = end
    while end and text[end - 1].isspace():
        end -= 1
    after_mark = end > 0 and text[end - 1] in SENTENCE_MARKS
    return after_mark or "\n" in text[end:spaces_end]


def opens_clause(text: str, position: int) -> bool:
    """Whether the word at `position` follows a comma, semicolon, colon or dash (whitespace and
    opening quotes between)."""
    end = position
    while end and (text[end - 1].isspace() or text[end - 1] in OPENING_QUOTES):
        end -= 1
    return end > 0 and text[end - 1] in CLAUSE_MARKS


@dataclass
class NameBank:
    """Gendered first names per locale, and who each name belongs to (first locale listed wins)."""

    names: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    owner: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def build(cls, locales: Iterable[str]) -> NameBank:
        bank = cls()
        for locale in dict.fromkeys([*locales, *DETECT_LOCALES]):
            try:
                fake = faker.Faker(locale)
            except AttributeError:
                raise InputError(
                    f"text.locales: unknown Faker locale {locale!r}; use one such as en_US, de_DE"
                ) from None
            person = next((p for p in fake.get_providers() if hasattr(p, "first_names_male")), None)
            if person is None:
                continue
            bank.names[locale] = {
                "female": sorted(set(person.first_names_female)),
                "male": sorted(set(person.first_names_male)),
            }
            for gender in GENDERS:
                for name in bank.names[locale][gender]:
                    if name not in NOT_NAMES:
                        bank.owner.setdefault(name, (locale, gender))
        return bank

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, name) of every first name the text uses as a name (see module doc)."""
        # Each word without a possessive 's: "Anna's" is the name Anna.
        words = [
            (m.start(), m.end() - (2 if POSSESSIVE.search(m.group()) else 0), m)
            for m in WORD.finditer(text)
        ]
        # The gazetteer spells names composed (NFC): "Jose\u0301" is its "José".
        tokens = [unicodedata.normalize("NFC", text[start:end]) for start, end, _ in words]
        found: set[int] = set()
        pending: list[int] = []
        for i, word in enumerate(tokens):
            if word not in self.owner or _follows_first_name(text, words, tokens, i, self.owner):
                continue  # not a name, or a surname that is also a first name ("Michael Scott")
            if word in LOWER_CASE_NAMES and _verb_opening(text, words, tokens, i):
                continue  # "Mark the box", "…, Mark my words"
            if not word.isascii() and not word[:1].isupper():
                found.add(i)  # a script without capitals: a whole word is all there is to go by
            elif not word[:1].isupper():
                continue
            elif _after_title(tokens, i) or _surname_follows(text, words, tokens, i, self.owner):
                found.add(i)
            elif not starts_sentence(text, words[i][0]):
                found.add(i)  # capitalised inside a sentence
            else:
                pending.append(i)
        named = {tokens[i] for i in found}
        for i in pending:
            # "can’t" as phones type it is "can't"
            following = tokens[i + 1].casefold().replace("’", "'") if i + 1 < len(tokens) else ""
            between = text[words[i][1] : words[i + 1][0]] if i + 1 < len(words) else ""
            if (
                # "Mark is faint", "Jack was loose": a noun takes these verbs too
                (following in PERSON_FOLLOWERS and tokens[i] not in LOWER_CASE_NAMES)
                or tokens[i] in named
                or words[i][1] < words[i][2].end()  # possessive
                or between.strip().startswith((",", ":"))
            ):
                found.add(i)
        return [(words[i][0], words[i][1], tokens[i]) for i in sorted(found)]


def _verb_opening(
    text: str, words: list[tuple[int, int, re.Match[str]]], tokens: list[str], i: int
) -> bool:
    """Word `i` opens a sentence or clause and is followed, across nothing but spaces, by what a
    verb takes: the verb, in an imperative or a clause, not the name ("Mark the box"; "Mark,
    the order never came" speaks to Mark)."""
    if i + 1 >= len(tokens) or not text[words[i][1] : words[i + 1][0]].isspace():
        return False
    start = words[i][0]
    following = tokens[i + 1].casefold()
    return following in VERB_TAKES and (starts_sentence(text, start) or opens_clause(text, start))


def _after_title(tokens: list[str], i: int) -> bool:
    return i > 0 and tokens[i - 1].casefold() in TITLES


def _surname_follows(
    text: str,
    words: list[tuple[int, int, re.Match[str]]],
    tokens: list[str],
    i: int,
    owner: dict[str, tuple[str, str]],
) -> bool:
    """A capitalised word right after the name (one space): a surname, even one that is also a
    first name (Scott, Taylor), as a first name right before it says."""
    if i + 1 >= len(tokens) or text[words[i][1] : words[i + 1][0]] != " ":
        return False
    word = tokens[i + 1]
    return (
        word[:1].isupper()
        and word.isalpha()
        and not _follows_first_name(text, words, tokens, i, owner)
    )


def _follows_first_name(
    text: str,
    words: list[tuple[int, int, re.Match[str]]],
    tokens: list[str],
    i: int,
    owner: dict[str, tuple[str, str]],
) -> bool:
    """Whether word `i` comes right after a capitalised first name (one space): a surname."""
    if i == 0 or text[words[i - 1][1] : words[i][0]] != " ":
        return False
    before = tokens[i - 1]
    return before in owner and before[:1].isupper() and words[i - 1][1] == words[i - 1][2].end()
