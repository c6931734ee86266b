import sys

from retarget_launcher import main

sys.exit(main())
