"""Benchmark, pure: a run's figures in, the Markdown `python -m benchmarks` prints out.

The measured version of the guessed table docs/performance.md quotes, then the detail behind it: the
seeding modes, hit latency, a hit against a database read, the Cluster, ours against the
peers, the traffic simulator and the targets. It words the figures `figures.py` made (and
the odd ratio of two of them); it never reads a raw measurement, so the table and the JSON
always say the same.
"""

from __future__ import annotations

from typing import Any

from benchmarks.figures import CONTENDERS
from benchmarks.formats import cell, counted, loader_calls, times
from benchmarks.plan import NOT_INSTALLED
from labs.catalog import figure_text


def markdown(result: dict[str, Any], label: str) -> str:
    """The measured version of the guessed table, and the detail behind it."""
    setup, hits, misses, scale = result["setup"], result["hits"], result["misses"], result["scale"]
    during, startup = result["hits_during_seed"], result["startup"]
    records, big = result["plan"]["records"], scale["records"]
    sqlite = result["database"].get("sqlite")
    lines = [f"Measured on: {label}", ""]
    lines += [
        "| Operation | Sync (main.py) | Async (main_async.py) | The design's guess (sync / async) |",
        "|---|---|---|---|",
        f"| Initial setup, {records:,} records (pipelined) "
        f"| {cell(setup.get('pipelined-sync', {}).get('seconds'), '.3f')} s"
        f" | {cell(setup.get('pipelined-async', {}).get('seconds'), '.3f')} s | 5-10 s / 2-3 s |",
        *(
            [
                f"| Creating {sqlite['users']:,} users (SQLite), once per run, before any seed "
                f"| {sqlite['fill_seconds']:.2f} s, {sqlite['megabytes']:.0f} MB | (one file for both) | |"
            ]
            if sqlite
            else []
        ),
        f"| Initial setup, {big:,} records (pipelined) | {cell(scale['sync']['seconds'], '.2f')} s"
        f" | {cell(scale['async']['seconds'], '.2f')} s | |",
        f"| Cache hit, p50 / p99 | {_us(hits.get('lookup-sync'))} | {_us(hits.get('lookup-async'))} | ~1 ms / ~1 ms |",
        f"| Cache miss ({misses['count']} misses, SQLite + {misses['db_latency_seconds']:g} s simulated delay each) "
        f"| {cell(misses['sync_sequential_seconds'], '.2f')} s, one after another"
        f" | {cell(misses['async_concurrent_seconds'], '.2f')} s, all at once | ~2 s / ~2 s |",
        f"| Hit while {big:,} records seed in the background, p50 / p99 | {_ms(during.get('sync'))}"
        f" | {_ms(during.get('async'))} | |",
        f"| Peak memory, {big:,}-record seed (at {big // 10:,}) | {scale['sync']['peak_rss_mb']:.0f} MB "
        f"({scale['sync']['peak_rss_mb_at_tenth']:.0f} MB) | {scale['async']['peak_rss_mb']:.0f} MB "
        f"({scale['async']['peak_rss_mb_at_tenth']:.0f} MB) | higher (threads) / lower (event loop) |",
        f"| Start-up to the first answer | {cell(startup.get('sync', {}).get('median_seconds'), '.2f')} s"
        f" | {cell(startup.get('async', {}).get('median_seconds'), '.2f')} s | |",
        "",
        f"Initial setup of {records:,} records ({result['record_bytes']} bytes each), median of "
        f"{result['plan']['rounds']} interleaved rounds:",
        "",
        "| Mode | Seconds | Records/s | x redis-cli --pipe |",
        "|---|---|---|---|",
    ]
    names = {
        "sequential": "sequential (sync, one SET per round trip)",
        "threaded": "threaded (sync, pipelines in a thread)",
        "pipelined-sync": "pipelined (sync)",
        "pipelined-async": "pipelined (async)",
        "pipe": "`redis-cli --pipe` of the same SETs (the ceiling)",
        "pipe-startup": "`redis-cli --pipe` of no commands: starting it, connecting, exiting (in the ceiling)",
    }
    for mode, name in names.items():
        if mode in setup:
            row = setup[mode]
            lines.append(
                f"| {name} | {row['seconds']:.4f} | {cell(row['records_per_second'], ',.0f')} | "
                f"{times(row['x_ceiling'])} |"
            )
    lines += [
        "",
        f"Seeding {big:,} records through the real scripts (`--seed-mode pipelined`, reading the SQLite file "
        "a batch at a time; its users were created beforehand, not timed here), median of "
        f"{result['plan']['scale_rounds']}: sync {cell(scale['sync']['seconds'], '.2f')} s "
        f"({times(scale['sync']['x_ceiling'])} the ceiling), async {cell(scale['async']['seconds'], '.2f')} s "
        f"({times(scale['async']['x_ceiling'])}), async / sync {cell(scale['async_x_sync'], '.2f')}; "
        f"`redis-cli --pipe` of the same {big:,} SETs (`SET bench:user-<id> <record> EX <ttl>`, written to a file "
        f"beforehand) {cell(scale['ceiling_seconds'], '.2f')} s.",
        "",
        "Hit latency, all samples of every round:",
        "",
        "| Path | p50 | p99 | x raw GET, same client (p50) | x raw GET, default client (p50) |",
        "|---|---|---|---|---|",
    ]
    for name, label_text in (
        ("lookup-sync", "lookup, sync"),
        ("raw-get-sync", "raw redis-py GET, sync, the demo's client"),
        ("raw-get-default-sync", "raw redis-py GET, sync, a default client (`redis.Redis.from_url`)"),
        ("lookup-async", "lookup, async"),
        ("raw-get-async", "raw redis-py GET, async, the demo's client"),
        ("raw-get-default-async", "raw redis-py GET, async, a default client (`redis.asyncio.Redis.from_url`)"),
        ("redis-benchmark-get", "redis-benchmark GET, -c 1 -P 1"),
    ):
        if name in hits:
            row = hits[name]
            same = times(row["x_raw_get_p50"]) if "x_raw_get_p50" in row else ""
            default = times(row["x_default_get_p50"]) if "x_default_get_p50" in row else ""
            lines.append(f"| {label_text} | {row['p50_us']:.1f} us | {row['p99_us']:.1f} us | {same} | {default} |")
    lines += reads_markdown(result)
    topologies = result["topologies"]
    if "cluster-sync" in topologies:
        lines += [
            "",
            f"Seeding {topologies['records']:,} records pipelined, single server against a local 3-master Redis "
            "Cluster (records/s):",
            "",
            "| Twin | Single server | Redis Cluster | Cluster / single |",
            "|---|---|---|---|",
        ]
        for twin in ("sync", "async"):
            single, cluster = topologies[f"single-{twin}"], topologies[f"cluster-{twin}"]
            lines.append(
                f"| {twin} | {single['records_per_second']:,.0f} | {cluster['records_per_second']:,.0f} | "
                f"{cluster['records_per_second'] / single['records_per_second']:.2f} |"
            )
    lines += concurrency_markdown(result["concurrency"])
    lines += traffic_markdown(result["traffic"])
    lines += labs_markdown(result.get("labs", {}))
    lines += memory_markdown(result.get("memory_lab"))
    lines += [
        "",
        "| Target | Measured | Met |",
        "|---|---|---|",
    ]
    for row in result["targets"]:
        met = "n/a" if row["met"] is None else ("yes" if row["met"] else "**no**")
        lines.append(f"| {row['target']} | {row['measured']} | {met} |")
    return "\n".join(lines) + "\n"


def concurrency_markdown(concurrency: dict[str, Any]) -> list[str]:
    """Ours and the peers in one table, and where each peer is ahead of ours or behind."""
    stampede, load = concurrency["stampede"], concurrency["load"]
    libraries, failed = concurrency["libraries"], concurrency["failed"]
    rounds = max((row["rounds"] for row in load["contenders"].values()), default=0)
    lines = [
        "",
        "Ours against other Python caching libraries on Redis, each used as its documentation shows, on the same "
        "server in the same run; every loader is the same database read (`AsyncDatabase.fetch` / `Database.fetch`, "
        f"{concurrency['db_latency_seconds']:g} s simulated delay, returning the record as the demo stores it). "
        "Hit: p50 against a raw GET of the same key on a default redis-py client of its kind, interleaved. "
        f"Stampede: {stampede['lookups']} lookups of one missing id at once (async: `asyncio.gather`; sync: a thread "
        f"each). Mixed load: {load['lookups']:,} lookups at once, {load['hits']} hits of ids cached beforehand and "
        f"{load['repeats']} each of {load['missing_ids']} missing ids, shuffled (async: `asyncio.gather`; sync: a "
        f"pool of {load['workers']} threads). Median time of {rounds} rounds; errors and loader calls: the worst "
        "round.",
        "",
        "| Contender | Hit, p50 (x raw GET) | Stampede: time, loader calls | Mixed load: time, errors, loader calls |",
        "|---|---|---|---|",
    ]
    shown: set[str] = set()
    for name, (library, _, usage) in CONTENDERS.items():
        if library != "ours" and library not in libraries:
            continue  # the peers were not measured at all
        if library != "ours" and libraries[library] is None:
            if library not in shown:
                lines.append(f"| {library} | {NOT_INSTALLED} | {NOT_INSTALLED} | {NOT_INSTALLED} |")
            shown.add(library)
            continue
        title = usage if library == "ours" else f"{library} {libraries[library]}: {usage}"
        if name in failed:
            lines.append(f"| {title} | failed: {failed[name]} | | |")
            continue
        hit = concurrency["hits"].get(name)
        hit_cell = "n/a" if hit is None else f"{hit['p50_us']:.1f} us ({times(hit['x_raw_get_p50'])})"
        lines.append(
            f"| {title} | {hit_cell} | {_outcome(stampede['contenders'].get(name))} | "
            f"{_outcome(load['contenders'].get(name), errors=True)} |"
        )
    verdicts = [verdict for name in CONTENDERS if (verdict := _peer_verdict(concurrency, name))]
    return [*lines, "", *(f"- {verdict}" for verdict in verdicts)] if verdicts else lines


def _outcome(row: dict[str, Any] | None, *, errors: bool = False) -> str:
    if row is None:
        return "n/a"
    parts = [f"{row['seconds']:.3f} s"]
    if errors or row["errors"]:
        parts.append(counted(row["errors"], "error"))
    parts.append(f"{loader_calls(row)} loader call{'' if row['loader_calls'] == 1 else 's'}")
    if row["degraded"]:
        parts.append(f"{row['degraded']} degraded")
    if row["wrong"]:
        parts.append(counted(row["wrong"], "wrong answer"))
    if row["logged"]:
        parts.append(f"{counted(row['logged'], 'cache error')} logged and answered past")
    return ", ".join(parts)


def _peer_verdict(concurrency: dict[str, Any], name: str) -> str | None:
    library, twin, usage = CONTENDERS[name]
    standing = concurrency["against_ours"].get(name)
    if not standing or not any(standing.values()):
        return None
    parts = [f"{where} on {'; '.join(items)}" for where, items in standing.items() if items]
    return f"{library} {usage}, against ours ({twin}): {'; '.join(parts)}."


READ_LABELS = {
    "hit": "Cache hit (GET through `CacheAside.lookup`, Redis on loopback)",
    "sqlite": "SQLite read (a local file)",
    "postgresql": "PostgreSQL read (a private server on loopback)",
}
READ_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def reads_markdown(result: dict[str, Any]) -> list[str]:
    """What a cache buys, measured: the hit against each database's read, and what that means."""
    reads, databases = result["reads"], result["database"]
    if "hit" not in reads:
        return []
    samples = reads["hit"].get("sync", reads["hit"].get("async", {})).get("samples", 0)
    users = databases.get("sqlite", {}).get("users")
    of_users = f"a random one of {users:,} users" if users else "a random user"
    lines = [
        "",
        "What a cache buys, measured: a hit (a cached id through `CacheAside.lookup`) against one read of "
        f"{of_users} straight from the database (`Database(connector, 0).fetch`: a real `SELECT ... WHERE id = ?`, "
        f"no simulated delay), alternating sample by sample, {samples:,} samples each:",
        "",
        "| Read | Sync, p50 / p99 | Async, p50 / p99 | Read / hit, p50 (sync / async) |",
        "|---|---|---|---|",
    ]
    verdicts = []
    for source, label_text in READ_LABELS.items():
        row = reads.get(source)
        if row is None:
            continue
        if "not_measured" in row:
            lines.append(f"| {label_text} | not measured ({row['not_measured']}) | | |")
            continue
        ratios = (
            "1.00x / 1.00x"
            if source == "hit"
            else " / ".join(times(row.get(t, {}).get("x_hit_p50")) for t in ("sync", "async"))
        )
        lines.append(f"| {label_text} | {_us_pair(row.get('sync'))} | {_us_pair(row.get('async'))} | {ratios} |")
        if source != "hit":
            verdicts.append(_verdict(READ_NAMES[source], row))
    postgres = databases.get("postgresql")
    if postgres:
        verdicts.append(
            f"(PostgreSQL was filled with the same {postgres['users']:,} users in {postgres['fill_seconds']:.1f} s; "
            f"the table and its index take {postgres['megabytes']:.0f} MB.)"
        )
    return [*lines, "", *(f"- {verdict}" for verdict in verdicts)] if verdicts else lines


def _verdict(name: str, row: dict[str, dict[str, float]]) -> str:
    """Whether a hit beats this database's read, in words a reader can act on."""
    ratios = {twin: figures["x_hit_p50"] for twin, figures in row.items() if "x_hit_p50" in figures}
    shown = ", ".join(f"{twin} {times(ratio)}" for twin, ratio in ratios.items())
    if not ratios:
        return f"{name}: no hit to compare with."
    if all(ratio > 1 for ratio in ratios.values()):
        return (
            f"{name}: a read takes longer than a hit ({shown} a hit, p50): the cache pays even with no "
            "added delay, and more the slower the database."
        )
    if all(ratio <= 1 for ratio in ratios.values()):
        return (
            f"{name}: a read is as fast as a hit or faster ({shown} a hit, p50): here the cache does not pay; it "
            "pays when reads are slow (a remote or loaded database, what DB_LATENCY_SECONDS simulates)."
        )
    paying = [twin for twin, ratio in ratios.items() if ratio > 1]
    return f"{name}: {shown} a hit (p50): the cache pays in the {' and '.join(paying)} twin only."


def _us_pair(row: dict[str, float] | None) -> str:
    return "n/a" if not row else f"{row['p50_us']:.1f} / {row['p99_us']:.1f} us"


def _us(row: dict[str, float] | None) -> str:
    return "n/a" if not row else f"{row['p50_us'] / 1000:.3f} / {row['p99_us'] / 1000:.3f} ms"


def _ms(row: dict[str, float] | None) -> str:
    return "n/a" if not row else f"{row['p50_ms']:.1f} / {row['p99_ms']:.1f} ms"


def traffic_markdown(traffic: dict[str, Any]) -> list[str]:
    """The traffic simulator's run in each twin, from an empty cache (the chart draws its hit ratio per second)."""
    if not traffic:
        return []
    first = next(iter(traffic.values()))
    lines = [
        "",
        f"The traffic simulator (the prompt's `load`): {first['lookups']:,} lookups of Zipf({first['zipf']:g})-popular "
        f"ids among {first['population']:,} users, {first['concurrency']} at once, database "
        f"{first['db_latency_seconds']:g} s, from an empty cache:",
        "",
        "| Twin | Seconds | Hit ratio | Database reads | Shared (stampedes absorbed) "
        "| Hit p50 / p99 | Miss p50 / p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for twin, run in traffic.items():
        hit, miss = run["hit_latency_ms"], run["miss_latency_ms"]
        lines.append(
            f"| {twin} | {run['seconds']:.2f} | {run['hit_ratio']:.1%} | {run['database_reads']:,} | {run['shared']:,} "
            f"| {_ms_pair(hit)} | {_ms_pair(miss)} |"
        )
    return lines


def _ms_pair(latency: dict[str, float | None]) -> str:
    p50, p99 = latency.get("p50"), latency.get("p99")
    return "n/a" if p50 is None or p99 is None else f"{p50:.1f} / {p99:.1f} ms"


def labs_markdown(labs: dict[str, Any]) -> list[str]:
    """Each lab (the prompt's `lab NAME`) as it ran: a column a run, a row a figure, and its verdict."""
    if not labs:
        return []
    lines = ["", "The labs (the prompt's `lab`): each defence off, then on, through the async twin's lookup:"]
    for name, lab in labs.items():
        runs = lab["runs"]
        lines += ["", f"`lab {name}`: {lab['scenario']}", ""]
        lines.append("| | " + " | ".join(run["label"] for run in runs) + " |")
        lines.append("|---|" + "---|" * len(runs))
        for row in runs[0]["figures"] if runs else []:
            lines.append(f"| {row} | " + " | ".join(figure_text(run["figures"].get(row)) for run in runs) + " |")
        lines += ["", f"Verdict: {lab['verdict']}"]
    return lines


def memory_markdown(lab: dict[str, Any] | None) -> list[str]:
    """lab memory as it ran: a row a memory size, a column a policy, then exact LRU and the optimum."""
    if not lab:
        return []
    plan, policies = lab["plan"], lab["plan"]["policies"]
    lines = [
        "",
        f"`lab memory`: {plan['lookups']:,} lookups of {plan['users']:,} users (Zipf {plan['zipf']:g}, the first "
        f"{plan['warmup']:,} to warm up) on redis-server {lab['server']} of its own, maxmemory-samples "
        f"{plan['maxmemory_samples']}; working set {lab['working_set_bytes']:,} bytes "
        f"({lab['bytes_per_record']:,.0f} a record). Hit ratio after the warm-up:",
        "",
        "| Memory | % of set | Records | " + " | ".join(policies) + " | exact LRU | optimum |",
        "|---|---|---|" + "---|" * (len(policies) + 2),
    ]
    for size in lab["sizes"]:
        ratios = [size["hit_ratio"].get(policy) for policy in policies]
        cells = ["-" if ratio is None else f"{ratio:.1%}" for ratio in ratios]
        lines.append(
            f"| {size['bytes']:,} B | {size['percent']:g}% | {size['records']:,} | {' | '.join(cells)} | "
            f"{size['exact_lru']:.1%} | {size['optimum']:.1%} |"
        )
    lines += ["", f"Reading: {lab['reading']}"]
    return lines
