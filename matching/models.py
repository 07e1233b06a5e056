"""Annonces and matches live here (see the matchmaking issue)."""
