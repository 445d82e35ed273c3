"""The `synib-hf` command (`synib-hf train|push|release|demo`, also `python -m synib_hf`): the scripts layer inside the
package. It imports `synib_hf.trainers`; nothing in the core, the models or the data imports it."""
