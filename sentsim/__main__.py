import sys

from sentsim.cli import main

sys.exit(main())
