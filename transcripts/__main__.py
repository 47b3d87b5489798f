"""`python -m transcripts`: the reader CLI (see `transcripts.cli`)."""

from transcripts.cli import main

raise SystemExit(main())
