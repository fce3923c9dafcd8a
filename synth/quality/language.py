"""Which language a text is in, offline and with no model: the writing system first, then, for Latin-script text,
profiles of the commonest function words of seven European languages.

    script_counts("Привет, мир")        Counter({"cyrillic": 9})
    guess("Où est la gare ?")           Guess(language="fr", script="latin", evidence=...)
    translation_target("Translate into polite Japanese: ...")   "ja"

A guess is only as good as its evidence: a short or mixed text gives `language=None` rather than a coin toss, and
the callers flag a mismatch only when both sides were told with confidence.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

# ---- writing systems ----------------------------------------------------------------------------------------

_SCRIPT_RANGES = (            # (first, last, script); Latin is told apart by unicodedata below
    (0x0370, 0x03FF, "greek"), (0x0400, 0x052F, "cyrillic"), (0x0590, 0x05FF, "hebrew"),
    (0x0600, 0x06FF, "arabic"), (0x0750, 0x077F, "arabic"), (0x0900, 0x097F, "devanagari"),
    (0x0980, 0x09FF, "bengali"), (0x0E00, 0x0E7F, "thai"), (0x10A0, 0x10FF, "georgian"),
    (0x1100, 0x11FF, "hangul"), (0x3040, 0x309F, "kana"), (0x30A0, 0x30FF, "kana"), (0x3400, 0x4DBF, "han"),
    (0x4E00, 0x9FFF, "han"), (0xAC00, 0xD7AF, "hangul"), (0xF900, 0xFAFF, "han"), (0x0530, 0x058F, "armenian"),
)

# A language asked for by name, and the script its text is written in.
SCRIPT_OF = {"ru": "cyrillic", "uk": "cyrillic", "bg": "cyrillic", "sr": "cyrillic", "el": "greek", "he": "hebrew",
             "ar": "arabic", "fa": "arabic", "hi": "devanagari", "bn": "bengali", "th": "thai", "ka": "georgian",
             "ko": "hangul", "zh": "han", "ja": "kana", "hy": "armenian"}
# The language a script stands for when no profile says more.
LANGUAGE_OF_SCRIPT = {"cyrillic": "ru", "greek": "el", "hebrew": "he", "arabic": "ar", "devanagari": "hi",
                      "bengali": "bn", "thai": "th", "georgian": "ka", "hangul": "ko", "han": "zh", "kana": "ja",
                      "armenian": "hy"}


def _script_of(char: str) -> str | None:
    point = ord(char)
    if point < 0x0250:
        return "latin" if char.isalpha() else None
    for first, last, script in _SCRIPT_RANGES:
        if first <= point <= last:
            return script if unicodedata.category(char).startswith(("L", "M")) or script in ("han", "kana") else None
    if char.isalpha() and "LATIN" in unicodedata.name(char, ""):
        return "latin"
    return None


_ASCII_LETTERS = re.compile(r"[A-Za-z]")
_NON_ASCII_LETTERS = re.compile(r"[^\x00-\x7f]")


def script_counts(text: str) -> Counter:
    """How many letters of each writing system `text` holds (Japanese kana and Chinese characters apart)."""
    counts: Counter = Counter()
    ascii_letters = len(_ASCII_LETTERS.findall(text))
    if ascii_letters:
        counts["latin"] = ascii_letters
    for char in _NON_ASCII_LETTERS.findall(text):
        if char.isalpha() or "\u3040" <= char <= "\u30ff":
            script = _script_of(char)
            if script:
                counts[script] += 1
    return counts


def main_script(text: str, min_letters: int = 8, share: float = 0.6) -> str | None:
    """The writing system of most of `text`'s letters, or None when there are too few or none has `share` of them.
    Japanese is told by its kana even among many Chinese characters."""
    counts = script_counts(text)
    total = sum(counts.values())
    if total < min_letters:
        return None
    if counts["kana"] >= max(2, 0.1 * total) and counts["kana"] + counts["han"] >= share * total:
        return "kana"
    script, count = counts.most_common(1)[0]
    return script if count >= share * total else None


# ---- Latin-script languages: function-word profiles -------------------------------------------------------------

_PROFILES = {
    "en": "a the and is are was were of to in that it for on with as this be by not or but from have has had you your "
          "they their we our what which who how why when where will would can could should if so do does did at "
          "there these those them its been than then about into more most also only each some any because i my me "
          "he she his her him an all one just very here other such both many much",
    "fr": "le la les des du de un une et est sont que qui dans pour pas ne sur avec ce cette ces il elle ils elles "
          "nous vous je tu au aux en par plus mais ou où son sa ses leur leurs été être avoir fait comme on très "
          "aussi donc si y même tout tous peut qu mon ma mes ton ta tes notre votre nos vos lui chez "
          "sont avez avons sans voici",
    "es": "a el la los las de del un una y es son que en por para con no se lo le su sus al como más pero muy este "
          "esta estos estas ese esa hay ser está están también o yo tú usted nosotros ellos mi cuando donde qué "
          "cómo cuál porque sin sobre entre fue ha han les nos me te mis tus esto eso muchas muchos",
    "de": "der die das den dem des ein eine einen einem einer und ist sind nicht mit von zu auf für im am auch "
          "sich es ich du sie wir ihr er dass wenn aber oder wie was noch nur bei aus nach kann wird werden hat "
          "haben sein war mein dein ihre sehr dann hier schon mehr um durch über diese dieser dieses man kein "
          "keine zum zur bitte ob uns euch mir dir",
    "it": "a il lo la gli le di del della dei delle un una uno e è sono che non per con su da in al alla come più "
          "ma anche questo questa quello ci si mi ti io tu noi voi loro se perché quando dove molto già ancora "
          "sempre nel nella hai ha ho essere degli sul sulla dal dalla cosa",
    "pt": "o a os as de do da dos das um uma e é são que não para com por em no na nos nas se mais mas como muito "
          "também seu sua ele ela eles nós você vocês ao à isso isto este esta quando onde porque foi tem ser "
          "está estão pelo pela meu minha até",
    "nl": "de het een en is zijn van in op te dat die niet met voor aan er maar om ook als dan bij nog wat wie hoe "
          "waar ik je jij u we wij ze hij zij naar uit kan wordt worden heeft hebben was geen deze dit door over "
          "al wel zo mijn jouw ons onze hun tot moet hier",
}
_LANGS_OF_WORD: dict[str, tuple[str, ...]] = {}
for _lang, _words in _PROFILES.items():
    for _word in set(_words.split()):
        _LANGS_OF_WORD[_word] = _LANGS_OF_WORD.get(_word, ()) + (_lang,)
# Letters that only some of the seven use: each one is a little evidence, never enough alone.
_LETTER_HINTS = {"ñ": ("es",), "¿": ("es",), "¡": ("es",), "ß": ("de",), "ä": ("de",), "ö": ("de",), "ü": ("de",),
                 "ã": ("pt",), "õ": ("pt",), "ç": ("fr", "pt"), "œ": ("fr",), "è": ("fr", "it"), "ê": ("fr", "pt"),
                 "î": ("fr",), "û": ("fr",), "ù": ("fr", "it"), "ì": ("it",), "ò": ("it",), "ë": ("fr", "nl")}
LATIN_LANGUAGES = tuple(_PROFILES)
_WORD = re.compile(r"[^\W\d_]+")


def latin_scores(text: str) -> dict[str, float]:
    """Evidence for each profiled language: a function word counts 1, shared among the languages that use it;
    a telling letter counts a third."""
    scores = dict.fromkeys(_PROFILES, 0.0)
    for word, count in Counter(_WORD.findall(text.lower())).items():
        langs = _LANGS_OF_WORD.get(word)
        if langs:
            for lang in langs:
                scores[lang] += count / len(langs)
    for char, langs in _LETTER_HINTS.items():
        found = text.count(char)
        if found:
            for lang in langs:
                scores[lang] += min(found, 6) / (3.0 * len(langs))
    return scores


@dataclass(frozen=True)
class Guess:
    language: str | None      # an ISO 639-1 code, or None when the evidence does not settle it
    script: str | None
    evidence: float = 0.0     # the winning score (function words) or the letters counted (other scripts)


def guess(text: str, *, min_evidence: float = 2.5, margin: float = 1.8) -> Guess:
    """The language of `text`: a non-Latin writing system names its language; Latin text needs `min_evidence`
    function words for the winner and `margin` times the runner-up's score."""
    script = main_script(text)
    if script is None:
        return Guess(None, None)
    if script != "latin":
        return Guess(LANGUAGE_OF_SCRIPT.get(script), script, float(sum(script_counts(text).values())))
    ranked = sorted(latin_scores(text).items(), key=lambda item: -item[1])
    (best, top), (_, second) = ranked[0], ranked[1]
    if top >= min_evidence and top >= margin * second:
        return Guess(best, "latin", top)
    return Guess(None, "latin", top)


# ---- what a translation task asks for ----------------------------------------------------------------------

LANGUAGE_NAMES = {
    "english": "en", "french": "fr", "spanish": "es", "castilian": "es", "german": "de", "italian": "it",
    "portuguese": "pt", "dutch": "nl", "flemish": "nl", "russian": "ru", "ukrainian": "uk", "bulgarian": "bg",
    "serbian": "sr", "greek": "el", "hebrew": "he", "arabic": "ar", "persian": "fa", "farsi": "fa", "hindi": "hi",
    "bengali": "bn", "thai": "th", "georgian": "ka", "korean": "ko", "chinese": "zh", "mandarin": "zh",
    "cantonese": "zh", "japanese": "ja", "armenian": "hy", "swedish": "sv", "norwegian": "no", "danish": "da",
    "finnish": "fi", "polish": "pl", "czech": "cs", "turkish": "tr", "romanian": "ro", "hungarian": "hu",
    "latin": "la", "indonesian": "id", "vietnamese": "vi",
    # the same names as the six other profiled languages write them
    "inglés": "en", "ingles": "en", "anglais": "en", "englisch": "en", "inglese": "en", "engels": "en",
    "francés": "fr", "français": "fr", "francese": "fr", "französisch": "fr", "francês": "fr", "frans": "fr",
    "español": "es", "espagnol": "es", "spanisch": "es", "spagnolo": "es", "espanhol": "es", "spaans": "es",
    "alemán": "de", "allemand": "de", "deutsch": "de", "deutsche": "de", "tedesco": "de", "alemão": "de",
    "duits": "de", "italiano": "it", "italien": "it", "italienisch": "it", "italiaans": "it",
    "portugués": "pt", "portugais": "pt", "portugiesisch": "pt", "portoghese": "pt", "português": "pt",
    "portugees": "pt", "neerlandés": "nl", "néerlandais": "nl", "niederländisch": "nl", "olandese": "nl",
    "nederlands": "nl", "ruso": "ru", "russe": "ru", "russisch": "ru", "russo": "ru", "japonés": "ja",
    "japonais": "ja", "japanisch": "ja", "giapponese": "ja", "chino": "zh", "chinois": "zh", "chinesisch": "zh",
    "cinese": "zh",
}
_QUALIFIERS = (r"(?:(?:polite|formal|informal|casual|natural|simple|plain|modern|standard|brazilian|european|"
               r"american|british|mexican|latin american|simplified|traditional|castilian|colloquial|idiomatic|"
               r"everyday|fluent|correct|good|proper)\s+)*")
_TRANSLATE = re.compile(r"\b(?:translat\w*|traduc\w*|tradu[iz]\w*|übersetz\w*|vertaal\w*)\b|"
                        r"\bhow (?:do|would|can|should) (?:you|i|we|one) (?:say|write)\b", re.IGNORECASE)
_TRANSLATE_HINT = re.compile(r"[Tt]ransl|TRANSL|[Tt]radu|bersetz|[Vv]ertaal|[Hh]ow \w+ \w+ (?:say|write)\b")
_INTO = re.compile(r"\b(?:in|into|to|al|en|ins|auf|para|a|nach|naar|in het)\s+(?:the\s+|l'|el\s+|o\s+)?"
                   + _QUALIFIERS + r"([^\W\d_]+)", re.IGNORECASE)
_ANSWER_IN = re.compile(r"\b(?:answer|reply|respond|write|written|explain|say|describe|tell|summari[sz]e)\b"
                        r"[^\n.?!]{0,80}?\b(?:in|into)\s+" + _QUALIFIERS + r"([^\W\d_]+)", re.IGNORECASE)


def _named_language(pattern: re.Pattern, text: str) -> str | None:
    for match in pattern.finditer(text):
        code = LANGUAGE_NAMES.get(match.group(1).lower())
        if code:
            return code
    return None


def translation_target(instruction: str) -> str | None:
    """The language a translation task asks for ("Translate into polite Japanese", "Traduce al inglés", "How do
    you say X in Italian?"), as a code; None when the task is no translation or names no language synth knows."""
    if len(instruction) > 600:      # a long prompt holds a passage; the request is at its start or its end
        return translation_target(instruction[:300]) or translation_target(instruction[-300:])
    if not _TRANSLATE_HINT.search(instruction):
        return None
    for keyword in _TRANSLATE.finditer(instruction):
        code = _named_language(_INTO, instruction[keyword.end(): keyword.end() + 240])
        if code:
            return code
    return None


def requested_language(instruction: str) -> str | None:
    """The language the task asks the answer to be in: a translation's target, or "write/answer ... in French"."""
    if len(instruction) > 600:
        return requested_language(instruction[:300]) or requested_language(instruction[-300:])
    return translation_target(instruction) or _named_language(_ANSWER_IN, instruction)


def is_translation(instruction: str) -> bool:
    return translation_target(instruction) is not None
