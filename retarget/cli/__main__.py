import sys

from retarget.cli import main

sys.exit(main())
