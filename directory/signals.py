"""Signals the directory sends for the apps above it (they may not be imported from here)."""

from django.dispatch import Signal

# Sent with `farm_ids` after farms' points were written in bulk (no save(), so no post_save):
# a key rotation (`farm_remask`). Matching moves those farms' annonces with them.
farm_points_changed = Signal()
