"""`bench/first_page.py` with the PagerDuty role paged by a tier due at once (`after: 0s`).

    python bench/first_page_tier_now.py [--runs 20] [--latency 0.1]

Such a tier is paged by the declaration itself: no timer poll runs in this benchmark, so a
page that waited for one would never arrive. Prints the same figures as first_page.py.
"""

from __future__ import annotations

import argparse
import asyncio

import first_page  # bench/ is the script's directory, first on sys.path

first_page.PLAYBOOK += "escalation: [{after: 0s, page: [ops]}]\n"

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.1)
    options = parser.parse_args()
    print("the PagerDuty role is paged by a tier due at once (after: 0s)")
    asyncio.run(first_page.main(options.runs, options.latency))
