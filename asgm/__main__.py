import sys

from asgm.cli import main

sys.exit(main())
