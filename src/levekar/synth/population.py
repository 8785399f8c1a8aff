"""A synthetic population that lives in its dwellings, ages, is born, dies and moves between years.

Everything is vectorised over persons, households and dwellings (numpy); loops run over cells, years and
calibration steps only. The latent socio-economic position of households is tied to the deprivation of
the place they live, and movers sort into dwellings by it, so low income, low education, non-employment,
renting, crowding and "Afrika, Asia mv." background cluster in the same areas and stay there over time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from levekar.synth.geography import Cells

# --- household composition templates ------------------------------------------------------------------------
HEAD, PARTNER, CHILD, ADULT_CHILD, OTHER = 0, 1, 2, 3, 4
# Oslo kommune's household types (statistikkbanken); index = type code
HOUSEHOLD_TYPES = [
    "Aleneboende",
    "Par uten hjemmeboende barn",
    "Par med små barn",
    "Par med store barn",
    "Mor/far med små barn",
    "Mor/far med store barn",
    "Enfamiliehusholdninger med voksne barn",
    "Flerfamiliehusholdninger med små barn",
    "Flerfamiliehusholdninger med store barn",
    "Flerfamiliehusholdninger uten barn 0-17 år",
]
N_CHILDREN = ["Ingen barn i HH", "1 barn i HH", "2 barn i HH", "3 barn i HH", "4 barn eller mer"]
SMALL, BIG = 1, 2
_ADULTS = [1, 2, 2, 2, 1, 1, 2, 3, 3, 3]
_KID_CLASS = [0, 0, SMALL, BIG, SMALL, BIG, 0, SMALL, BIG, 0]
_ADULT_KIDS = [False, False, False, False, False, False, True, False, False, True]
MAX_SIZE = 9


def templates() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Role matrix (template × member), size and kid class per template; template = type * 6 + n (n = 0..5
    children, 5 standing for the 4+ class drawn as five)."""
    roles = np.full((len(HOUSEHOLD_TYPES) * 6, MAX_SIZE), -1, dtype=np.int8)
    size = np.zeros(len(roles), dtype=np.int64)
    kid = np.zeros(len(roles), dtype=np.int8)
    for t in range(len(HOUSEHOLD_TYPES)):
        for n in range(6):
            r = [HEAD] + [PARTNER] * (min(_ADULTS[t], 2) - 1) + [OTHER] * max(_ADULTS[t] - 2, 0)
            r += [ADULT_CHILD if _ADULT_KIDS[t] else CHILD] * n
            roles[t * 6 + n, : len(r)] = r
            size[t * 6 + n] = len(r)
            kid[t * 6 + n] = _KID_CLASS[t]
    return roles, size, kid


ROLES, TEMPLATE_SIZE, TEMPLATE_KIDS = templates()


def composition_probs(counts: np.ndarray) -> np.ndarray:
    """Template probabilities from counts by (type, children class 0..4); the 4+ class splits 70/30 into
    four and five children."""
    p = np.zeros((len(HOUSEHOLD_TYPES), 6))
    p[:, :4] = counts[:, :4]
    p[:, 4] = 0.7 * counts[:, 4]
    p[:, 5] = 0.3 * counts[:, 4]
    # types with children need at least one; types 6/9 with "no children" keep their adults only
    for t in range(len(HOUSEHOLD_TYPES)):
        if _KID_CLASS[t] and p[t, 0] > 0:
            p[t, 1] += p[t, 0]
            p[t, 0] = 0
        if _ADULT_KIDS[t] and t == 6 and p[t, 0] > 0:
            p[t, 1] += p[t, 0]
            p[t, 0] = 0
    p = p.ravel()
    return p / p.sum()


# --- small helpers -----------------------------------------------------------------------------------------------
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def bisect(f: Callable[[float], float], target: float, lo: float = -10, hi: float = 10, steps: int = 40) -> float:
    """Root of the increasing function f(a) = target."""
    for _ in range(steps):
        mid = (lo + hi) / 2
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def group_cumsum(values: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Running sum of `values` within consecutive groups of the given sizes."""
    c = np.cumsum(values)
    ends = np.cumsum(size)
    before = np.concatenate([[0], c[ends[:-1] - 1]]) if len(size) else np.zeros(0, dtype=c.dtype)
    return c - np.repeat(before, size)


def person_uniform(pid: np.ndarray, salt: int) -> np.ndarray:
    """A fixed uniform number per person and purpose (splitmix64 of the id), so choices that should
    persist over years (which school, which kindergarten) do, whatever else is drawn in between."""
    with np.errstate(over="ignore"):
        z = pid.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def eu_scale(n_adult_14: np.ndarray, n_child: np.ndarray) -> np.ndarray:
    """EU (modified OECD) consumption units: 1 for the first person 14+, 0.5 for others 14+, 0.3 under 14."""
    first = np.where(n_adult_14 > 0, 1.0, 0.0)
    return first + 0.5 * np.maximum(n_adult_14 - 1, 0) + 0.3 * n_child + np.where(n_adult_14 > 0, 0.0, 0.7)


@dataclass
class Params:
    base_year: int
    targets: dict
    price_level_2018: float
    open_domestic: bool = True  # domestic out-moves leave the extract (a city); closed for a country


@dataclass
class World:
    """Struct-of-arrays state of persons (p_*), households (h_*) and dwellings (d_*)."""

    rng: np.random.Generator
    cells: Cells
    z_cell: np.ndarray  # deprivation of each cell's place (higher = more deprived)
    kommune_of_cell: np.ndarray
    params: Params
    p: dict[str, np.ndarray] = field(default_factory=dict)
    h: dict[str, np.ndarray] = field(default_factory=dict)
    d: dict[str, np.ndarray] = field(default_factory=dict)
    migrations: list[tuple[np.ndarray, int, str, str]] = field(default_factory=list)
    calib: dict[str, float] = field(default_factory=dict)
    zone_rent_shift: np.ndarray | None = None
    cell_unit_final: np.ndarray | None = None  # unit per cell after any code split (for "moved unit")
    next_pid: int = 1
    next_hid: int = 1

    # ---- construction -------------------------------------------------------------------------------------
    def add_households(
        self, n: int, dwelling: np.ndarray, ses: np.ndarray, bg: np.ndarray, kommune: np.ndarray
    ) -> np.ndarray:
        idx = np.arange(len(self.h.get("hid", [])), len(self.h.get("hid", [])) + n)
        new = {
            "hid": np.arange(self.next_hid, self.next_hid + n, dtype=np.int64),
            "dw": dwelling.astype(np.int64),
            "ses": ses.astype(np.float32),
            "bg": bg.astype(np.int8),
            "kom": np.asarray(kommune, dtype=np.int64),
            "active": np.ones(n, dtype=bool),
        }
        self.next_hid += n
        for k, v in new.items():
            self.h[k] = np.concatenate([self.h[k], v]) if k in self.h else v
        return idx

    def add_persons(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        n = len(cols["hh"])
        start = len(self.p.get("pid", []))
        rng = self.rng
        cols = dict(cols)
        cols["pid"] = np.arange(self.next_pid, self.next_pid + n, dtype=np.int64)
        cols.setdefault("u_edu", rng.standard_normal(n).astype(np.float32))
        cols.setdefault("u_emp", rng.standard_normal(n).astype(np.float32))
        cols.setdefault("u_any", rng.random(n).astype(np.float32))
        cols["alive"] = np.ones(n, dtype=bool)
        cols["died"] = np.zeros(n, dtype=np.int16)
        self.next_pid += n
        dtypes = {
            "sex": np.int8,
            "by": np.int16,
            "cat": np.int8,
            "bg": np.int8,
            "imm": np.int16,
            "hh": np.int64,
            "role": np.int8,
            "ses": np.float32,
            "res": np.int16,
        }
        for k, v in cols.items():
            v = v.astype(dtypes.get(k, v.dtype))
            self.p[k] = np.concatenate([self.p[k], v]) if k in self.p else v
        return np.arange(start, start + n)


# --- drawing members of households -------------------------------------------------------------------------
def draw_members(rng, tmpl: np.ndarray, size: np.ndarray, year: int, young: np.ndarray | None = None):
    """Roles, ages and sexes of the members of households with the given templates and (trimmed) sizes.

    Returns (household index per member, role, birth year, sex)."""
    n_h = len(tmpl)
    hidx = np.repeat(np.arange(n_h), size)
    start = np.repeat(np.cumsum(size) - size, size)
    j = np.arange(len(hidx)) - start
    role = ROLES[tmpl[hidx], j].astype(np.int8)
    htype = tmpl // 6
    kid_class = TEMPLATE_KIDS[tmpl]

    # head age by household type
    u = rng.random(n_h)
    head_age = np.select(
        [htype == 0, htype == 1, kid_class == SMALL, kid_class == BIG, htype == 6],
        [
            np.where(
                u < 0.45,
                rng.uniform(20, 35, n_h),
                np.where(u < 0.8, rng.uniform(35, 67, n_h), rng.uniform(67, 96, n_h)),
            ),
            np.where(
                u < 0.4, rng.uniform(23, 40, n_h), np.where(u < 0.7, rng.uniform(40, 67, n_h), rng.uniform(67, 92, n_h))
            ),
            np.clip(rng.normal(34, 5, n_h), 20, 55),
            np.clip(rng.normal(44, 6, n_h), 26, 66),
            np.clip(rng.normal(54, 6, n_h), 38, 82),
        ],
        default=np.clip(rng.normal(45, 12, n_h), 20, 85),
    )
    if young is not None:  # in-migrants: young adults
        head_age = np.where(young & (htype <= 1), rng.uniform(19, 36, n_h), head_age)

    # children: the youngest by kid class, older siblings 1–4 years apart
    m = len(hidx)
    is_kid = role == CHILD
    youngest = np.where(kid_class == SMALL, rng.integers(0, 6, n_h), rng.integers(6, 18, n_h))
    kid_rank = group_cumsum(is_kid.astype(np.int64), size)
    gap = np.where(is_kid & (kid_rank > 1), rng.integers(1, 5, m), 0)
    kid_age = np.where(is_kid, np.minimum(youngest[hidx] + group_cumsum(gap, size), 17), 0)
    adult_kid_age = rng.uniform(18, 31, m)
    oldest_kid = np.zeros(n_h)
    np.maximum.at(oldest_kid, hidx, np.where(is_kid, kid_age, np.where(role == ADULT_CHILD, adult_kid_age, 0)))
    head_age = np.maximum(head_age, oldest_kid + rng.uniform(18, 34, n_h) * (oldest_kid > 0))
    age = np.select(
        [role == HEAD, role == PARTNER, role == CHILD, role == ADULT_CHILD],
        [head_age[hidx], np.clip(head_age[hidx] + rng.normal(-1.5, 3, m), 18, 100), kid_age, adult_kid_age],
        default=rng.uniform(18, 80, m),
    )
    age = np.clip(age, 0, 104).astype(np.int64)
    by = year - 1 - age  # age = completed years on 1 January of `year`

    # sex: single parents mostly mothers, partners of the opposite sex
    female_head = np.where(
        (htype == 4) | (htype == 5),
        rng.random(n_h) < 0.82,
        np.where((htype == 0) & (head_age >= 70), rng.random(n_h) < 0.65, rng.random(n_h) < 0.5),
    )
    sex = np.where(rng.random(m) < 0.512, 1, 2)
    sex = np.where(role == HEAD, np.where(female_head[hidx], 2, 1), sex)
    opposite = rng.random(m) < 0.97
    sex = np.where(role == PARTNER, np.where(opposite == female_head[hidx], 1, 2), sex)
    return hidx, role, by, sex


def fill_cells(rng, cells: Cells, probs_by_zone: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Households per cell so that every cell holds exactly its population: households are drawn from the
    zone's composition and the last one in a cell is trimmed (members dropped from the end).

    Returns (template, size, cell) per household."""
    out_t, out_s, out_c = [], [], []
    for z in np.unique(cells.zone):
        cidx = np.flatnonzero(cells.zone == z)
        pops = cells.population[cidx]
        p = probs_by_zone[z]
        mean = float(p @ TEMPLATE_SIZE)
        need = int(pops.sum() / mean * 1.2) + 50
        tm = rng.choice(len(p), size=need, p=p)
        sz = TEMPLATE_SIZE[tm]
        cum = np.cumsum(sz)
        pos = 0  # households consumed
        base = 0  # persons consumed
        for c, pop in zip(cidx, pops, strict=True):
            while cum[-1] - base < pop:  # draw more
                more = rng.choice(len(p), size=need, p=p)
                tm = np.concatenate([tm, more])
                sz = TEMPLATE_SIZE[tm]
                cum = np.cumsum(sz)
            k = int(np.searchsorted(cum, base + pop))  # household that reaches the cell's population
            s = sz[pos : k + 1].copy()
            s[-1] -= cum[k] - (base + pop)
            out_t.append(tm[pos : k + 1])
            out_s.append(s)
            out_c.append(np.full(k + 1 - pos, c))
            base = cum[k]
            pos = k + 1
    return np.concatenate(out_t), np.concatenate(out_s), np.concatenate(out_c)
