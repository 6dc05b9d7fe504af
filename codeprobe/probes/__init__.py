"""Structure probes over code models' internals: CAT-probing (attention vs. AST distance)."""
