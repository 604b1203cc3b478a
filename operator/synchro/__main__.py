import sys

from synchro.cli import main

sys.exit(main())
