"""A deterministic, clearly labelled demo directory: AMAPs, farms, partnerships and networks.

Everything is drawn with numpy from one seed, in real communes weighted by population
(overseas included), then written with bulk inserts: 100,000 AMAPs and 100,000 farms take a
few minutes. Every row says it is a demo: `is_demo=True`, `source="demo"`, "(démo)" in its name,
example.org contacts. Networks have no demo flag: theirs is the slug prefix `demo-`.

`manage.py load_demo` drives it. The modules, by what they do: `labels` (what marks a demo
row), `places` (communes sampled by population), `dates`, `amaps`, `farms`, `partnerships`,
`networks`, `bulk` (COPY in, fast deletes) and `generator` (`generate`, `clear_demo`).
"""

from .generator import Summary, clear_demo, generate
from .labels import (
    DEFAULT_AMAPS,
    DEFAULT_FARMS,
    DEMO_SOURCE,
    DEMO_SUFFIX,
    NETWORK_SLUG_PREFIX,
    amap_external_id,
    demo_matches,
    demo_networks,
    farm_external_id,
)

__all__ = [
    "DEFAULT_AMAPS",
    "DEFAULT_FARMS",
    "DEMO_SOURCE",
    "DEMO_SUFFIX",
    "NETWORK_SLUG_PREFIX",
    "Summary",
    "amap_external_id",
    "clear_demo",
    "demo_matches",
    "demo_networks",
    "farm_external_id",
    "generate",
]
