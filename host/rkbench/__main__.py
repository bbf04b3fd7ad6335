import sys

from rkbench.cli import main

sys.exit(main())
