"""Data sets for SynIB experiments, each in its own module (imported on use, so `import synib_hf` stays light):
`xor` (the paper's Gaussian-XOR with PID blocks), `irony` (the irony construction on scikit-learn data) and
`hateful_memes` (the Hateful Memes folder layout, plus a synthetic fixture in that format). Data depends on the
core, never the reverse."""
