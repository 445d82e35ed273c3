"""`python -m synib_hf COMMAND ...`: the same as the `synib-hf` console command."""

from synib_hf.cli.main import main


raise SystemExit(main())
