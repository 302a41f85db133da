"""Recipes that drive the runner over real datasets: balance, merge, augment, export."""
