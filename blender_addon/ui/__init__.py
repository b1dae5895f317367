"""Panels, preferences and operators."""
