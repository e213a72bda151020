"""Labs, pure: what each lab runs, with which defence switched off and on, and what its measured numbers say.

A lab runs one deterministic scenario (a fixed seed) twice or three times through the same
`CacheAside` / `AsyncCacheAside`, changing only one switch of `CachePolicy`; the runner (in
labs/_async/runner.py and its generated twin) measures, and this module names the runs, holds
their figures, and words the verdict from them: a ratio only over a number that is not zero,
and every figure one that was measured. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labs.bench import Scenarios

Figure = int | float | None  # None: not measured (a run cut short)


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run of a lab: its label, and the switches of CachePolicy it sets (the others at their defaults)."""

    label: str
    switches: dict[str, Any]  # CachePolicy's field names and values: booleans, and a float for ttl_jitter


@dataclass(frozen=True, slots=True)
class LabSpec:
    """A lab: its name, one line for `lab`, its runs, the two lines on what it shows, and where the defence lives."""

    name: str
    summary: str
    scenario: Callable[[Scenarios], str]  # what runs, in words, with the sizes it runs at
    runs: tuple[RunSpec, ...]
    shows: tuple[str, str]
    where: str
    headline: str  # the figure a chart of the lab draws, a bar a run (the expiry lab draws its series)


@dataclass(frozen=True, slots=True)
class LabRun:
    """What one run measured: its figures in the order a table shows them, and (some labs) a series over time."""

    label: str
    switches: dict[str, Any]
    figures: Mapping[str, Figure]
    series: tuple[tuple[float, int], ...] = ()  # (seconds since the keys were written, database reads in that step)


@dataclass
class LabReport:
    """A lab as it ran: the runs measured so far, how long it took, and whether Ctrl-C cut it short."""

    spec: LabSpec
    scenarios: Scenarios = field(default_factory=Scenarios)
    runs: list[LabRun] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def scenario(self) -> str:
        """What this lab runs, in words, with its sizes."""
        return self.spec.scenario(self.scenarios)

    @property
    def sizes(self) -> dict[str, Any]:
        """This lab's sizes, by name."""
        return dataclasses.asdict(getattr(self.scenarios, self.spec.name))

    def as_dict(self) -> dict[str, Any]:
        """Everything the lab measured and said, as JSON-ready values (`lab NAME --json`, the benchmark's JSON)."""
        return {
            "lab": self.spec.name,
            "scenario": self.scenario,
            "sizes": self.sizes,
            "runs": [
                {"label": run.label, "switches": run.switches, "figures": dict(run.figures), "series": run.series}
                for run in self.runs
            ],
            "verdict": self.verdict,
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            "where": self.spec.where,
            "headline": self.spec.headline,
        }

    @property
    def verdict(self) -> str:
        """One line with the measured ratio, or what is missing for one."""
        if len(self.runs) < len(self.spec.runs):
            return f"Cut short after {len(self.runs)} of {len(self.spec.runs)} runs: no verdict."
        return VERDICTS[self.spec.name](self.runs)


def figure_text(figure: Figure) -> str:
    """A figure as a table shows it: counts with thousands separators, the rest to a tenth, 'none' if missing."""
    if figure is None:
        return "none"
    return f"{figure:,}" if isinstance(figure, int) else f"{figure:,.1f}"


def ratio(before: Figure, after: Figure, word: str) -> str:
    """`before` over `after` as "2.5x `word`", never over a zero without saying so."""
    if before is None or after is None:
        return "not measured"
    if after == 0:
        return "none either way" if before == 0 else "down to none: no ratio over zero"
    return f"{before / after:,.1f}x {word}"


def _n(figure: Figure) -> str:
    return "none" if figure is None else f"{figure:,g}"


def _stampede(runs: Sequence[LabRun]) -> str:
    none, flight, lease = (run.figures["database reads"] for run in runs)
    return (
        f"The lease cut the database reads of one stampede from {none} to {lease} ({ratio(none, lease, 'fewer')}); "
        f"single flight alone, to {flight} (one a process)."
    )


def _race(runs: Sequence[LabRun]) -> str:
    off, on = runs
    return (
        f"Without the lease the cache kept version {off.figures['version left in the cache']} for "
        f"{_n(off.figures['stale for (s)'])} s after version {off.figures['version in the database']} was committed; "
        f"with it, the next lookup answered version {on.figures['version the next lookup answers']}."
    )


def _expiry(runs: Sequence[LabRun]) -> str:
    off, on = runs
    peak = next(name for name in off.figures if name.startswith("peak reads in"))
    peak_off, peak_on = off.figures[peak], on.figures[peak]
    return (
        f"Jitter spread the expiry: the {peak} fell from {peak_off} to {peak_on} "
        f"({ratio(peak_off, peak_on, 'lower')}); {off.figures['database reads']} and {on.figures['database reads']} "
        "reads in all."
    )


def _negative(runs: Sequence[LabRun]) -> str:
    off, on = runs
    reads_off, reads_on = off.figures["database reads"], on.figures["database reads"]
    return (
        f"Caching 'not found' cut the database reads of {off.figures['lookups']} lookups of missing ids "
        f"from {reads_off} to {reads_on} ({ratio(reads_off, reads_on, 'fewer')})."
    )


def _refresh(runs: Sequence[LabRun]) -> str:
    off, on = runs
    paid_off, paid_on = off.figures["lookups that paid a miss"], on.figures["lookups that paid a miss"]
    return (
        f"Early refresh cut the lookups that waited for the database from {paid_off} to {paid_on} "
        f"({ratio(paid_off, paid_on, 'fewer')}); the slowest took {_n(off.figures['slowest (ms)'])} ms against "
        f"{_n(on.figures['slowest (ms)'])} ms, for {_n(on.figures['database reads'])} database reads against "
        f"{_n(off.figures['database reads'])}."
    )


def _outage(runs: Sequence[LabRun]) -> str:
    off, on = runs
    p50_off, p50_on = off.figures["p50 during the outage (ms)"], on.figures["p50 during the outage (ms)"]
    return (
        f"With the breaker a lookup during the outage took {p50_on} ms (p50), against {p50_off} ms without "
        f"({ratio(p50_off, p50_on, 'faster')}); back on the cache {on.figures['back on the cache after (s)']} s after "
        "Redis returned."
    )


VERDICTS: dict[str, Callable[[Sequence[LabRun]], str]] = {
    "stampede": _stampede,
    "race": _race,
    "expiry": _expiry,
    "negative": _negative,
    "refresh": _refresh,
    "outage": _outage,
}

_CODE = "simulator/_async/cache_aside.py"
LABS: dict[str, LabSpec] = {
    spec.name: spec
    for spec in (
        LabSpec(
            "stampede",
            "many lookups of one cold, hot id from several processes at once: no protection, single flight, the lease",
            lambda sizes: (
                f"{sizes.stampede.processes * sizes.stampede.lookups_each} lookups of one cold id at once, from "
                f"{sizes.stampede.processes} processes ({sizes.stampede.lookups_each} each, caches and clients of "
                f"their own); a database read takes {sizes.stampede.latency:g} s."
            ),
            (
                RunSpec("no protection", {"single_flight": False, "read_coalescing": False, "lease": False}),
                RunSpec("single flight only", {"lease": False}),
                RunSpec("the lease", {}),
            ),
            (
                "Every miss that reads the database at once is load it did not need: a hot key that expires sends",
                "them all. Single flight shares one read in a process; the lease, one among every process.",
            ),
            f"{_CODE}: take_lease (LeaseTaking) and claim",
            "database reads",
        ),
        LabSpec(
            "race",
            "the stale-set race, step by step: a read before an update stores the old version after it",
            lambda sizes: (
                f"A lookup of user {sizes.race.user_id} reads version 0 and is held; an update commits version 1 and "
                f"deletes the key; the lookup goes on and stores what it read (TTL {sizes.race.ttl:,} s); then one "
                "more lookup."
            ),
            (RunSpec("no lease", {"lease": False}), RunSpec("the lease", {})),
            (
                "A reader reads version 0, a writer commits version 1 and deletes the key, the reader stores:",
                "without a lease, version 0 stays cached until its TTL ends; the lease makes that store fail.",
            ),
            f"{_CODE}: store_with_ttl (the store script stores only while the key holds our lease)",
            "stale for (s)",
        ),
        LabSpec(
            "expiry",
            "many keys written at once with one TTL, under steady traffic: without and with jitter",
            lambda sizes: (
                f"{sizes.expiry.keys} keys seeded at once with a TTL of {sizes.expiry.ttl} s, then "
                f"{sizes.expiry.workers} workers look up random ones for {sizes.expiry.seconds:g} s; database reads "
                f"counted each {sizes.expiry.step:g} s."
            ),
            (RunSpec("no jitter", {"ttl_jitter": 0.0}), RunSpec("jitter 50%", {"ttl_jitter": 0.5})),
            (
                "Keys written together expire together, and their misses reach the database in one burst.",
                "Jitter spreads their TTLs, so the same reads arrive spread out.",
            ),
            "simulator/policy.py: CachePolicy.ttl_for (jitter), used by store_with_ttl and the seeds",
            "peak reads in 0.5 s",
        ),
        LabSpec(
            "negative",
            "lookups of ids that do not exist (an enumeration): without and with caching 'not found'",
            lambda sizes: (
                f"{sizes.negative.rounds} rounds over {sizes.negative.ids} ids past the last user, one lookup at a "
                "time."
            ),
            (RunSpec("no negative caching", {"negative_caching": False}), RunSpec("negative caching", {})),
            (
                "A lookup of an id that does not exist is a miss every time, unless 'not found' is cached too:",
                "a scan of missing ids reads the database once per lookup without it, once per id with it.",
            ),
            f"{_CODE}: store_with_ttl (a tombstone, for NEGATIVE_TTL_SECONDS)",
            "database reads",
        ),
        LabSpec(
            "refresh",
            "a hot key with a short TTL under steady traffic: without and with early refresh (XFetch)",
            lambda sizes: (
                f"{sizes.refresh.workers} workers look up one hot key (TTL {sizes.refresh.ttl} s) for "
                f"{sizes.refresh.seconds:g} s; a database read takes {sizes.refresh.latency:g} s; XFetch's beta "
                f"{sizes.refresh.beta:g}."
            ),
            (RunSpec("no early refresh", {"early_refresh": False}), RunSpec("early refresh", {"early_refresh": True})),
            (
                "When a hot key expires, the lookups that ask for it then wait for the database. Early refresh",
                "re-reads it in the background just before, so none has to; it pays in a few more reads.",
            ),
            f"{_CODE}: refresh_early_if_due; simulator/policy.py: should_refresh_early",
            "lookups that paid a miss",
        ),
        LabSpec(
            "outage",
            "the cache unreachable for a while (a proxy the lab cuts): without and with the circuit breaker",
            lambda sizes: (
                f"One lookup after another of {sizes.outage.ids} cached ids; the lab's road to Redis is cut from "
                f"{sizes.outage.before:g} s to {sizes.outage.before + sizes.outage.outage:g} s (a frozen server), "
                f"Redis timeout {sizes.outage.timeout:g} s, breaker cool-down {sizes.outage.cooldown:g} s."
            ),
            (RunSpec("no breaker", {"breaker": False}), RunSpec("the breaker", {})),
            (
                "A frozen Redis makes every lookup wait for a timeout before it reads the database.",
                "The breaker takes one such wait, then answers from the database until a probe finds Redis back.",
            ),
            "simulator/cache_aside_base.py: _allowed; simulator/breaker.py: CircuitBreaker",
            "p50 during the outage (ms)",
        ),
    )
}
