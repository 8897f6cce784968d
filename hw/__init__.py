"""Amaranth hardware generators."""
