"""Progress of long commands (geo/progress.py): rate and time left, at most once a second."""

import io
import re

import pytest
from django.core.management import call_command

from geo.progress import Progress
from tests.factories import BORDEAUX, AmapFactory

# « 12 000 / 50 000 lignes · 3 400/s · en 3 s »: the last line of a finished command.
FINISHED = re.compile(r"^[\d ]+ / [\d ]+ .+ · [\d ]+/s · en \d.*$")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_prints_rate_and_time_left_at_most_once_a_second():
    clock, out = Clock(), io.StringIO()
    progress = Progress(50_000, "lignes", out, clock=clock)
    for tenth in range(1, 11):  # 10 × 1 200 rows in 1 s: one line, not ten
        clock.now = tenth / 10
        progress.advance(1_200)
    progress.advance(0)
    assert out.getvalue().splitlines() == ["12 000 / 50 000 lignes · 12 000/s · reste 3 s"]
    clock.now = 4.0
    progress.advance(28_000)  # 40 000 rows in 4 s: 10 000/s, 10 000 left
    assert out.getvalue().splitlines()[-1] == "40 000 / 50 000 lignes · 10 000/s · reste 1 s"
    clock.now = 125.0
    progress.advance(10)
    clock.now = 250.0
    progress.finish()
    assert out.getvalue().splitlines()[-2].endswith("reste 31 s")
    assert out.getvalue().splitlines()[-1] == "40 010 / 50 000 lignes · 160/s · en 4 min 10 s"


def test_progress_without_a_total_or_a_stream():
    clock, out = Clock(), io.StringIO()
    progress = Progress(None, "annonces", out, clock=clock)
    clock.now = 2.0
    progress.advance(3_000)
    assert out.getvalue() == "3 000 annonces · 1 500/s\n"
    silent = Progress(10, "lignes", None, clock=clock)
    silent.advance(10)
    silent.finish()  # prints nowhere, raises nothing


@pytest.mark.django_db
def test_load_demo_and_match_all_print_their_progress_on_stderr():
    out, err = io.StringIO(), io.StringIO()
    call_command("load_demo", amaps=30, farms=20, seed=3, stdout=out, stderr=err)
    assert FINISHED.match(err.getvalue().splitlines()[-1])
    assert err.getvalue().splitlines()[-1].startswith("50 / 50 AMAP et fermes")
    assert "Annuaire de démonstration" in out.getvalue()  # the summary stays on stdout

    AmapFactory(location=BORDEAUX)
    err = io.StringIO()
    call_command("match_all", stdout=io.StringIO(), stderr=err)
    assert re.match(r"^\d+ / \d+ annonces · [\d ]+/s · en \d", err.getvalue().splitlines()[-1])
    err = io.StringIO()
    call_command("match_all", verbosity=0, stdout=io.StringIO(), stderr=err)
    assert err.getvalue() == ""
