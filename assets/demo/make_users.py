"""Generate the demo audience ``assets/demo/users.csv`` (synthetic, made by this project).

The generator lives in ``studio.simulation.population`` (the simulated world draws its
"past" audiences from it too); this script writes the bundled table.

    python assets/demo/make_users.py [--n 5000] [--seed 7] [--out assets/demo/users.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.simulation.population import make_users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "users.csv")
    args = parser.parse_args()
    make_users(args.n, args.seed).to_csv(args.out, index=False)
    print(f"wrote {args.n} users to {args.out}")


if __name__ == "__main__":
    main()
