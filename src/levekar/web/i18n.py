"""Norwegian (bokmål) and English text for the web and the report. Codes the store gives (levels,
breakdowns, schemes, categories, labels) are translated here; an unknown code is shown as it is."""

from __future__ import annotations

import re

LANGS = ("nb", "en")

TEXT: dict[str, tuple[str, str]] = {
    "site": ("Levekårsbarometeret", "Living-conditions barometer"),
    "map": ("Kart", "Map"),
    "lists": ("Lister", "Lists"),
    "compare": ("Sammenlign", "Compare"),
    "method": ("Metode", "Method"),
    "api": ("API", "API"),
    "tables": ("Flere tabeller", "More tables"),
    "language": ("Språk", "Language"),
    "switch_lang": ("English", "Norsk"),
    "skip": ("Hopp til innhold", "Skip to content"),
    "synthetic": (
        "SYNTETISKE DATA: ingen virkelige personer er beskrevet. Tallene viser hvordan barometeret virker, ikke "
        "levekårene noe sted.",
        "SYNTHETIC DATA: no real person is described. The figures show how the barometer works, not the living "
        "conditions anywhere.",
    ),
    "indicator": ("Indikator", "Indicator"),
    "year": ("År", "Year"),
    "level": ("Nivå", "Level"),
    "group": ("Gruppe", "Group"),
    "show": ("Vis", "Show"),
    "area": ("Område", "Area"),
    "value": ("Verdi", "Value"),
    "interval": ("95 % konfidensintervall", "95 % confidence interval"),
    "ci_low": ("Nedre grense", "Lower bound"),
    "ci_high": ("Øvre grense", "Upper bound"),
    "numerator": ("Teller", "Numerator"),
    "denominator": ("Nevner (populasjon)", "Denominator (population)"),
    "kommune_value": ("Kommunen", "Municipality"),
    "country_value": ("Landet", "Country"),
    "rel_country": ("Forskjell fra landet (%)", "Difference from country (%)"),
    "rel_kommune": ("Forskjell fra kommunen (%)", "Difference from municipality (%)"),
    "label": ("Sammenlignet med landet", "Compared with the country"),
    "significance": ("Signifikans mot landet", "Significance against the country"),
    "significance_kommune": ("Signifikans mot kommunen", "Significance against the municipality"),
    "reliable": ("Pålitelig (nevner ≥ 100)", "Reliable (denominator ≥ 100)"),
    "suppressed": ("prikket", "suppressed"),
    "missing": ("mangler", "missing"),
    "no_data": ("ingen data", "no data"),
    "download": ("Last ned", "Download"),
    "download_table": ("Last ned tabellen", "Download the table"),
    "profile": ("Områdeprofil", "Area profile"),
    "trend": ("Utvikling over tid", "Trend over time"),
    "classification": ("Klassifisering", "Classification"),
    "scheme": ("Ordning", "Scheme"),
    "category": ("Kategori", "Category"),
    "reasons": ("Begrunnelse", "Reasons"),
    "criteria_met": ("Kriterier oppfylt", "Criteria met"),
    "score": ("Poeng", "Score"),
    "rank": ("Rangering", "Rank"),
    "part_of": ("Ligger i", "Part of"),
    "contains": ("Inneholder", "Contains"),
    "reference": ("Referanse", "Reference"),
    "map_caption": (
        "Fargen viser verdien. Mørk grå: prikket (:) for å verne personvernet; lys grå: ingen data (..).",
        "The colour shows the value. Dark grey: suppressed (:) to protect privacy; light grey: no data (..).",
    ),
    "map_reference": ("Landet: {country}. ", "Country: {country}. "),
    "table_of": ("Tabell: {title}", "Table: {title}"),
    "higher": ("høyere", "higher"),
    "lower": ("lavere", "lower"),
    "sig_higher": ("▲ signifikant høyere", "▲ significantly higher"),
    "sig_lower": ("▼ signifikant lavere", "▼ significantly lower"),
    "sig_ns": ("ikke signifikant", "not significant"),
    "pct_diff": ("{n} prosent {dir} enn landet", "{n} per cent {dir} than the country"),
    "compare_intro": (
        "Velg to eller flere områder for å sammenligne dem indikator for indikator.",
        "Choose two or more areas to compare them indicator by indicator.",
    ),
    "compare_add": ("Områder (nivå:kode, kommaseparert)", "Areas (level:code, comma-separated)"),
    "lists_intro": (
        "Områdene etter klassifiseringsordning, med begrunnelse for hvert område.",
        "Areas by classification scheme, with the reasons for each area.",
    ),
    "all_categories": ("Alle kategorier", "All categories"),
    "count": ("Antall", "Count"),
    "areas_word": ("områder", "areas"),
    "not_found": ("Fant ikke", "Not found"),
    "back_to_map": ("Tilbake til kartet", "Back to the map"),
    "report": ("Kommunerapport", "Municipality report"),
    "symbols": (
        "Tegn: « : » prikket (vernet), « .. » mangler, « - » ingenting å vise.",
        "Symbols: “ : ” suppressed (protected), “ .. ” missing, “ - ” nothing to show.",
    ),
    "explain": ("Tallene bak", "The numbers behind"),
    "select_area": ("Velg område", "Choose area"),
    "table_view": ("Tabell", "Table"),
    "chart_view": ("Diagram", "Chart"),
    "rows": ("rader", "rows"),
    "pooled": ("Sammenslåtte år", "Pooled years"),
    "caution_title": ("Les små områder med varsomhet", "Read small areas with caution"),
    "caution": (
        "Tall for små områder bygger på få personer og svinger tilfeldig fra år til år. Se alltid på "
        "konfidensintervallet, og legg vekt på forskjeller som er signifikante og varer over flere år. Et "
        "område er ikke det samme som menneskene som bor der, og en høy andel sier ikke noe om den enkelte "
        "(NOU 2020:16, kap. 3).",
        "Figures for small areas rest on few people and vary by chance from year to year. Always look at the "
        "confidence interval, and give weight to differences that are significant and last over several years. "
        "An area is not the people who live there, and a high share says nothing about any one person "
        "(NOU 2020:16, ch. 3).",
    ),
}

LEVELS = {
    "country": ("Landet", "Country"),
    "kommune": ("Kommune", "Municipality"),
    "bydel": ("Bydel", "City district"),
    "delbydel": ("Delbydel", "Sub-district"),
    "oslo_delbydel": ("Delbydel", "Sub-district"),
    "analysis_area": ("Analyseområde", "Analysis area"),
    "grunnkrets": ("Grunnkrets", "Basic statistical unit"),
}

BREAKDOWNS = {
    "total": ("Alle", "All"),
    "sex": ("Kjønn", "Sex"),
    "immigrant_background": ("Innvandrerbakgrunn", "Immigrant background"),
    "africa_asia": ("Bakgrunn Afrika, Asia mv.", "Background Africa, Asia etc."),
}
BREAKDOWN_VALUES = {
    ("sex", "1"): ("menn", "men"),
    ("sex", "2"): ("kvinner", "women"),
    ("*", "true"): ("ja", "yes"),
    ("*", "false"): ("nei", "no"),
}

SCHEMES = {
    "nou_screening": ("NOU-screening (antall flagg)", "NOU screening (number of flags)"),
    "tiers": ("Fire nivåer", "Four tiers"),
    "early_warning": ("Tidlig varsling", "Early warning"),
    "settlement": ("Bosetting", "Settlement"),
    "grant": ("Tilskudd", "Grant"),
    "denmark_proxy_nou": ("Danske kriterier (NOU-tabell 3.4)", "Danish criteria (NOU table 3.4)"),
    "sweden_2012": ("Svenske kriterier (2012)", "Swedish criteria (2012)"),
    "delmos_types": ("Delmos-typer", "Delmos types"),
}

CATEGORIES = {
    "particularly_extensive": ("Særlig omfattende", "Particularly extensive"),
    "large_follow_closely": ("Store – følg nøye", "Large – follow closely"),
    "negative_development_watch": ("Negativ utvikling – følg med", "Negative development – watch"),
    "limited": ("Begrensede", "Limited"),
    "accumulated": ("Opphopning av levekårsutfordringer", "Accumulated challenges"),
    "not_accumulated": ("Ikke opphopning", "Not accumulated"),
    "eligible": ("Kvalifisert", "Eligible"),
    "not_eligible": ("Ikke kvalifisert", "Not eligible"),
    "none": ("Ingen", "None"),
    "unknown": ("Ukjent", "Unknown"),
    "worsening": ("Forverring", "Worsening"),
    "weaker_in_movers": ("Svakere innflyttere", "Weaker in-movers"),
    "worsening_and_weaker_in_movers": ("Forverring og svakere innflyttere", "Worsening and weaker in-movers"),
}

# the store's labels are Norwegian (the report's words); the English in the same bands
LABEL_EN = {
    "Om lag samme andel": "About the same share",
    "Svakt høyere andel": "Slightly higher share",
    "Svakt lavere andel": "Slightly lower share",
    "Høyere andel": "Higher share",
    "Lavere andel": "Lower share",
    "Betydelig høyere andel": "Considerably higher share",
    "Betydelig lavere andel": "Considerably lower share",
    "Svært mye høyere andel": "Very much higher share",
    "Svært mye lavere andel": "Very much lower share",
    "Om lag samme prisnivå": "About the same price level",
}


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def t(lang: str, key: str, **kw) -> str:
    pair = TEXT.get(key)
    if pair is None:
        return key
    s = _pick(pair, lang)
    return s.format(**kw) if kw else s


def level_name(lang: str, level: str) -> str:
    return _pick(LEVELS[level], lang) if level in LEVELS else level.replace("_", " ")


def breakdown_name(lang: str, breakdown: str, value: str) -> str:
    if breakdown == "total":
        return _pick(BREAKDOWNS["total"], lang)
    b = _pick(BREAKDOWNS[breakdown], lang) if breakdown in BREAKDOWNS else breakdown
    v = BREAKDOWN_VALUES.get((breakdown, value)) or BREAKDOWN_VALUES.get(("*", value))
    return f"{b}: {_pick(v, lang) if v else value}"


def scheme_name(lang: str, scheme: str) -> str:
    return _pick(SCHEMES[scheme], lang) if scheme in SCHEMES else scheme.replace("_", " ")


def category_name(lang: str, category: str) -> str:
    if category in CATEGORIES:
        return _pick(CATEGORIES[category], lang)
    return category.replace("_", " ")


def comparison_label(lang: str, label: str | None) -> str:
    if not label:
        return ""
    if lang != "en":
        return label
    if label in LABEL_EN:
        return LABEL_EN[label]
    return re.sub("høyere", "higher", re.sub("lavere", "lower", label))


def percent_difference(lang: str, rel: float | None) -> str:
    """'12 prosent høyere enn landet' — the report's wording, from the relative difference."""
    if rel is None or rel != rel:
        return ""
    n = round(rel)
    if n == 0:
        return comparison_label(lang, "Om lag samme andel")
    return t(lang, "pct_diff", n=abs(n), dir=t(lang, "higher" if n > 0 else "lower"))


def significance_name(lang: str, sig: str | None) -> str:
    return {"higher": t(lang, "sig_higher"), "lower": t(lang, "sig_lower"), "ns": t(lang, "sig_ns")}.get(sig or "", "")


def indicator_title(lang: str, row: dict) -> str:
    return (row.get("title_en") if lang == "en" else row.get("title_nb")) or row["indicator_id"]


def area_name(lang: str, level: str, code: str) -> str:
    if level == "country":
        return _pick(LEVELS["country"], lang)
    return f"{level_name(lang, level)} {code}"
