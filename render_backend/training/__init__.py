"""LoRA training on the parallel canvas, from datasets made in Blender (docs/training.md).

dataset.py reads a dataset of shot bundles + target renders; cache.py encodes it once (target latents,
reference tokens exactly as the engine builds them, prompt embeddings); objective.py is Lightricks'
rectified-flow objective; trainer.py runs the loop (checkpoints, resume, validation renders through
the real engine); lora_file.py writes the Lightricks/ComfyUI file the server loads with --lora;
memory.py estimates what fits; plot.py draws the loss curve; trajectory.py draws camera-trajectory
references for ltx-trainer.
"""
