"""What a network covers: figures, white zones, product gaps, dashboard, API and report."""
