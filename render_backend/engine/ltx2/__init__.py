"""Lightricks LTX-2 through diffusers: engine, attention bias, references, schedules, tiny test model."""
