"""Family-independent sampling: grammar-constrained next-token choice and logits filters
(:mod:`.constrained`). A family's generator (``models/<family>/``) builds on these."""
