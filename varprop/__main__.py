import sys

from varprop.cli import main

sys.exit(main())
