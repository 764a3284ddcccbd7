import sys

from edgeort.cli import main

sys.exit(main())
