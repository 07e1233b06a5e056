"""Place-name normalisation shared by the territories loader and the geocoder."""

import re
import unicodedata

_ABBREVIATIONS = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}
_ARTICLES = {"le", "la", "les", "l"}


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("œ", "oe").replace("æ", "ae")


def normalize_place_name(text: str, *, drop_leading_article: bool = True) -> str:
    """'Saint-Étienne', 'st etienne' and 'ST-ETIENNE' all give 'saint etienne'.

    Hyphens, apostrophes and punctuation become spaces, abbreviations are expanded, and a
    leading article is dropped ("Les Sables-d'Olonne" and "Sables d'Olonne" meet).
    """
    text = strip_accents(text.lower())
    text = re.sub(r"[^a-z0-9]+", " ", text).strip()
    words = [_ABBREVIATIONS.get(word, word) for word in text.split()]
    if drop_leading_article and len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)
