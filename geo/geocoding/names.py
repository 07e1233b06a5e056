"""Place names, postal and INSEE codes, arrondissements and addresses matched against the gazetteer."""

from __future__ import annotations

import heapq
import math
import re
from operator import itemgetter
from typing import NamedTuple

from rapidfuzz import fuzz, process

from geo.models import Commune
from geo.text import normalize_place_name

from .answers import (
    BIG_TOWN_POPULATION,
    BIG_TOWN_RATIO,
    FUZZY_CUTOFF,
    FUZZY_CUTOFF_IN_AREA,
    PRECISION_COMMUNE,
    PRECISION_POSTAL_CODE,
    PREFIX_CUT_WORD,
    PREFIX_KEEP,
    PREFIX_WHOLE_WORDS,
    SCORE_ADDRESS_FALLBACK,
    SCORE_BIG_TOWN_PREFIX,
    SCORE_CONFLICT,
    SCORE_EXACT,
    SCORE_FUZZY_MAX,
    SCORE_INSEE_AFTER_POSTAL,
    SCORE_NAME_UNKNOWN,
    SCORE_POSTAL,
)
from .gazetteer import _Gazetteer, _Place

# --------------------------------------------------------------------------- text queries

_ARRONDISSEMENT = re.compile(
    r"(paris|lyon|marseille)\s+(\d{1,2})\s*(?:er|ere|eme|ieme|em|e)?"
    r"(?:\s+(?:arr|arrt|ardt|arrdt|arrondissement))?"
)
_POSTAL = re.compile(r"\d{5}")
_INSEE = re.compile(r"(?:\d{5}|2[ab]\d{3})")
_DEPARTMENT = re.compile(r"(?:\d{2}|2[ab]|97\d)")
# Words that make a text a street address ("12 rue …", "lieu-dit …"), normalised.
_STREET_WORDS_TEXT = (
    "rue r avenue av ave bd boulevard bld chemin che chem allee allees place pl impasse imp route rte quai "
    "cours square passage voie sentier esplanade promenade faubourg fg cite residence res lotissement "
    "hameau lieu dit ld parvis rond point zone za zi zac parc domaine mail traverse venelle montee"
)
_STREET_WORDS = frozenset(_STREET_WORDS_TEXT.split())
_HOUSE_NUMBER = re.compile(r"\d{1,4}(?:[a-z]|bis|ter|quater)?")


def _query_key(text: str) -> str:
    """Normalised text without the noise people add: 'Bordeaux Cedex 9', 'Bordeaux, France', '33 000'."""
    key = normalize_place_name(text)
    key = re.sub(r"(?:^| )cedex(?: \d{1,2})?(?= |$)", "", key)
    key = re.sub(r"(?:^| )france$", "", key).strip()
    key = re.sub(r"(?:^| )(\d{2}) (\d{3})(?= |$)", r" \1\2", key).strip()  # "33 000" is one postal code
    return key


def _clean(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            value = int(value)
    return str(value).strip()


def _clean_postal_code(value: str) -> str:
    """'33920', '33 920', '33920.0', and Excel's '1000' (for 01000) all give a five-digit code."""
    digits = re.sub(r"\s", "", value)
    digits = re.sub(r"\.0+$", "", digits)
    if re.fullmatch(r"\d{4}", digits):
        digits = "0" + digits
    return digits if _POSTAL.fullmatch(digits) else ""


# A match: (place, score, postal code to show in the label or "").
class _Match(NamedTuple):
    place: _Place
    score: float
    postal: str = ""  # postal code shown in the label, when the query named one of the commune's
    precision: str = PRECISION_COMMUNE


def _match_text(gazetteer: _Gazetteer, key: str) -> list[_Match] | None:
    """Exact answers for a normalised query; None when only fuzzy matching could help."""
    if key in gazetteer.by_name:
        return _exact_name_matches(gazetteer, key)
    tokens = key.split()
    if len(tokens) == 1:
        token = tokens[0]
        if _POSTAL.fullmatch(token) or _INSEE.fullmatch(token):
            matches = _postal_matches(gazetteer, token) if _POSTAL.fullmatch(token) else []
            place = gazetteer.places.get(token.upper())
            if place is not None and all(m.place.code != place.code for m in matches):
                # An INSEE code that is also someone's postal code ranks after the postal code.
                matches.append(_Match(place, SCORE_EXACT if not matches else SCORE_INSEE_AFTER_POSTAL))
            return matches
        if token.isdigit():
            return []  # a number that is no code
    if match := _ARRONDISSEMENT.fullmatch(key):
        place = gazetteer.arrondissements.get((match.group(1), int(match.group(2))))
        return [_Match(place, SCORE_EXACT)] if place else []
    if len(tokens) >= 2 and not _has_street(key):
        # "33000 Bordeaux", "Bordeaux 33000", "Saint-Denis 93", "Saint-Denis (974)"
        for code, rest in ((tokens[-1], tokens[:-1]), (tokens[0], tokens[1:])):
            is_postal = bool(_POSTAL.fullmatch(code))
            if not (is_postal or _DEPARTMENT.fullmatch(code)) or not rest:
                continue
            rest_key = normalize_place_name(" ".join(rest))
            if is_postal:
                matches = _match_name(gazetteer, rest_key, postal=code, department=None, fuzzy_anywhere=False)
            else:
                matches = _match_name(gazetteer, rest_key, postal=None, department=code.upper(), fuzzy_anywhere=False)
            if matches:
                return matches
            if is_postal and code in gazetteer.by_postal:
                # "Marcillac 33860": a name unknown in that postal code; the code still places it.
                return [m._replace(score=SCORE_NAME_UNKNOWN) for m in _postal_matches(gazetteer, code)]
            if not is_postal:
                return []  # "Bessan 33": Bessan is in Hérault, and the département was explicit
    return None


_TRAILING_PART = re.compile(r"(?P<name>[^(),]+?)\s*(?:\((?P<paren>[^()]*)\)|,(?P<comma>[^(),]*))\s*")
_COMPASS = frozenset(["nord", "sud", "est", "ouest", "centre"])


def _match_with_department_name(gazetteer: _Gazetteer, text: str) -> list[_Match] | None:
    """'Romagne (Gironde)', 'Sillas (sud-Gironde)', 'Monbahus, Lot-et-Garonne'; None without a département name."""
    match = _TRAILING_PART.fullmatch(text.strip())
    if not match:
        return None
    words = normalize_place_name(match.group("paren") or match.group("comma") or "").split()
    department = gazetteer.departments.get(" ".join(words))
    if department is None and len(words) > 1 and words[0] in _COMPASS:
        department = gazetteer.departments.get(" ".join(words[1:]))
    name_key = _query_key(match.group("name"))
    if department is None or not name_key:
        return None
    return _match_name(gazetteer, name_key, postal=None, department=department, fuzzy_anywhere=False)


def _match_place_text(gazetteer: _Gazetteer, text: str, key: str) -> list[_Match] | None:
    found = _match_with_department_name(gazetteer, text)
    return found if found is not None else _match_text(gazetteer, key)


def _match_name(
    gazetteer: _Gazetteer, key: str, *, postal: str | None, department: str | None, fuzzy_anywhere: bool = True
) -> list[_Match]:
    """A commune name, narrowed by a postal code or a département when given.

    With `fuzzy_anywhere`, a misspelt name whose code matches nothing is still looked for in all of France.
    """
    if postal:
        pool = gazetteer.by_postal.get(postal, ())
        departments = {p.department_code for p in pool} or _departments_of_postal(postal)
    elif department:
        pool = gazetteer.by_department.get(department, ())
        departments = {department}
    else:
        pool, departments = None, set()
    exact = gazetteer.by_name.get(key, ())
    if pool is None:
        if exact:
            return _exact_name_matches(gazetteer, key)
        return _fuzzy(gazetteer, key, pool=None)
    pool_codes = {p.code for p in pool}
    in_pool = [p for p in exact if p.code in pool_codes]
    if in_pool:
        return _prefer_arrondissement(gazetteer, [_Match(p, SCORE_EXACT, postal or "") for p in in_pool], postal)
    in_department = [p for p in exact if p.department_code in departments]
    if in_department:
        # Right name and département, but a postal code the commune does not have (old or mistyped).
        return [_Match(p, SCORE_POSTAL) for p in in_department]
    if pool:
        fuzzy = _fuzzy(gazetteer, key, pool=pool, loose=True)
        if fuzzy:
            return _prefer_arrondissement(gazetteer, [m._replace(postal=postal or "") for m in fuzzy], postal)
        if postal:
            # A known postal code, and a name found nowhere in it: a former commune or a hamlet
            # ("Marcillac", merged into Val-de-Livenne in 2019). The postal code is the better guide.
            return []
    if postal:
        # A postal code we do not know (CEDEX, mistyped): look for the name in its département.
        nearby = [p for d in departments for p in gazetteer.by_department.get(d, ())]
        fuzzy = _fuzzy(gazetteer, key, pool=nearby)
        if fuzzy:
            return fuzzy
    if department:
        return []  # "Bessan 33" is no commune of Gironde (Bessan is in Hérault): the département was explicit
    # The name exists elsewhere: a typo in the postal code is likelier than none.
    if exact:
        return [_Match(p, SCORE_CONFLICT) for p in exact]
    if not fuzzy_anywhere:
        return []
    return [m._replace(score=round(m.score * SCORE_CONFLICT, 3)) for m in _fuzzy(gazetteer, key, pool=None)]


def _departments_of_postal(postal: str) -> set[str]:
    if postal.startswith("20"):
        return {"2A", "2B"}
    if postal.startswith(("97", "98")):
        return {postal[:3]}
    return {postal[:2]}


def _postal_matches(gazetteer: _Gazetteer, postal: str) -> list[_Match]:
    places = gazetteer.by_postal.get(postal, ())
    return _prefer_arrondissement(
        gazetteer, [_Match(p, SCORE_POSTAL, postal, PRECISION_POSTAL_CODE) for p in places], postal
    )


def _prefer_arrondissement(gazetteer: _Gazetteer, matches: list[_Match], postal: str | None) -> list[_Match]:
    """'75011' and 'Paris 75011' mean Paris 11e: an arrondissement replaces its city."""
    if not postal:
        return matches
    result = []
    for match in matches:
        if match.place.kind == Commune.Kind.COMMUNE:
            children = [p for p in gazetteer.by_postal.get(postal, ()) if p.parent_code == match.place.code]
            if children:
                result.extend(match._replace(place=child) for child in children)
                continue
        result.append(match)
    seen, unique = set(), []
    for match in result:
        if match.place.code not in seen:
            seen.add(match.place.code)
            unique.append(match)
    return unique


def _fuzzy(gazetteer: _Gazetteer, key: str, *, pool, loose: bool = False) -> list[_Match]:
    """Prefix and typo-tolerant matches, scored below exact ones.

    `loose` (for the few communes of one postal code or département) also accepts a shortened
    name: "Baignes" for Baignes-Sainte-Radegonde.
    """
    if pool is None:
        # Typos rarely hit the first letter: search names sharing it first (~20× fewer), then all.
        name_lists = [gazetteer.names_by_initial.get(key[0], [])]
        if len(key) >= 5:
            name_lists.append(gazetteer.names)  # then all names, for a typo in the first letter
        cutoff = FUZZY_CUTOFF
    else:
        name_lists = [list({p.key for p in pool})]
        cutoff = FUZZY_CUTOFF_IN_AREA if loose else FUZZY_CUTOFF
    scorer = fuzz.WRatio if loose else fuzz.ratio
    scored: dict[str, float] = {}
    for names in name_lists:
        for name, ratio, _index in process.extract(key, names, scorer=scorer, score_cutoff=cutoff, limit=20):
            scored[name] = ratio / 100
        if scored:
            break
    allowed = {p.code for p in pool} if pool is not None else None
    best: dict[str, _Match] = {}
    for name, similarity in scored.items():
        for place in gazetteer.by_name[name]:
            if allowed is None or place.code in allowed:
                best[place.code] = _Match(place, round(SCORE_FUZZY_MAX * similarity, 3))
    if pool is None and len(key) >= 3:
        # The beginning of a name: "chalons" → Châlons-en-Champagne, "le taillan" → Le Taillan-Médoc,
        # "saint eti" → Saint-Étienne. Whole words typed weigh more than a cut word; bigger towns
        # come first (Châlons-en-Champagne before Chalons-du-Maine).
        prefixed = (
            ((PREFIX_WHOLE_WORDS if name[len(key)] == " " else PREFIX_CUT_WORD) + 0.1 * place.weight, place)
            for name in gazetteer.names_with_prefix(key)
            for place in gazetteer.by_name[name]
        )
        # "mon" begins a thousand names: only the best few can make the list.
        for similarity, place in heapq.nlargest(PREFIX_KEEP, prefixed, key=itemgetter(0)):
            score = round(SCORE_FUZZY_MAX * similarity, 3)
            if place.code not in best or best[place.code].score < score:
                best[place.code] = _Match(place, score)
    return list(best.values())


def _exact_name_matches(gazetteer: _Gazetteer, key: str) -> list[_Match]:
    """Communes with exactly this name, plus far bigger towns whose name begins with it.

    "Aix" is a village of Corrèze, but most people typing it mean Aix-en-Provence: the big town
    comes as a close second (score 0.98) so that the search page asks which one is meant.
    """
    exact = gazetteer.by_name.get(key, ())
    matches = [_Match(p, SCORE_EXACT) for p in exact]
    if exact:
        biggest = max(p.population for p in exact)
        threshold = max(BIG_TOWN_POPULATION, BIG_TOWN_RATIO * biggest)
        bigger = [
            p
            for name in gazetteer.big_town_names_with_prefix(key + " ")
            for p in gazetteer.by_name[name]
            if p.population >= threshold
        ]
        matches += [_Match(p, SCORE_BIG_TOWN_PREFIX) for p in bigger]
    return matches


def _looks_like_address(key: str) -> bool:
    tokens = key.split()
    return len(tokens) >= 2 and (_has_street(key) or bool(_HOUSE_NUMBER.fullmatch(tokens[0])))


def _has_street(key: str) -> bool:
    return any(token in _STREET_WORDS for token in key.split())


def _postal_and_name_in_address(address: str) -> tuple[str, str]:
    """'12 rue X, 33920 Civrac de Blaye' → ('33920', 'Civrac de Blaye')."""
    matches = list(re.finditer(r"(?<!\d)(\d{5}|\d{2}\s\d{3})(?!\d)", address))
    if not matches:
        return "", ""
    last = matches[-1]
    postal = re.sub(r"\s", "", last.group(1))
    after = re.sub(r"\bcedex\b.*$", "", address[last.end() :], flags=re.IGNORECASE).strip(" ,;-")
    if not after:
        # "Civrac de Blaye 33920": the name is the segment before the code.
        before = re.split(r"[,;]", address[: last.start()])[-1].strip(" ,;-")
        after = before if not _has_street(normalize_place_name(before)) else ""
    return postal, after


def _commune_in_address(gazetteer: _Gazetteer, key: str) -> list[_Match]:
    """The longest run of trailing words that names a commune: '3 chemin des vignes merignac' → Mérignac."""
    tokens = key.split()
    for start in range(1, len(tokens)):
        suffix = " ".join(tokens[start:])
        if suffix in gazetteer.by_name and not (start == len(tokens) - 1 and suffix in _STREET_WORDS):
            return [_Match(p, SCORE_ADDRESS_FALLBACK) for p in gazetteer.by_name[suffix]]
    return []
