"""`python -m benchmarks`: measure the demo and print the table (Markdown; JSON with --json PATH)."""

from __future__ import annotations

import argparse
import json
import sys

import redis

from benchmarks.environment import describe_machine, machine_label, private_redis_server
from benchmarks.figures import figures
from benchmarks.measure import measure_everything
from benchmarks.plan import Plan
from benchmarks.plot import draw, plotting_library_missing
from benchmarks.table import markdown
from config.settings import ConfigError, parse_redis_url
from config.urls import mask_url


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (targets missed are reported, not failed)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--records", type=int, default=1000, help="records for the initial-setup rows (default 1000)")
    parser.add_argument(
        "--big",
        type=int,
        help="records for the at-scale rows and users in the run's database (default 1,000,000; 25,000 with --quick)",
    )
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds to take medians over (default 5; 3 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run that finishes in about a minute")
    parser.add_argument(
        "--redis-url", help="measure against this server (keys under bench: only); default: a private one"
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON to PATH")
    parser.add_argument("--plot", metavar="DIR", help="also draw the charts as SVG files into DIR (needs matplotlib)")
    arguments = parser.parse_args(argv)
    if arguments.plot and (missing := plotting_library_missing()):
        print(missing, file=sys.stderr)
        return 2
    plan = Plan.quick_plan(arguments.records) if arguments.quick else Plan(records=arguments.records)
    overrides = {name: value for name in ("big", "rounds") if (value := getattr(arguments, name)) is not None}
    plan = Plan(**{**plan.__dict__, **overrides})
    if arguments.redis_url:
        try:
            url = parse_redis_url(arguments.redis_url, "--redis-url")
        except ConfigError as error:
            print(f"Configuration error: {error}", file=sys.stderr)
            return 2
        return run(url, plan, arguments.json, arguments.plot)
    with private_redis_server() as url:
        return run(url, plan, arguments.json, arguments.plot)


def run(url: str, plan: Plan, json_path: str | None, plot_directory: str | None = None) -> int:
    """Measure against `url` and report."""
    client = redis.Redis.from_url(url)
    machine = describe_machine(client)
    client.close()
    print(f"Benchmarking against {mask_url(url)}", file=sys.stderr)
    measurements = measure_everything(url, plan, lambda line: print(line, file=sys.stderr, flush=True))
    result = figures(measurements, plan, machine)
    print(markdown(result, machine_label(machine)), end="")
    if json_path:
        with open(json_path, "w") as output:
            json.dump(result, output, indent=2)
    if plot_directory:
        for path in draw(measurements, plan, result, machine_label(machine), plot_directory):
            print(f"Drew {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
