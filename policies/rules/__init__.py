"""Policy rules, one module per area. Each module exposes ``RULES: tuple[Rule, ...]``."""
