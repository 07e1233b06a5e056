"""Pure parsers for the free-text cells of AMAP directories (days, hours, statuses, products).

Nothing here touches the database: the importer calls these on each cell and decides what
to keep. Every parser accepts any string and never raises; what it cannot read is handed
back as a note so that no information is lost.
"""

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from geo.text import strip_accents

WEEKDAY_WORDS: dict[str, int] = {
    "lundi": 1,
    "mardi": 2,
    "mercredi": 3,
    "jeudi": 4,
    "vendredi": 5,
    "samedi": 6,
    "dimanche": 7,
    # Abbreviations seen in "14h-16h (mer) / 17h-19h (ven)".
    "lun": 1,
    "mar": 2,
    "mer": 3,
    "jeu": 4,
    "ven": 5,
    "sam": 6,
    "dim": 7,
}
_FULL_WEEKDAY_WORDS = {word for word in WEEKDAY_WORDS if len(word) > 3}
# Words that only join days: "Mardi + Jeudi", "Mardi et Vendredi", "lundi, jeudi".
_JOINERS = {"et", "ou"}

FORTNIGHTLY = "fortnightly"
MONTHLY = "monthly"
WEEKLY = "weekly"

_FORTNIGHTLY_PATTERNS = (
    r"\bsur deux\b",
    r"\bsur 2\b",
    r"\b15 jours\b",
    r"\bquinze jours\b",
    r"\bquinzaine\b",
    r"\bdeux semaines\b",
    r"\b2 semaines\b",
    r"\bbimensuel",
    r"^/ ?15 ?j",
)
_MONTHLY_PATTERNS = (r"\bdu mois\b", r"\bpar mois\b", r"\bmensuel", r"\b1 ?/ ?mois\b", r"\bchaque mois\b")
_WEEKLY_PATTERNS = (r"\bhebdo", r"\bchaque semaine\b", r"\btoutes les semaines\b", r"\bweekly\b")


def fold(text: str) -> str:
    """Lower case, no accents, œ → oe: the form every comparison here works on."""
    return strip_accents(str(text)).lower().strip()


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text))


def frequency_in(text: str) -> str | None:
    """ "tous les 15 jours" → fortnightly, "1 / mois" → monthly, "hebdo" → weekly, else None."""
    folded = fold(text)
    for patterns, frequency in (
        (_FORTNIGHTLY_PATTERNS, FORTNIGHTLY),
        (_MONTHLY_PATTERNS, MONTHLY),
        (_WEEKLY_PATTERNS, WEEKLY),
    ):
        if any(re.search(pattern, folded) for pattern in patterns):
            return frequency
    return None


@dataclass(frozen=True)
class WeekdaysParse:
    weekdays: list[int]
    frequency: str | None = None
    # The original text when it said more than a list of days ("3ieme vendredi du mois").
    note: str = ""


def parse_weekdays(text: str | None) -> WeekdaysParse:
    """ "Mardi + Jeudi" → [2, 4]; anything beyond plain day names is kept as a note."""
    text = (text or "").strip()
    if not text:
        return WeekdaysParse(weekdays=[])
    tokens = words_of(text)
    days: list[int] = []
    clean = True
    for token in tokens:
        # A bare "mar"/"mer" only counts as a day inside a longer text: "mer" alone is the sea.
        if token in _FULL_WEEKDAY_WORDS or (token in WEEKDAY_WORDS and len(tokens) > 1):
            if WEEKDAY_WORDS[token] not in days:
                days.append(WEEKDAY_WORDS[token])
            if token not in _FULL_WEEKDAY_WORDS:
                clean = False
        elif token not in _JOINERS:
            clean = False
    if re.search(r"[^\w\s+,&/-]", text, flags=re.UNICODE):
        clean = False  # brackets, question marks…: the text carries a nuance
    frequency = frequency_in(text)
    if frequency == MONTHLY and len(days) > 1:
        frequency = None  # "Lundi et 3ieme vendredi du mois": only one of the days is monthly
    note = "" if clean and days else text
    return WeekdaysParse(weekdays=sorted(days), frequency=frequency, note=note)


@dataclass(frozen=True)
class HoursParse:
    start: dt.time | None = None
    end: dt.time | None = None
    frequency: str | None = None
    note: str = ""


_TIME = r"(\d{1,2})\s*(?:h|:|\.)\s*(\d{2})?"
_TIME_RE = re.compile(_TIME, flags=re.IGNORECASE)
_RANGE_RE = re.compile(_TIME + r"\s*(?:-|–|—|à|a)\s*" + _TIME, flags=re.IGNORECASE)


def _make_time(hours: str, minutes: str | None) -> dt.time | None:
    hour, minute = int(hours), int(minutes or 0)
    if hour == 24 and minute == 0:
        return None
    if 0 <= hour <= 23 and 0 <= minute <= 59:
        return dt.time(hour, minute)
    return None


def parse_hours(text: str | None) -> HoursParse:
    """ "18h30-19h30" → 18:30–19:30; extra words become a note ("(tous les 15 jours)")."""
    text = (text or "").strip()
    if not text:
        return HoursParse()
    frequency = frequency_in(text)
    start = end = None
    rest = text
    match = _RANGE_RE.search(text)
    if match:
        start = _make_time(match.group(1), match.group(2))
        end = _make_time(match.group(3), match.group(4))
        if start is None or end is None or end <= start:
            start = end = None
        else:
            rest = text[: match.start()] + text[match.end() :]
    if start is None and not match:  # a reversed range ("19h30-18h00") is left for a person to fix
        single = _TIME_RE.search(text)
        if single and (single.group(2) or "h" in single.group(0).lower()):
            start = _make_time(single.group(1), single.group(2))
            if start is not None:
                rest = text[: single.start()] + text[single.end() :]
    leftover = re.sub(r"[\s()\[\],;.]+", " ", rest).strip()
    if start is not None and frequency is not None and not _TIME_RE.search(leftover):
        # "(tous les 15 jours)" is fully captured by the frequency.
        leftover = ""
    note = text if leftover or start is None else ""
    return HoursParse(start=start, end=end, frequency=frequency, note=note)


STATUS_WORDS: dict[str, str] = {
    "": "active",
    "actif": "active",
    "active": "active",
    "en activite": "active",
    "ouvert": "active",
    "ouverte": "active",
    "ferme": "closed",
    "fermee": "closed",
    "closed": "closed",
    "dissous": "closed",
    "dissoute": "closed",
    "desabonne": "dormant",
    "desabonnee": "dormant",
    "en sommeil": "dormant",
    "sommeil": "dormant",
    "inactif": "dormant",
    "inactive": "dormant",
    "dormant": "dormant",
    "en creation": "creating",
    "creation": "creating",
    "en projet": "creating",
    "projet": "creating",
    "creating": "creating",
}


def parse_status(text: str | None) -> str | None:
    """ "actif"/"" → active, "fermé" → closed, "désabonné" → dormant; None when unknown."""
    key = " ".join(words_of(text or ""))
    return STATUS_WORDS.get(key)


ACCEPTING_WORDS: dict[str, str] = {
    "": "unknown",
    "non precise": "unknown",
    "inconnu": "unknown",
    "ouvert": "open",
    "ouverte": "open",
    "oui": "open",
    "open": "open",
    "accepte de nouveaux membres": "open",
    "places disponibles": "open",
    "liste d attente": "waiting_list",
    "waiting list": "waiting_list",
    "complet": "full",
    "complete": "full",
    "full": "full",
    "non": "full",
}


def parse_accepting(text: str | None) -> str | None:
    """Whether an AMAP takes new members: "ouvert" → open, "liste d'attente" → waiting_list, "complet" → full."""
    return ACCEPTING_WORDS.get(" ".join(words_of(text or "")))


def parse_date(text: str | None) -> dt.date | None:
    """ISO, French (25/12/2013) or year-only dates; None when unreadable."""
    text = (text or "").strip()
    if not text:
        return None
    text = text.split("T")[0].split(" ")[0]
    for pattern in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    if re.fullmatch(r"(19|20)\d{2}", text):
        return dt.date(int(text), 1, 1)
    return None


def split_ids(text: str | None) -> list[str]:
    """ "A|B | C" → ["A", "B", "C"] (also ; and , separators), without duplicates."""
    parts = re.split(r"[|;,\n]", text or "")
    seen: list[str] = []
    for part in parts:
        part = part.strip()
        if part and part not in seen:
            seen.append(part)
    return seen


def looks_like_url(text: str) -> bool:
    return bool(re.match(r"^(https?://|www\.)", text.strip(), flags=re.IGNORECASE))


def normalize_postal_code(value: str | None) -> str:
    """ "33130", "33 130", "1000" (lost leading zero) → 5 digits; "" when it is not a code."""
    digits = re.sub(r"\s", "", value or "")
    if re.fullmatch(r"\d{4}", digits):
        digits = "0" + digits
    return digits if re.fullmatch(r"\d{5}", digits) else ""


def normalize_insee(value: str | None) -> str:
    code = (value or "").strip().upper()
    if re.fullmatch(r"\d{4}", code):
        code = "0" + code
    return code if re.fullmatch(r"\d[0-9AB]\d{3}", code) else ""


# --- products ---------------------------------------------------------------------------


def _singular(word: str) -> str:
    # Enough for product words: "volailles" → "volaille", "noix" → "noi" (same on both sides).
    if len(word) > 3 and word[-1] in "sx":
        return word[:-1]
    return word


def product_tokens(text: str) -> list[str]:
    return [_singular(word) for word in words_of(text)]


@dataclass
class ProductMatcher:
    """Finds product categories named in free text through each category's aliases.

    `categories` is a sequence of (slug, name, aliases) in the taxonomy's order; when two
    categories share an alias ("poire": fruits and cider), the first one wins.
    """

    categories: Sequence[tuple[str, str, Sequence[str]]]
    _exact: dict[str, str] = field(init=False, default_factory=dict)
    _phrases: list[tuple[tuple[str, ...], str]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        seen: set[tuple[str, ...]] = set()
        phrases: list[tuple[tuple[str, ...], str]] = []
        for slug, name, aliases in self.categories:
            self._exact.setdefault(" ".join(words_of(slug)), slug)
            self._exact.setdefault(" ".join(product_tokens(name)), slug)
            for alias in [name, *aliases]:
                tokens = tuple(product_tokens(alias))
                if tokens and tokens not in seen:
                    seen.add(tokens)
                    phrases.append((tokens, slug))
        # Longest phrases first: "fromage de chevre" beats "fromage".
        self._phrases = sorted(phrases, key=lambda item: -len(item[0]))

    def match(self, text: str | None) -> list[str]:
        """Slugs named in `text`, in reading order, without duplicates."""
        found: list[tuple[int, str]] = []
        for item in re.split(r"[|;,/+\n]", text or ""):
            if not item.strip():
                continue
            exact = self._exact.get(" ".join(words_of(item))) or self._exact.get(" ".join(product_tokens(item)))
            if exact:
                found.append((len(found) * 1000, exact))
                continue
            base = len(found) * 1000
            found.extend((base + position, slug) for position, slug in self._scan(item))
        result: list[str] = []
        for _position, slug in sorted(found, key=lambda pair: pair[0]):
            if slug not in result:
                result.append(slug)
        return result

    def _scan(self, text: str) -> Iterable[tuple[int, str]]:
        tokens = product_tokens(text)
        taken = [False] * len(tokens)
        hits: list[tuple[int, str]] = []
        for phrase, slug in self._phrases:
            size = len(phrase)
            for start in range(len(tokens) - size + 1):
                if tuple(tokens[start : start + size]) == phrase and not any(taken[start : start + size]):
                    hits.append((start, slug))
                    for index in range(start, start + size):
                        taken[index] = True
        return hits
