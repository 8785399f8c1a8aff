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
    "segregation": ("Segregasjon", "Segregation"),
    "schools": ("Skoler og barnehager", "Schools and kindergartens"),
    "flows": ("Flytting og endring", "Moves and change"),
    "table_absent": (
        "Tabellen {name} finnes ikke i denne databasen, så dette kan ikke vises her.",
        "The table {name} is not in this store, so this cannot be shown here.",
    ),
    "knn_title": ("K-nærmeste naboer", "K-nearest neighbours"),
    "knn_intro": (
        "For hver befolket rute: andelen i gruppen blant de K nærmeste personene, for K = 200 til 51 200 "
        "(metoden bak NOU 2020:16 tabell 3.1–3.2). Ulikhetsindeksen over K viser på hvilken skala "
        "befolkningen er skilt: en kurve som faller lite, betyr segregasjon over store områder.",
        "For every populated cell: the group's share among the K nearest persons, for K = 200 to 51 200 (the "
        "method behind NOU 2020:16 tables 3.1–3.2). The dissimilarity over K shows at what scale the "
        "population is separated: a curve that falls little means segregation over large areas.",
    ),
    "k_axis": ("K (antall nærmeste personer, log-skala)", "K (number of nearest persons, log scale)"),
    "measure": ("Mål", "Measure"),
    "residential_title": ("Boligsegregasjon", "Residential segregation"),
    "residential_intro": (
        "Indeksene over enheter (grunnkretser, analyseområder …) innen et område, per år, med 95 % intervall "
        "der det er beregnet.",
        "The indices over units (grunnkretser, analysis areas …) within an area, by year, with the 95 % "
        "interval where it was computed.",
    ),
    "scope": ("Område", "Area"),
    "unit_level": ("Enheter", "Units"),
    "index_value": ("Indeksverdi", "Index value"),
    "school_classes": ("Skoler etter andel (NOU 2020:16 tabell 3.5)", "Schools by share (NOU 2020:16 table 3.5)"),
    "school_uptake": ("Oppslutning om nærskolen", "Uptake of the local school"),
    "school_contrast": (
        "Kontrastpar: nabokoler med svært ulik sammensetning",
        "Contrast pairs: neighbouring schools with very different composition",
    ),
    "school_kindergarten": (
        "Barnehager nær hverandre med svært ulik sammensetning",
        "Kindergartens near each other with very different composition",
    ),
    "school_indices": (
        "Segregasjon mellom institusjoner og mellom opptaksområder",
        "Segregation between institutions and between catchments",
    ),
    "school_composition": ("Sammensetning per skole og barnehage", "Composition by school and kindergarten"),
    "schools_intro": (
        "Elevenes og barnehagebarnas sammensetning sammenlignet med barna som bor i opptaksområdet. "
        "Andel med innvandrerbakgrunn er brukt i stedet for minoritetsspråklige elever (som registeret ikke har).",
        "The composition of pupils and kindergarten children compared with the children living in the "
        "catchment. The share with immigrant background stands in for minority-language pupils (which the "
        "register lacks).",
    ),
    "flows_movers": ("Innflyttere og utflyttere", "In- and out-movers"),
    "flows_decomposition": ("Dekomponering av endringen", "Decomposition of the change"),
    "flows_cohort": ("Fast kohort og nåværende befolkning", "Fixed cohort and current population"),
    "flows_intro": (
        "Hvem flyttet inn og ut, og hvor mye av endringen i en andel som skyldes at befolkningen byttet ut, og "
        "hvor mye som er endring blant dem som ble boende (NOU 2020:16 kap. 3).",
        "Who moved in and out, and how much of a share's change comes from a changed population and how much "
        "from change among those who stayed (NOU 2020:16 ch. 3).",
    ),
    "flows_out": ("Flyttet ut / døde", "Moved out / died"),
    "flows_in": ("Flyttet inn / født", "Moved in / born"),
    "persons_axis": ("Personer", "Persons"),
    "pair": ("Årspar", "Year pair"),
    "reading": ("Slik leses det", "How to read it"),
    "suppressed_row": ("Prikket: tallene kan ikke vises.", "Suppressed: the figures cannot be shown."),
    "no_flows": ("Ingen flyttetall for dette området.", "No flow figures for this area."),
    "find_area": ("Finn område (navn eller kode)", "Find an area (name or code)"),
    "open_profile": ("Åpne profilen", "Open the profile"),
    "matches": ("Treff", "Matches"),
    "no_match": ("Ingen områder passer til «{q}».", "No area matches “{q}”."),
}

# codes of the segregation, school and flow tables (columns, groups, indices, components)
TERMS: dict[str, tuple[str, str]] = {
    "year": ("År", "Year"),
    "k": ("K", "K"),
    "group": ("Gruppe", "Group"),
    "group_id": ("Gruppe", "Group"),
    "index": ("Indeks", "Index"),
    "scope": ("Område", "Area"),
    "kind": ("Type", "Kind"),
    "basis": ("Grunnlag", "Basis"),
    "value": ("Verdi", "Value"),
    "ci_low": ("Nedre grense", "Lower bound"),
    "ci_high": ("Øvre grense", "Upper bound"),
    "units": ("Enheter", "Units"),
    "p_value": ("p-verdi", "p-value"),
    "dissimilarity": ("Ulikhetsindeks (D)", "Dissimilarity (D)"),
    "entropy": ("Entropiindeks (Theil H)", "Entropy index (Theil H)"),
    "isolation": ("Isolasjonsindeks", "Isolation index"),
    "interaction": ("Interaksjonsindeks", "Interaction index"),
    "gini": ("Gini", "Gini"),
    "atkinson_0.1": ("Atkinson (b = 0,1)", "Atkinson (b = 0.1)"),
    "atkinson_0.5": ("Atkinson (b = 0,5)", "Atkinson (b = 0.5)"),
    "atkinson_0.9": ("Atkinson (b = 0,9)", "Atkinson (b = 0.9)"),
    "multigroup_dissimilarity": ("Flergruppe-ulikhetsindeks", "Multigroup dissimilarity"),
    "multigroup_information_theory": ("Flergruppe-entropiindeks (H)", "Multigroup information theory (H)"),
    "mean_share": ("Gjennomsnittlig andel i nabolaget", "Mean share in the neighbourhood"),
    "p10": ("10. persentil", "10th percentile"),
    "p25": ("25. persentil", "25th percentile"),
    "p50": ("Median", "Median"),
    "p75": ("75. persentil", "75th percentile"),
    "p90": ("90. persentil", "90th percentile"),
    "immigrant_background": ("Innvandrerbakgrunn", "Immigrant background"),
    "afrika_asia_mv": ("Afrika, Asia mv.", "Africa, Asia etc."),
    "africa_asia": ("Afrika, Asia mv.", "Africa, Asia etc."),
    "low_income_eu60": ("Lavinntekt (EU60)", "Low income (EU60)"),
    "parents_low_education": ("Foreldre med lav utdanning", "Parents with low education"),
    "landbakgrunn": ("Landbakgrunn (tre grupper)", "Country background (three groups)"),
    "school": ("Skole", "School"),
    "kindergarten": ("Barnehage", "Kindergarten"),
    "enrolled": ("Påmeldte (elever/barn)", "Enrolled"),
    "catchment": ("Bosatte i opptaksområdet", "Residents of the catchment"),
    "nearest": ("Bosatte nærmest barnehagen", "Residents nearest the kindergarten"),
    "institution_id": ("Institusjon", "Institution"),
    "institution_a": ("Institusjon A", "Institution A"),
    "institution_b": ("Institusjon B", "Institution B"),
    "schools": ("Skoler", "Schools"),
    "classified": ("Skoler med publisert andel", "Schools with a published share"),
    "at_least_50": ("Skoler med minst 50 %", "Schools with at least 50 %"),
    "over_90": ("Skoler med over 90 %", "Schools with over 90 %"),
    "under_10": ("Skoler med under 10 %", "Schools with under 10 %"),
    "local_attendance": ("Går på nærskolen (%)", "Attend the local school (%)"),
    "uptake_min": ("Laveste oppslutning (%)", "Lowest uptake (%)"),
    "uptake_max": ("Høyeste oppslutning (%)", "Highest uptake (%)"),
    "enrolled_n": ("Elever", "Pupils"),
    "resident": ("Bosatte elever i opptaksområdet", "Resident pupils of the catchment"),
    "uptake": ("Oppslutning (%)", "Uptake (%)"),
    "local": ("Elever fra opptaksområdet", "Pupils from the catchment"),
    "local_share": ("Andel av bosatte som går der (%)", "Share of residents attending (%)"),
    "count": ("Antall i gruppen", "Count in the group"),
    "total": ("Antall i alt", "Total"),
    "share": ("Andel (%)", "Share (%)"),
    "share_a": ("Andel A (%)", "Share A (%)"),
    "share_b": ("Andel B (%)", "Share B (%)"),
    "difference": ("Forskjell (prosentpoeng)", "Difference (points)"),
    "uptake_a": ("Oppslutning A (%)", "Uptake A (%)"),
    "uptake_b": ("Oppslutning B (%)", "Uptake B (%)"),
    "distance_m": ("Avstand (m)", "Distance (m)"),
    "persons": ("Personer", "Persons"),
    "employment_20_66": ("Sysselsatte 20–66 (%)", "Employed 20–66 (%)"),
    "low_income_eu60_pct": ("Lavinntekt (%)", "Low income (%)"),
    "median_eq_income": ("Medianinntekt per forbruksenhet (kr)", "Median equivalised income (NOK)"),
    "residents_from": ("Bosatte første år", "Residents in the first year"),
    "residents_to": ("Bosatte siste år", "Residents in the last year"),
    "stayers": ("Ble boende", "Stayers"),
    "out_within_kommune": ("Flyttet til annet område i kommunen", "Moved to another area of the kommune"),
    "out_other_kommune": ("Flyttet til annen kommune", "Moved to another kommune"),
    "emigrated": ("Utvandret", "Emigrated"),
    "left_unrecorded": ("Forsvant uten registrert flytting", "Left, no move recorded"),
    "deaths": ("Døde", "Deaths"),
    "in_within_kommune": ("Flyttet inn fra annet område i kommunen", "Moved in from another area of the kommune"),
    "in_other_kommune": ("Flyttet inn fra annen kommune", "Moved in from another kommune"),
    "immigrated": ("Innvandret", "Immigrated"),
    "arrived_unrecorded": ("Kom uten registrert flytting", "Arrived, no move recorded"),
    "births": ("Fødte", "Births"),
    "out_movers": ("Utflyttere i alt", "Out-movers, all"),
    "in_movers": ("Innflyttere i alt", "In-movers, all"),
    "settled_5_years": ("Bodd i grunnkretsen minst 5 år", "Settled 5 years or more"),
    "cohort_followed": ("Kohorten, fulgt dit de bor", "The cohort, followed"),
    "families_small_children": ("Familier med barn 0–5 år", "Families with children 0–5"),
    "families_small_children_out": ("Familier med barn 0–5 år som flyttet ut", "Families with children 0–5 moving out"),
    "ageing_in": ("Kom inn i populasjonen uten å flytte", "Entered the population without moving"),
    "ageing_out": ("Gikk ut av populasjonen uten å flytte", "Left the population without moving"),
    "small_groups": ("Små grupper samlet", "Small groups pooled"),
    "value_from": ("Verdi første år", "Value in the first year"),
    "value_to": ("Verdi siste år", "Value in the last year"),
    "change": ("Endring i alt", "Change, all"),
    "points": ("Prosentpoeng", "Points"),
    "component": ("Del", "Component"),
    "view": ("Visning", "View"),
    "fixed_cohort": ("Fast kohort (bosatte første år, fulgt)", "Fixed cohort (first-year residents, followed)"),
    "current_population": ("Nåværende befolkning", "Current population"),
    "persons_from": ("Personer første år", "Persons in the first year"),
    "persons_to": ("Personer siste år", "Persons in the last year"),
    "in_area": ("Fortsatt i området", "Still in the area"),
    "elsewhere_in_kommune": ("Annet sted i kommunen", "Elsewhere in the kommune"),
    "other_kommune": ("Annen kommune", "Another kommune"),
    "died": ("Døde", "Died"),
    "unrecorded": ("Uten registrering", "Unrecorded"),
}


def term(lang: str, code: str) -> str:
    """A code of the later stages' tables in words (a `_from`/`_to` column: its base, then the year)."""
    if code in TERMS:
        return _pick(TERMS[code], lang)
    for suffix, words in (("_from", ("første år", "first year")), ("_to", ("siste år", "last year"))):
        base = code.removesuffix(suffix)
        if base != code and base in TERMS:
            return f"{_pick(TERMS[base], lang)}, {_pick(words, lang)}"
    if code in LEVELS:
        return level_name(lang, code)
    return code


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


def area_name(lang: str, level: str, code: str, name: str | None = None) -> str:
    """The area as shown: its name beside the code when the store has one ("Grønland (bydel 030101)"),
    else the level and the code ("analyseområde 0301001")."""
    if level == "country":
        return _pick(LEVELS["country"], lang)
    return f"{name} ({level_name(lang, level)} {code})" if name else f"{level_name(lang, level)} {code}"
