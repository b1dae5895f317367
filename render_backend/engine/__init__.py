"""LTX-2 generation with a parallel-canvas control reference and camera LoRAs."""
