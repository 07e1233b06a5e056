"""Signals the directory sends, so that apps above it react without the directory importing them."""

from django.dispatch import Signal

# Sent by `directory.demo.clear_demo()` inside its transaction, before any demo row is deleted.
# A receiver removes its own rows that point at demo AMAPs or farms and returns a dict of
# counts by kind (e.g. {"contracts": 3}), which `clear_demo` merges into its own.
demo_clearing = Signal()

# Sent with `farm_ids` after farms' points were written in bulk (no save(), so no post_save):
# a key rotation (`farm_remask`). Matching moves those farms' annonces with them.
farm_points_changed = Signal()

# Sent once per batch after AMAPs, farms or partnerships (or an AMAP's or farm's products) were
# created or changed in bulk by `directory.services` (no save(): no post_save, no m2m_changed), with
# `ids`, the rows written; `sender` is the model. Coverage drops its figures on it.
rows_written = Signal()
