"""Model-card templates (Jinja, data only), shipped as `synib_hf.model_cards`; rendered cards of released checkpoints
live beside them in the repository."""
