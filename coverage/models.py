"""Coverage holds no tables: every figure is computed from the directory and the territories (and cached)."""
